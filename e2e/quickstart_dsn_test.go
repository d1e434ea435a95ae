package e2e

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/questline/questline/internal/chtest"
	"github.com/questline/questline/internal/testtool"
)

// TestQuickStartDSNPassword: with QUESTLINE_CLICKHOUSE_DSN naming a user
// and password, the quick start's summary (scripts/clickhouse-dsn.sh,
// chc) reaches a server that needs them, with the password in a client
// config file only its owner reads and never on the command line (ps
// shows every process's arguments: helper-37). The password has XML's
// special characters and a DSN's (@, :, /, %), percent-encoded in the DSN
// as questline's own parser (clickhouse-go's ParseDSN) wants them, and the
// script decodes them as it does (helper-41).
func TestQuickStartDSNPassword(t *testing.T) {
	testtool.Require(t, "clickhouse-client")
	const pass = `p&w<r>d"'@:/%\n`
	srv, err := chtest.Start(chtest.Password(pass))
	if err == chtest.ErrNotInstalled {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	port := srv.Addr()[strings.LastIndexByte(srv.Addr(), ':')+1:]
	dir := t.TempDir()
	script := `. ../scripts/clickhouse-dsn.sh
ch_from_dsn "$DSN" "$DIR" || exit 9
printf '%s\n' "$ch_host $ch_port $ch_db ${ch_auth[*]}"
clickhouse-client --host "$ch_host" --port "$ch_port" "${ch_auth[@]}" -d "$ch_db" -q 'SELECT 40 + 2'`
	run := func(dsn string) (string, error) {
		cmd := exec.Command("bash", "-c", script)
		cmd.Env = append(os.Environ(), "DSN="+dsn, "DIR="+dir)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	dsn := (&url.URL{Scheme: "clickhouse", User: url.UserPassword("default", pass), Host: "127.0.0.1:" + port, Path: "/default"}).String()
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil || opts.Auth.Password != pass {
		t.Fatalf("questline's parser reads %q from %s: %v", opts.Auth.Password, dsn, err)
	}
	out, err := run(dsn)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	cfg := filepath.Join(dir, "clickhouse-client.xml")
	if want := "127.0.0.1 " + port + " default --config-file " + cfg + "\n42\n"; out != want {
		t.Fatalf("output %q, want %q", out, want)
	}
	if strings.Contains(out, "p&w") {
		t.Fatal("the password is in the client's arguments")
	}
	st, err := os.Stat(cfg)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("client config: %v, mode %v (want 0600)", err, st.Mode())
	}
	// A raw @ and : in a password: url.Parse takes the user info to the
	// last @, and so must the script (helper-42: it read the host as
	// "ss@127.0.0.1").
	// (The server's password, percent-encoded where url.Parse wants it,
	// raw where it does not: @, :, &, ').
	raw := "clickhouse://default:" + strings.NewReplacer("%", "%25", "/", "%2F", "<", "%3C", ">", "%3E", `"`, "%22", `\`, "%5C").Replace(pass) + "@127.0.0.1:" + port + "/default"
	if opts, err := clickhouse.ParseDSN(raw); err != nil || opts.Auth.Password != pass {
		t.Fatalf("questline's parser on %s: %v %v", raw, opts, err)
	}
	if out, err := run(raw); err != nil || out != "127.0.0.1 "+port+" default --config-file "+cfg+"\n42\n" {
		t.Fatalf("a DSN with a raw @ and : in its password: %v: %q", err, out)
	}
	if out, err := run("clickhouse://default:wrong@127.0.0.1:" + port + "/default"); err == nil || !strings.Contains(out, "password") {
		t.Fatalf("a wrong password: %v %s", err, out)
	}
	if out, err := run("mysql://x"); err == nil || !strings.Contains(err.Error(), strconv.Itoa(9)) {
		t.Fatalf("an unreadable DSN: %v %s", err, out)
	}
}

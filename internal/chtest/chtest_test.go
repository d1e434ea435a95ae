package chtest

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

var ch Shared

func TestMain(m *testing.M) { os.Exit(ch.Run(m)) }

func TestSharedServerFreshDatabases(t *testing.T) {
	srv := ch.Server(t)
	ctx := context.Background()
	a, b := srv.NewDatabase(t), srv.NewDatabase(t)
	if a == b {
		t.Fatalf("two databases share the name %q", a)
	}
	if err := srv.Exec(ctx, "CREATE TABLE "+a+".x (n UInt8) ENGINE = Memory"); err != nil {
		t.Fatal(err)
	}
	out, err := srv.Query(ctx, "SELECT count() FROM system.tables WHERE database = '"+b+"'")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != "0" {
		t.Fatalf("database %s sees %s tables, want 0", b, out)
	}
	if srv2 := ch.Server(t); srv2 != srv {
		t.Fatal("Shared.Server started a second server")
	}
}

func TestServerListensOnLoopbackOnly(t *testing.T) {
	srv := ch.Server(t)
	_, port, _ := net.SplitHostPort(srv.Addr())
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	tried := 0
	for _, a := range addrs {
		ip, ok := a.(*net.IPNet)
		if !ok || ip.IP.IsLoopback() || ip.IP.IsLinkLocalUnicast() {
			continue
		}
		tried++
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ip.IP.String(), port), time.Second)
		if err == nil {
			c.Close()
			t.Fatalf("server reachable on non-loopback address %s", ip.IP)
		}
	}
	if tried == 0 {
		t.Skip("no non-loopback address on this machine to check against")
	}
}

func TestStopKillRestartKeepData(t *testing.T) {
	srv := New(t)
	ctx := context.Background()
	db := srv.NewDatabase(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(srv.Exec(ctx, "CREATE TABLE "+db+".x (n UInt8) ENGINE = MergeTree ORDER BY n"))
	must(srv.Exec(ctx, "INSERT INTO "+db+".x VALUES (1), (2)"))
	addr := srv.Addr()

	must(srv.Stop())
	if srv.Running() {
		t.Fatal("Running after Stop")
	}
	if _, err := srv.Query(ctx, "SELECT 1"); err == nil {
		t.Fatal("query succeeded on a stopped server")
	}
	must(srv.Restart())
	must(srv.Exec(ctx, "INSERT INTO "+db+".x VALUES (3)"))

	must(srv.Kill())
	must(srv.Restart())
	if srv.Addr() != addr {
		t.Fatalf("address changed across restarts: %s then %s", addr, srv.Addr())
	}
	out, err := srv.Query(ctx, "SELECT sum(n) FROM "+db+".x")
	must(err)
	if strings.TrimSpace(out) != "6" {
		t.Fatalf("sum after restarts = %q, want 6", out)
	}
}

func TestCloseRemovesDirectory(t *testing.T) {
	srv := New(t)
	dir := srv.Dir()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("directory %s still there after Close: %v", dir, err)
	}
}

func TestMissingBinaryIsNotInstalled(t *testing.T) {
	t.Setenv("CLICKHOUSE_SERVER", "/nonexistent/clickhouse-server")
	if _, err := Start(); !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("Start with a missing binary: %v, want ErrNotInstalled", err)
	}
}

// TestMissingServerFailsInCIAndSkipsOutside re-runs this test binary with
// no server available: with CI set the helper must fail the test, without
// it skip it.
func TestMissingServerFailsInCIAndSkipsOutside(t *testing.T) {
	if os.Getenv("CHTEST_CHILD") == "1" {
		New(t) // must fail or skip: no server can be found
		t.Fatal("New returned without a server")
	}
	for _, tc := range []struct {
		ci      string
		wantErr bool
		want    string
	}{
		{ci: "true", wantErr: true, want: "--- FAIL"},
		{ci: "", wantErr: false, want: "--- SKIP"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestMissingServerFailsInCIAndSkipsOutside$", "-test.v")
		cmd.Env = append(os.Environ(), "CHTEST_CHILD=1", "CLICKHOUSE_SERVER=/nonexistent/clickhouse-server", "CI="+tc.ci)
		out, err := cmd.CombinedOutput()
		if (err != nil) != tc.wantErr || !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), "not found") {
			t.Errorf("CI=%q: err %v, output:\n%s", tc.ci, err, out)
		}
	}
}

func TestStartSweepsDirectoriesOfDeadTests(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale, err := os.MkdirTemp("", "chtest-")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(stale+"/"+ownerFile, []byte(strconv.Itoa(dead.Process.Pid)), 0o644)
	live, err := os.MkdirTemp("", "chtest-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(live)
	os.WriteFile(live+"/"+ownerFile, []byte(strconv.Itoa(os.Getpid())), 0o644)

	New(t)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("directory of a dead test process kept: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("directory of a live process removed: %v", err)
	}
}

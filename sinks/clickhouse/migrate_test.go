package clickhouse

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/questline/questline/internal/chtest"
)

var chs chtest.Shared

func TestMain(m *testing.M) { os.Exit(chs.Run(m)) }

// schemaOf returns the columns and engines of db's tables, to compare
// schemas across runs.
func schemaOf(t *testing.T, srv *chtest.Server, db string) string {
	t.Helper()
	ctx := context.Background()
	cols, err := srv.Query(ctx, "SELECT table, name, type FROM system.columns WHERE database = '"+db+"' ORDER BY table, name")
	if err != nil {
		t.Fatal(err)
	}
	tables, err := srv.Query(ctx, "SELECT name, engine, partition_key, sorting_key FROM system.tables WHERE database = '"+db+"' ORDER BY name")
	if err != nil {
		// 18.16 has no partition_key/sorting_key columns.
		tables, err = srv.Query(ctx, "SELECT name, engine FROM system.tables WHERE database = '"+db+"' ORDER BY name")
		if err != nil {
			t.Fatal(err)
		}
	}
	return tables + cols
}

func TestMigrateTwiceAndConcurrently(t *testing.T) {
	srv := chs.Server(t)
	ctx := context.Background()

	once := srv.NewDatabase(t)
	if err := Migrate(ctx, srv.DSN(once), nil); err != nil {
		t.Fatal(err)
	}
	want := schemaOf(t, srv, once)
	for _, table := range []string{"events", "rejected_events", "schema_migrations"} {
		if !strings.Contains(want, table+"\t") {
			t.Fatalf("table %s missing after Migrate:\n%s", table, want)
		}
	}
	if err := Migrate(ctx, srv.DSN(once), nil); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if got := schemaOf(t, srv, once); got != want {
		t.Fatalf("schema changed on second run:\n%s\nwant\n%s", got, want)
	}

	// A database that does not exist yet, migrated by four processes'
	// worth of concurrent runs.
	conc := srv.NewDatabase(t)
	if err := srv.Exec(ctx, "DROP DATABASE "+conc); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = Migrate(ctx, srv.DSN(conc), nil) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent Migrate %d: %v", i, err)
		}
	}
	got := strings.ReplaceAll(schemaOf(t, srv, conc), conc, once)
	if got != want {
		t.Fatalf("concurrent schema differs:\n%s\nwant\n%s", got, want)
	}
	migs, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	out, err := srv.Query(ctx, "SELECT count(DISTINCT version) FROM "+conc+".schema_migrations")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != strconv.Itoa(len(migs)) {
		t.Fatalf("schema_migrations has %s versions, want %d", out, len(migs))
	}
}

func TestMigrateRefusesEditedMigration(t *testing.T) {
	srv := chs.Server(t)
	ctx := context.Background()
	db := srv.NewDatabase(t)
	if err := Migrate(ctx, srv.DSN(db), nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.Exec(ctx, "INSERT INTO "+db+".schema_migrations (version, name, checksum, applied_at) VALUES (1, 'events', 'edited', now())"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Exec(ctx, "OPTIMIZE TABLE "+db+".schema_migrations FINAL"); err != nil {
		t.Fatal(err)
	}
	err := Migrate(ctx, srv.DSN(db), nil)
	if err == nil || !strings.Contains(err.Error(), "changed after it was applied") {
		t.Fatalf("Migrate over an edited migration: %v, want a refusal", err)
	}
}

func TestSplitStatements(t *testing.T) {
	got := splitStatements("-- a; comment\nCREATE TABLE a (x UInt8)\nENGINE = Memory;\n\n  -- b\nCREATE TABLE b (y String) ENGINE = Memory;\nSELECT 1")
	want := []string{"CREATE TABLE a (x UInt8)\nENGINE = Memory", "CREATE TABLE b (y String) ENGINE = Memory", "SELECT 1"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("splitStatements = %q, want %q", got, want)
	}
}

func TestExecDDLTreatsAlreadyExistsAsDone(t *testing.T) {
	srv := chs.Server(t)
	db, c := migrated(t, srv)
	ctx := context.Background()
	for range 2 {
		if err := execDDL(ctx, c.Conn(), "ALTER TABLE "+db+".events ADD COLUMN note String"); err != nil {
			t.Fatalf("ADD COLUMN twice: %v", err)
		}
		if err := execDDL(ctx, c.Conn(), "CREATE TABLE "+db+".events (a UInt8) ENGINE = Memory"); err != nil {
			t.Fatalf("CREATE TABLE of an existing table: %v", err)
		}
	}
	// Other errors are still errors.
	if err := execDDL(ctx, c.Conn(), "ALTER TABLE "+db+".nonexistent ADD COLUMN x String"); err == nil {
		t.Fatal("ALTER of a missing table reported success")
	}
}

// TestWarnsUnlessUTC: the tables' DateTime columns read in the server's
// time zone, so Open warns when it is not UTC (and not when it is).
func TestWarnsUnlessUTC(t *testing.T) {
	for name, want := range map[string]bool{"UTC": true, "Etc/UTC": true, "Etc/GMT": true, "Universal": true,
		"Africa/Abidjan": true, "Europe/London": false, "Asia/Tokyo": false, "Asia/Kolkata": false, "Not/AZone": false} {
		if got := isUTC(name); got != want {
			t.Errorf("isUTC(%q) = %v", name, got)
		}
	}
	tokyo, err := chtest.Start(chtest.Timezone("Asia/Tokyo"))
	if err != nil {
		t.Fatal(err)
	}
	defer tokyo.Close()
	for _, c := range []struct {
		srv  *chtest.Server
		warn bool
	}{{chs.Server(t), false}, {tokyo, true}} {
		db := c.srv.NewDatabase(t)
		if err := Migrate(context.Background(), c.srv.DSN(db), nil); err != nil {
			t.Fatal(err)
		}
		var logs strings.Builder
		cl, err := Open(context.Background(), c.srv.DSN(db), nil, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		cl.Close()
		if warned := strings.Contains(logs.String(), "time zone is not UTC"); warned != c.warn {
			t.Errorf("warned %v, want %v: %s", warned, c.warn, logs.String())
		}
		if c.warn && !strings.Contains(logs.String(), "Asia/Tokyo") {
			t.Errorf("the warning does not name the zone: %s", logs.String())
		}
	}
}

// TestSpecKeyColumns: the key columns SPEC §6 names, with the types it
// gives, are in every table after Migrate: window tables have
// window_start, window_end (DateTime) and scope (bot_signals too, whose
// rows are all 'all': until session 14 it had no scope column).
func TestSpecKeyColumns(t *testing.T) {
	srv := chs.Server(t)
	db := srv.NewDatabase(t)
	if err := Migrate(context.Background(), srv.DSN(db), nil); err != nil {
		t.Fatal(err)
	}
	out, err := srv.Query(context.Background(), "SELECT table, name, type FROM system.columns WHERE database = '"+db+"'")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]string{} // "table.column" → type
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "\t")
		have[f[0]+"."+f[1]] = f[2]
	}
	window := map[string]string{"window_start": "DateTime", "window_end": "DateTime", "scope": "String"}
	want := map[string]map[string]string{
		"quest_completion":    {"quest_id": "String"},
		"conversion_latency":  {"quest_id": "String"},
		"offer_yield":         {"placement": "String", "bidder_id": "String"},
		"bidstream_integrity": {"placement": "String", "kind": "String", "violations": "Int64"},
		"bot_signals":         {"entity_type": "String", "entity_id": "String", "score": "Float64", "reasons": "String", "flagged": "UInt8"},
	}
	for _, cols := range want {
		for c, typ := range window {
			cols[c] = typ
		}
	}
	want["creator_lift"] = map[string]string{"drop_id": "String", "creator_id": "String", "scope": "String", "final": "UInt8", "updated_at": "DateTime"}
	want["quest_conversions"] = map[string]string{"order_id": "String", "quest_id": "String", "drop_id": "String", "creator_id": "String", "latency_ms": "Int64"}
	for table, cols := range want {
		for c, typ := range cols {
			if got, ok := have[table+"."+c]; !ok {
				t.Errorf("%s has no column %s (SPEC §6)", table, c)
			} else if got != typ {
				t.Errorf("%s.%s is %s, want %s", table, c, got, typ)
			}
		}
	}
}

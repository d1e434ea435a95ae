package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/questline/questline/internal/chtest"
)

// TestMigrateSubcommand runs `questline migrate` twice, then three at once
// on a fresh database: every run succeeds and the schema is there.
func TestMigrateSubcommand(t *testing.T) {
	srv := chtest.New(t)
	ctx := context.Background()
	run := func(db string) error {
		var out, errb bytes.Buffer
		err := runMigrate(ctx, []string{"-clickhouse-dsn", srv.DSN(db), "-metrics-addr", ""}, &out, &errb)
		if err == nil && !strings.Contains(out.String(), "schema up to date") {
			t.Errorf("migrate printed %q", out.String())
		}
		return err
	}
	for range 2 {
		if err := run("questline"); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := run("questline_concurrent"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var tables [2]string
	for i, db := range []string{"questline", "questline_concurrent"} {
		out, err := srv.Query(ctx, "SELECT name FROM system.tables WHERE database = '"+db+"' ORDER BY name")
		if err != nil {
			t.Fatal(err)
		}
		tables[i] = strings.Join(strings.Fields(out), ",")
		for _, want := range []string{"events", "rejected_events", "schema_migrations"} {
			if !strings.Contains(","+tables[i]+",", ","+want+",") {
				t.Fatalf("%s lacks table %s: %s", db, want, tables[i])
			}
		}
	}
	if tables[0] != tables[1] {
		t.Fatalf("sequential and concurrent runs differ: %s vs %s", tables[0], tables[1])
	}
}

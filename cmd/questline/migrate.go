package main

import (
	"context"
	"fmt"
	"io"

	"github.com/questline/questline/sinks/clickhouse"
)

// runMigrate is the migrate role: it creates or upgrades the ClickHouse
// schema of -clickhouse-dsn and exits. Safe to run twice or concurrently.
func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	a, err := newApp("migrate", args, stderr, nil)
	if err != nil {
		return err
	}
	defer a.close()
	if err := clickhouse.Migrate(ctx, a.cfg.ClickHouseDSN, a.log); err != nil {
		return err
	}
	migs, err := clickhouse.Migrations()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "schema up to date: %d migrations\n", len(migs))
	return nil
}

package main

import (
	"context"
	"io"
)

// runMigrate is the migrate role.
func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return notBuilt("ClickHouse migrations")
}

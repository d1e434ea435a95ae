package main

import (
	"context"
	"io"
)

// runSink is the sink role.
func runSink(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return notBuilt("the ClickHouse sink")
}

package main

import (
	"context"
	"io"
)

// runAll runs every role in one process.
func runAll(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return notBuilt("the all-in-one run")
}

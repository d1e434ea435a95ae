package main

import (
	"context"
	"io"
)

// runIngest is the ingest role.
func runIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return notBuilt("edge ingest")
}

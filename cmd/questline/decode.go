package main

import (
	"context"
	"io"
)

// runDecode is the decode role.
func runDecode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return notBuilt("the record decoder")
}

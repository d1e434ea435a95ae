package main

import (
	"context"
	"io"
)

// runLoadgen is the loadgen role.
func runLoadgen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return notBuilt("the load generator")
}

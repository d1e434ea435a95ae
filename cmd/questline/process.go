package main

import (
	"context"
	"io"
)

// runProcess is the process role.
func runProcess(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return notBuilt("the window processors")
}

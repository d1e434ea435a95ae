package main

import (
	"context"
	"io"
)

// runAPI is the api role.
func runAPI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return notBuilt("the quest/drop API (SPEC §3)")
}

package main

import (
	"context"
	"io"
)

// runDashboards is the dashboards role.
func runDashboards(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return notBuilt("Grafana dashboards (SPEC §7)")
}

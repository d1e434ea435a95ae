package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/questline/questline/dashboards"
)

// runDashboards is the dashboards role: it writes the Grafana dashboards'
// JSON (package dashboards) into -out, dashboards/json by default, which
// Grafana's file provisioning loads (dashboards/provisioning). The output
// is deterministic; the committed files must equal it (a test checks).
func runDashboards(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dashboards", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", dashboards.DefaultDir, "directory to write the dashboards' JSON into")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	paths, err := dashboards.Write(*out)
	if err != nil {
		return err
	}
	for _, p := range paths {
		fmt.Fprintln(stdout, p)
	}
	return nil
}

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
// Like every flag, -out can be set by its environment variable,
// QUESTLINE_OUT (SPEC §8; until session 14 this role read none).
func runDashboards(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dashboards", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", dashboards.DefaultDir, "directory to write the dashboards' JSON into (QUESTLINE_OUT)")
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
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

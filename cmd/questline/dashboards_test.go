package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/questline/questline/dashboards"
)

// TestDashboardsSubcommand runs `questline dashboards -out dir`: it writes
// every generated dashboard, prints the paths, and refuses stray
// arguments.
func TestDashboardsSubcommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "json")
	var out, errb bytes.Buffer
	if code := runMain(t.Context(), []string{"dashboards", "-out", dir}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	files, err := dashboards.Generate()
	if err != nil {
		t.Fatal(err)
	}
	printed := strings.Fields(out.String())
	if len(printed) != len(files) {
		t.Fatalf("printed %q for %d dashboards", out.String(), len(files))
	}
	for i, f := range files {
		p := filepath.Join(dir, f.Name)
		if printed[i] != p {
			t.Errorf("printed %q, want %q", printed[i], p)
		}
		text, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(text, f.JSON) {
			t.Errorf("%s: %v", p, err)
		}
	}
	errb.Reset()
	if code := runMain(t.Context(), []string{"dashboards", "extra"}, &out, &errb); code != 2 {
		t.Errorf("stray argument: exit %d, want 2 (%s)", code, errb.String())
	}
}

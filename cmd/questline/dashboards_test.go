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

// TestDashboardsOutFromEnvironment: -out, like every flag, is also read
// from its environment variable (SPEC §8); the flag wins over it.
func TestDashboardsOutFromEnvironment(t *testing.T) {
	envDir, flagDir := filepath.Join(t.TempDir(), "env"), filepath.Join(t.TempDir(), "flag")
	t.Setenv("QUESTLINE_OUT", envDir)
	var out, errb bytes.Buffer
	if code := runMain(t.Context(), []string{"dashboards"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.HasPrefix(out.String(), envDir+string(filepath.Separator)) {
		t.Errorf("with QUESTLINE_OUT=%s it wrote %q", envDir, out.String())
	}
	out.Reset()
	if code := runMain(t.Context(), []string{"dashboards", "-out", flagDir}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.HasPrefix(out.String(), flagDir+string(filepath.Separator)) {
		t.Errorf("with -out %s it wrote %q", flagDir, out.String())
	}
}

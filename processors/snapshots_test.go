package processors

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/questline/questline/processors/catalog"
	"github.com/questline/questline/processors/pipeline"
)

// TestRemoveStaleTemps: a starting process removes the temporary snapshot
// files a killed writer left, and only those: not snapshots, not another
// process's write in progress, not other files.
func TestRemoveStaleTemps(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	files := map[string]time.Duration{
		"events-0.snap":        2 * time.Hour, // a snapshot, however old
		"events-0.snap.tmp123": 2 * time.Hour, // left by a crash
		"events-11.snap.tmp9":  61 * time.Minute,
		"events-1.snap.tmp456": time.Minute, // maybe being written
		"notes.tmp":            2 * time.Hour,
		"events-2.snap.tmp789": 0, // just written
	}
	for name, age := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := removeStaleTemps(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	want := []string{"events-0.snap", "events-1.snap.tmp456", "events-2.snap.tmp789", "notes.tmp"}
	if n != 2 || !slices.Equal(left, want) {
		t.Fatalf("removed %d, left %v; want 2 removed, %v left", n, left, want)
	}
	if n, err := removeStaleTemps(filepath.Join(dir, "missing"), now); n != 0 || err != nil {
		t.Fatalf("a missing directory: %d, %v", n, err)
	}
}

// TestWriteSnapshotKeep: a snapshot whose partition was revoked while it
// was written is not put in place (nor left as a temporary file); one that
// is kept restores to its offset.
func TestWriteSnapshotKeep(t *testing.T) {
	dir := t.TempDir()
	cfg := pipeline.DefaultConfig()
	p, err := pipeline.New(cfg, catalog.New())
	if err != nil {
		t.Fatal(err)
	}
	if err := writeSnapshot(dir, 3, 42, p.Freeze(), func() bool { return false }); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a revoked partition's snapshot left %d files", len(entries))
	}
	if err := writeSnapshot(dir, 3, 42, p.Freeze(), func() bool { return true }); err != nil {
		t.Fatal(err)
	}
	if _, next, ok, err := readSnapshot(dir, 3, cfg); !ok || err != nil || next != 42 {
		t.Fatalf("kept snapshot: ok %v, next %d, %v", ok, next, err)
	}
}

package processors

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKill9Binary builds the questline binary and SIGKILLs `questline
// process` 20 times at random points while it works through the input,
// then lets a restarted processor finish: the tables must equal those of an
// uninterrupted run.
func TestKill9Binary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "questline")
	build := exec.Command("go", "build", "-o", bin, "github.com/questline/questline/cmd/questline")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const events = 50_000
	f := newFixture(t, events, true)
	defaults := func(f *fixture, db, group, dir string) Config {
		c := f.config(t, db, group, dir)
		c.Pipeline = nil // the binary's: the defaults
		return c
	}
	ref, fr := f.newDB(t), f.fork(t)
	want := fr.runUntilStable(t, defaults(fr, ref, "ref9", t.TempDir()), 1)

	db := f.newDB(t)
	snapdir := t.TempDir()
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range 20 {
		cmd := exec.Command(bin, "process",
			"--kafka-brokers="+strings.Join(f.brokers, ","),
			"--clickhouse-dsn="+f.srv.DSN(db),
			"--metrics-addr=",
			"--snapshot-dir="+snapdir,
			"--process-group=kill9",
			"--process-flush-interval=100ms",
			"--process-snapshot-interval=300ms",
			"--process-idle-timeout=1h",
			"--kafka-partitions=4",
			"--log-level=error",
		)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			// The first process is killed right after its first snapshot,
			// however long joining the group takes on a loaded machine
			// (CI runs packages in parallel): the kills must cut real work.
			waitForSnapshot(t, snapdir, 90*time.Second)
		} else {
			time.Sleep(time.Duration(300+rng.IntN(1500)) * time.Millisecond)
		}
		if err := cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		cmd.Wait()
		if i == 0 && f.committedAtEnd(t, "kill9") {
			t.Fatal("the first process finished the input before it was killed: the kills cut nothing")
		}
	}
	snaps, _ := filepath.Glob(filepath.Join(snapdir, "events-*.snap"))
	if len(snaps) == 0 {
		t.Fatal("the killed processes wrote no snapshot: they did no work")
	}
	// The restart joins a fresh group: the killed processes never left
	// theirs, and waiting out their sessions only costs time. The snapshots
	// (not the group's offsets) say where each partition resumes.
	got := f.runUntilStable(t, defaults(f, db, "kill9-restart", snapdir), 1)
	if got != want {
		t.Fatalf("after 20 SIGKILLs the tables differ:\n%s", firstDiff(want, got))
	}
}

// waitForSnapshot waits until dir holds a partition snapshot.
func waitForSnapshot(t *testing.T, dir string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if snaps, _ := filepath.Glob(filepath.Join(dir, "events-*.snap")); len(snaps) > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no snapshot in %s after %v: the processor did no work", dir, timeout)
}

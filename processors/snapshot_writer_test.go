package processors

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestOldestDue: the partition whose snapshot is oldest once the interval
// has passed, the lowest on a tie, none before.
func TestOldestDue(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := map[int32]time.Time{3: t0.Add(2 * time.Second), 5: t0, 1: t0, 2: t0.Add(time.Second)}
	get := func(x time.Time) time.Time { return x }
	if got := oldestDue(at, get, t0.Add(9*time.Second), 10*time.Second); got != -1 {
		t.Errorf("before the interval: %d, want -1", got)
	}
	if got := oldestDue(at, get, t0.Add(10*time.Second), 10*time.Second); got != 1 {
		t.Errorf("a tie of 1 and 5: %d, want 1", got)
	}
	delete(at, 1)
	delete(at, 5)
	if got := oldestDue(at, get, t0.Add(20*time.Second), 10*time.Second); got != 2 {
		t.Errorf("%d, want 2", got)
	}
}

// newTestWriter returns a snapshot writer whose failures are counted in
// the returned metrics and logged to log.
func newTestWriter(log *bytes.Buffer) (snapshotWriter, *metrics) {
	m := newMetrics(nil, nil)
	return newSnapshotWriter("device", slog.New(slog.NewTextHandler(log, nil)), m), m
}

// TestSnapshotWriter: one write at a time, reported once finished; a
// revoked partition's write is told not to keep its file; a failed write
// is counted and logged, not reported as written, and the next one goes.
func TestSnapshotWriter(t *testing.T) {
	var log bytes.Buffer
	w, m := newTestWriter(&log)
	release := make(chan struct{})
	kept := make(chan bool, 1)
	w.start(7, 42, func(keep func() bool) error {
		<-release
		kept <- keep()
		return nil
	}, func() {})
	if _, busy := w.finished(); !busy {
		t.Fatal("not busy while writing")
	}
	w.revoked(8) // another partition: no effect
	w.revoked(7)
	close(release)
	if <-kept {
		t.Error("a revoked partition's snapshot was kept")
	}
	var mu sync.Mutex
	w.wait(&mu)
	if _, busy := w.finished(); busy {
		t.Fatal("busy after wait")
	}

	finish := func() *snapshotJob {
		t.Helper()
		for {
			j, busy := w.finished()
			if !busy {
				return j
			}
			time.Sleep(time.Millisecond)
		}
	}
	written := false
	w.start(1, 5, func(keep func() bool) error { return errors.New("disk full") }, func() { written = true })
	if j := finish(); j != nil || written {
		t.Fatalf("a failed write reported as written: %+v, written %v", j, written)
	}
	if n := testutil.ToFloat64(m.snapshotFailures.WithLabelValues("device")); n != 1 {
		t.Errorf("failures counted: %v, want 1", n)
	}
	if !strings.Contains(log.String(), "disk full") || !strings.Contains(log.String(), "partition=1") {
		t.Errorf("the failure is not logged with its partition and error: %q", log.String())
	}
	w.start(2, 9, func(keep func() bool) error { return nil }, func() { written = true })
	if j := finish(); j == nil || j.partition != 2 || j.next != 9 || !written {
		t.Fatalf("the write after a failure: %+v, written %v", j, written)
	}
	if j, busy := w.finished(); j != nil || busy {
		t.Fatalf("reported twice: %+v %v", j, busy)
	}
}

// TestSnapshotsFailingDoNotStopTheProcessors: with a snapshot directory
// that cannot be created (a file is in its place), every stage counts its
// failed snapshots and goes on; once the directory can be written, the
// snapshots and commits follow, and the tables equal those of a run that
// never failed.
func TestSnapshotsFailingDoNotStopTheProcessors(t *testing.T) {
	f := newFixture(t, 6000, true)
	db := f.newDB(t)
	dir := filepath.Join(t.TempDir(), "snapshots")
	if err := os.WriteFile(dir, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	freed := make(chan map[string]float64, 1)
	go func() {
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			counts := map[string]float64{}
			mfs, _ := reg.Gather()
			for _, mf := range mfs {
				if mf.GetName() != "questline_processor_snapshot_failures_total" {
					continue
				}
				for _, m := range mf.GetMetric() {
					counts[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
				}
			}
			if counts["source"] > 0 && counts["device"] > 0 && counts["merge"] > 0 {
				os.Remove(dir) // the disk is mended
				freed <- counts
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		freed <- nil
	}()
	got := f.runUntilStable(t, f.config(t, db, "snapfail", dir), 1, reg)
	counts := <-freed
	if counts == nil {
		t.Fatal("not every stage counted a failed snapshot")
	}
	t.Logf("failed snapshots before the directory was mended: %v", counts)
	if _, err := os.Stat(filepath.Join(dir, "events-0.snap")); err != nil {
		t.Errorf("no snapshot written once the directory could be: %v", err)
	}

	fr := f.fork(t)
	ref := fr.newDB(t)
	if want := fr.runUntilStable(t, fr.config(t, ref, "snapfail-ref", t.TempDir()), 1); got != want {
		t.Fatalf("the tables differ from a run whose snapshots never failed:\n%s", firstDiff(want, got))
	}
}

// TestSnapshotWriterWaitWhileRevoked: a revoke callback (the stage's lock
// held) may run while the stopping stage waits for its last write; under
// -race, wait's reads and writes of the job race with it unless wait takes
// the lock too.
func TestSnapshotWriterWaitWhileRevoked(t *testing.T) {
	w, _ := newTestWriter(new(bytes.Buffer))
	var mu sync.Mutex
	release := make(chan struct{})
	w.start(3, 1, func(keep func() bool) error { <-release; return nil }, func() {})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 100 {
			mu.Lock()
			w.revoked(3)
			mu.Unlock()
		}
		close(release)
		for range 100 {
			mu.Lock()
			w.revoked(3)
			mu.Unlock()
		}
	}()
	w.wait(&mu)
	<-done
	if _, busy := w.finished(); busy {
		t.Fatal("busy after wait")
	}
}

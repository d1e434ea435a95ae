package processors

import (
	"errors"
	"sync"
	"testing"
	"time"
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

// TestSnapshotWriter: one write at a time, reported once finished with
// its error; a revoked partition's write is told not to keep its file.
func TestSnapshotWriter(t *testing.T) {
	var w snapshotWriter
	release := make(chan struct{})
	kept := make(chan bool, 1)
	written := false
	w.start(7, 42, func(keep func() bool) error {
		<-release
		kept <- keep()
		return errors.New("disk full")
	}, func() { written = true })
	if _, busy, _ := w.finished(); !busy {
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
	if _, busy, err := w.finished(); busy || err != nil {
		t.Fatalf("after wait: busy %v, err %v", busy, err)
	}
	w.start(1, 5, func(keep func() bool) error { return errors.New("disk full") }, func() { written = true })
	for {
		j, busy, err := w.finished()
		if busy {
			time.Sleep(time.Millisecond)
			continue
		}
		if j == nil || j.partition != 1 || j.next != 5 || err == nil || written {
			t.Fatalf("finished: %+v, %v; written %v", j, err, written)
		}
		break
	}
	if j, busy, err := w.finished(); j != nil || busy || err != nil {
		t.Fatalf("reported twice: %+v %v %v", j, busy, err)
	}
}

// TestSnapshotWriterWaitWhileRevoked: a revoke callback (the stage's lock
// held) may run while the stopping stage waits for its last write; under
// -race, wait's reads and writes of the job race with it unless wait takes
// the lock too.
func TestSnapshotWriterWaitWhileRevoked(t *testing.T) {
	var w snapshotWriter
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
	if _, busy, err := w.finished(); busy || err != nil {
		t.Fatalf("after wait: busy %v, err %v", busy, err)
	}
}

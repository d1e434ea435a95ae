package processors

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// snapshotWriter writes a stage's partition snapshots in the background,
// one at a time, for the three stages that keep state (source, device,
// merge). A stage calls it with its lock held: finished after each flush
// whose rows are written, then start for the partition due (oldestDue);
// revoked from its revoke callback; wait (which takes the lock itself)
// before it stops, so that it does not stop in the middle of a write (a crash there leaves the previous
// snapshot, which is as valid).
//
// A write that fails (a full disk, a directory that cannot be written) is
// logged and counted (questline_processor_snapshot_failures_total, which
// alerts/ pages on as QuestlineSnapshotsFailing), and the stage goes on:
// the partition keeps its previous snapshot and committed offset, and its
// next snapshot is tried once the interval has passed again. A snapshot
// only shortens a restart (without one a partition is rebuilt from an
// older snapshot or its start, to the same rows), so stopping the process
// for it, as the stages did until session 9, traded a slower restart for
// a crash loop on a full disk.
type snapshotWriter struct {
	stage    string // source, device or merge, for the log
	log      *slog.Logger
	failures prometheus.Counter
	job      *snapshotJob // the snapshot being written, if any
}

// newSnapshotWriter returns the snapshot writer of stage (a label value of
// questline_processor_snapshot_failures_total).
func newSnapshotWriter(stage string, log *slog.Logger, m *metrics) snapshotWriter {
	return snapshotWriter{stage: stage, log: log, failures: m.snapshotFailures.WithLabelValues(stage)}
}

// snapshotJob is a partition's snapshot being written in the background.
type snapshotJob struct {
	partition int32
	next      int64
	done      chan error
	// revoked: the partition was revoked meanwhile, so the file is not put
	// in place and the offset not committed.
	revoked atomic.Bool
}

// finished reports on the snapshot being written: busy while it still is;
// else the job whose file was written since the last call (nil if none,
// or if it failed: logged and counted).
func (w *snapshotWriter) finished() (j *snapshotJob, busy bool) {
	if w.job == nil {
		return nil, false
	}
	select {
	case err := <-w.job.done:
		j, w.job = w.job, nil
		if err != nil {
			w.failures.Inc()
			w.log.Warn("processors: snapshot write failed; the partition keeps its previous snapshot and offset, and the next is tried after the snapshot interval",
				"stage", w.stage, "partition", j.partition, "err", err)
			return nil, false
		}
		return j, false
	default:
		return nil, true
	}
}

// start writes a snapshot of partition, whose state resumes at offset
// next, in the background: write puts the file in place only if keep,
// asked just before, says so (the partition was not revoked meanwhile);
// written runs after a write that succeeded.
func (w *snapshotWriter) start(partition int32, next int64, write func(keep func() bool) error, written func()) {
	j := &snapshotJob{partition: partition, next: next, done: make(chan error, 1)}
	w.job = j
	go func() {
		err := write(func() bool { return !j.revoked.Load() })
		if err == nil {
			written()
		}
		j.done <- err
	}()
}

// revoked marks the snapshot being written as not to be put in place if
// it is of partition: the partition's new owner may write a newer one
// first.
func (w *snapshotWriter) revoked(partition int32) {
	if j := w.job; j != nil && j.partition == partition {
		j.revoked.Store(true)
	}
}

// wait waits for the snapshot being written, if any. It is called
// without the stage's lock mu held (the write may take seconds), while a
// revoke callback may still run: it takes mu to read and clear the job.
func (w *snapshotWriter) wait(mu sync.Locker) {
	mu.Lock()
	j := w.job
	mu.Unlock()
	if j == nil {
		return
	}
	<-j.done
	mu.Lock()
	if w.job == j {
		w.job = nil
	}
	mu.Unlock()
}

// oldestDue returns the partition whose last snapshot (snapAt) is the
// oldest once interval has passed since it, the lowest such partition on
// a tie; -1 when none is due.
func oldestDue[T any](parts map[int32]T, snapAt func(T) time.Time, now time.Time, interval time.Duration) int32 {
	var due int32 = -1
	var dueAt time.Time
	for partition, p := range parts {
		at := snapAt(p)
		if now.Sub(at) < interval {
			continue
		}
		if due < 0 || at.Before(dueAt) || at.Equal(dueAt) && partition < due {
			due, dueAt = partition, at
		}
	}
	return due
}

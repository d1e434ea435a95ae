package api

// The sequencer's side of the claims fold snapshots (snapshot.go: the
// format and the file): restoring them at start, and writing them now
// and then from the reading loop.

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/kafka"
)

// restore installs the folds of the snapshots under snapDir that match
// the log (ends: each partition's end offset at start), so that run reads
// those partitions from the snapshots' offsets. Partition 0's snapshot
// carries the layout: without a trusted one, none is restored.
func (s *sequencer) restore(ctx context.Context, ends map[int32]int64) {
	if s.snapDir == "" || s.snapEvery <= 0 {
		return
	}
	t0 := time.Now()
	removeStaleTemps(s.snapDir, time.Hour)
	folds := map[int32]*Fold{}
	headers := map[int32]snapshotHeader{}
	var layout int32
	for p, end := range ends {
		b, err := os.ReadFile(snapshotPath(s.snapDir, p))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		h, f, err := s.trust(b, err, p, end)
		if err != nil {
			s.m.snapshotFailures.Inc()
			s.log.Warn("refusing a claims fold snapshot; reading its partition from the start", "partition", p, "file", snapshotPath(s.snapDir, p), "err", err)
			continue
		}
		folds[p] = f
		headers[p] = h
	}
	if len(folds) > 0 {
		sums, err := s.lastRecords(ctx, folds)
		for p, f := range folds {
			if f.next == 0 {
				continue
			}
			if got, ok := sums[p]; !ok || got != headers[p].LastSum {
				why := fmt.Errorf("the record before its offset %d is not the one it folded last (the log was rewritten?)", f.next)
				if !ok {
					why = fmt.Errorf("the record before its offset %d could not be read: %v", f.next, err)
				}
				s.m.snapshotFailures.Inc()
				s.log.Warn("refusing a claims fold snapshot; reading its partition from the start", "partition", p, "file", snapshotPath(s.snapDir, p), "err", why)
				delete(folds, p)
			}
		}
	}
	for p, f := range folds {
		if p == 0 {
			layout = headers[p].Layout
		}
		s.snapped[p] = f.next
		s.lastSum[p] = headers[p].LastSum
	}
	if len(folds) == 0 {
		s.log.Info("no claims fold snapshot to restore; reading the claims log from the start", "dir", s.snapDir)
		return
	}
	if layout == 0 {
		s.log.Warn("no trusted claims fold snapshot of partition 0 (it carries the layout): reading every partition from the start", "dir", s.snapDir)
		s.snapped = map[int32]int64{}
		s.lastSum = map[int32]uint32{}
		return
	}
	s.mu.Lock()
	s.layout = layout
	for p, f := range folds {
		s.folds[p] = f
		s.restored[p] = f.next
	}
	s.setGauges()
	s.mu.Unlock()
	s.m.restored.Set(float64(len(folds)))
	s.log.Info("restored the claims fold from snapshots", "partitions", len(folds), "of", len(ends), "offsets", s.restored, "took", time.Since(t0).String())
}

// trust decodes partition p's snapshot b (read with err) and checks it
// against the log: the error says why it cannot be trusted.
func (s *sequencer) trust(b []byte, err error, p int32, end int64) (snapshotHeader, *Fold, error) {
	if err != nil {
		return snapshotHeader{}, nil, err
	}
	h, f, err := decodeSnapshot(b)
	switch {
	case err != nil:
	case h.Partition != p:
		err = fmt.Errorf("it is partition %d's", h.Partition)
	case h.TopicID != [16]byte{} && s.topicID != [16]byte{} && h.TopicID != s.topicID:
		err = errors.New("it was taken of another questline.claims (another topic id: the topic was re-created)")
	case h.Partitions != s.nparts:
		err = fmt.Errorf("it was taken of a questline.claims of %d partitions, the topic has %d", h.Partitions, s.nparts)
	case h.Layout <= 0 || h.Layout > h.Partitions:
		err = fmt.Errorf("bad layout %d", h.Layout)
	case h.Retention != NewFoldRetention(0, s.retention).retention:
		err = fmt.Errorf("it was taken with a claims retention of %v, this instance's is %v", time.Duration(h.Retention)*time.Millisecond, s.retention)
	case f.next > end:
		err = fmt.Errorf("its offset %d is past the partition's end %d (the topic was re-created?)", f.next, end)
	}
	return h, f, err
}

// snapshotDue returns when the next snapshot is due, if a partition
// changed since its last one (run's goroutine only).
func (s *sequencer) snapshotDue() (time.Time, bool) {
	if s.snapDir == "" || s.snapEvery <= 0 || s.Ready(context.Background()) != nil {
		return time.Time{}, false
	}
	for p, f := range s.folds {
		if off, ok := s.snapped[p]; !ok || off != f.next {
			// Not in the past: while the last files are still being
			// written, the poll would otherwise spin.
			return later(s.lastSnap.Add(s.snapEvery), time.Now().Add(10*time.Millisecond)), true
		}
	}
	return time.Time{}, false
}

// snapshot writes the folds of the partitions that changed since their
// last snapshot, every snapEvery once caught up; final (a clean stop)
// writes at once and waits. Their views are taken here, in the folds'
// only writer, so folding pauses meanwhile (a walk of the decisions map:
// questline_api_claims_snapshot_seconds); a goroutine encodes and writes
// the files.
func (s *sequencer) snapshot(final bool) {
	if s.snapDir == "" || s.snapEvery <= 0 || s.Ready(context.Background()) != nil {
		return
	}
	if !final && time.Since(s.lastSnap) < s.snapEvery {
		return
	}
	if final {
		s.snapMu.Lock()
	} else if !s.snapMu.TryLock() {
		return // the last ones are still being written
	}
	for _, p := range s.snapFailed {
		delete(s.snapped, p) // written again
	}
	s.snapFailed = nil
	s.lastSnap = time.Now()
	t0 := time.Now()
	type file struct {
		h snapshotHeader
		v *foldView
	}
	var files []file
	for p, f := range s.folds {
		if off, ok := s.snapped[p]; ok && off == f.next {
			continue
		}
		h := snapshotHeader{TopicID: s.topicID, Partitions: s.nparts, Layout: s.layout, Partition: p, Retention: f.retention, LastSum: s.lastSum[p]}
		files = append(files, file{h, f.view()})
		s.snapped[p] = f.next
	}
	if len(files) > 0 {
		s.m.snapshotSeconds.Set(time.Since(t0).Seconds())
	}
	write := func() {
		defer s.snapMu.Unlock()
		for _, f := range files {
			if err := writeSnapshot(s.snapDir, f.h.Partition, encodeView(f.h, f.v)); err != nil {
				s.m.snapshotFailures.Inc()
				s.snapFailed = append(s.snapFailed, f.h.Partition)
				s.log.Warn("writing a claims fold snapshot failed", "partition", f.h.Partition, "err", err)
			}
		}
	}
	if final {
		write()
		return
	}
	go write()
}

// lastRecords returns the CRC-32C of the value of the record before each
// fold's offset (folds at offset 0 have none), read with a client of its
// own within 10 s.
func (s *sequencer) lastRecords(ctx context.Context, folds map[int32]*Fold) (map[int32]uint32, error) {
	want := map[int32]kgo.Offset{}
	for p, f := range folds {
		if f.next > 0 {
			want[p] = kgo.NewOffset().At(f.next - 1)
		}
	}
	sums := map[int32]uint32{}
	if len(want) == 0 {
		return sums, nil
	}
	cl, err := kafka.NewClient(s.brokers, s.log, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{kafka.TopicClaims: want}))
	if err != nil {
		return sums, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	seen := map[int32]bool{}
	for len(seen) < len(want) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return sums, ctx.Err()
		}
		fs.EachRecord(func(r *kgo.Record) {
			if seen[r.Partition] {
				return
			}
			seen[r.Partition] = true
			if r.Offset == folds[r.Partition].next-1 {
				sums[r.Partition] = crc32.Checksum(r.Value, crcTable)
			}
		})
	}
	return sums, nil
}

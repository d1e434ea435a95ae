package processors

import (
	"bufio"
	"encoding/binary"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"time"
)

// mergeSnapshotPath is the file of a partials partition's snapshot, beside
// the other stages' in Config.SnapshotDir.
func mergeSnapshotPath(dir string, partition int32) string {
	return filepath.Join(dir, fmt.Sprintf("partials-%d.snap", partition))
}

// mergeSnapshotVersion is the version of a merge snapshot; a process
// refuses another and re-reads the partition from its start.
const mergeSnapshotVersion = 1

// mergeHeader starts a merge snapshot (gob). Partials follow it, each as a
// uvarint length and its binary envelope (partial.appendBinary, the row
// as JSON), then the checksum trailer (mandatory).
type mergeHeader struct {
	Version int
	// Next is the next offset of the partials partition: the records
	// below it are in the state, the fetch resumes there.
	Next     int64
	SrcWM    map[int32]int64 // every source's Done watermark (its marker)
	Partials int
}

// frozenMerge is a partials partition's snapshot as of one point: the
// partials are copies of the state's (their decoded rows shared: a
// merger's Merge leaves them unchanged and a newer partial replaces,
// never changes, them), so it may be written while the stage goes on.
type frozenMerge struct {
	hdr   mergeHeader
	parts []partial
}

// freeze returns the state's snapshot. Taken after the merged rows of
// every partial applied were written and the evicted identities'
// tombstones produced (nothing is dirty).
func (s *mergeState) freeze() *frozenMerge {
	f := &frozenMerge{hdr: mergeHeader{Version: mergeSnapshotVersion, Next: s.next, SrcWM: maps.Clone(s.srcWM)}}
	for _, bySource := range s.latest {
		for _, p := range bySource {
			f.parts = append(f.parts, p)
		}
	}
	f.hdr.Partials = len(f.parts)
	return f
}

// writeTo writes the snapshot to w; a partial decoded by the stage is
// encoded again (its row as JSON, as newPartial wrote it).
func (f *frozenMerge) writeTo(w io.Writer) error {
	if err := gob.NewEncoder(w).Encode(&f.hdr); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	var b []byte
	for _, p := range f.parts {
		if p.decoded != nil {
			row, err := json.Marshal(p.decoded)
			if err != nil {
				return err
			}
			p.Row = row
		}
		b = p.appendBinary(b[:0])
		bw.Write(binary.AppendUvarint(nil, uint64(len(b))))
		bw.Write(b)
	}
	return bw.Flush()
}

// writeMergeSnapshot stores a partials partition's snapshot atomically
// (writeAtomic): put in place only if keep says so just before.
func writeMergeSnapshot(dir string, partition int32, f *frozenMerge, keep func() bool) error {
	return writeAtomic(dir, mergeSnapshotPath(dir, partition), f.writeTo, keep)
}

// readMergeSnapshot restores a partials partition for a stage with the
// given mergers and number of source partitions; ok is false when it has
// no snapshot. Every partial's row is decoded here, so a file that does
// not restore (damaged, truncated, another version, a row its merger
// cannot read) is an error, and the caller re-reads the partition from
// its start, rather than a failure at every merge after.
func readMergeSnapshot(dir string, partition int32, ms map[string]merger, sources int) (st *mergeState, ok bool, err error) {
	var hdr mergeHeader
	ok, err = readAtomic(mergeSnapshotPath(dir, partition), false, func(r *checksumReader) error {
		if err := gob.NewDecoder(r).Decode(&hdr); err != nil {
			return fmt.Errorf("processors: merge snapshot: %w", err)
		}
		if hdr.Version != mergeSnapshotVersion || hdr.Next < 0 || hdr.Partials < 0 {
			return fmt.Errorf("processors: merge snapshot version %d (want %d), offset %d, %d partials", hdr.Version, mergeSnapshotVersion, hdr.Next, hdr.Partials)
		}
		st = newMergeState(sources)
		for i := range hdr.Partials {
			n, err := binary.ReadUvarint(r)
			if err == nil && n > 1<<30 {
				err = fmt.Errorf("a partial of %d bytes", n)
			}
			if err != nil {
				return fmt.Errorf("processors: merge snapshot: partial %d: %w", i, err)
			}
			b := make([]byte, n)
			if _, err := io.ReadFull(r, b); err != nil {
				return fmt.Errorf("processors: merge snapshot: partial %d: %w", i, err)
			}
			var p partial
			if err := decodePartial(b, &p); err != nil {
				return fmt.Errorf("processors: merge snapshot: partial %d: %w", i, err)
			}
			m := ms[p.Table]
			if m == nil {
				return fmt.Errorf("processors: merge snapshot: partial %d of table %q", i, p.Table)
			}
			if p.decoded, err = m.decode(p.Row); err != nil {
				return fmt.Errorf("processors: merge snapshot: partial %s: %w", p.key(), err)
			}
			p.Row = nil
			st.add(p)
		}
		return nil
	})
	if !ok || err != nil {
		return nil, false, err
	}
	if hdr.SrcWM != nil {
		st.srcWM = hdr.SrcWM
	}
	st.next = hdr.Next
	// Every identity stays dirty: the first poll merges it again, writing
	// the row already written (the same version and content) and showing
	// it to the yield gauges, as a read from the start did.
	return st, true, nil
}

// snapshot takes the snapshot of one partials partition due for it and
// writes it in the background, as the other stages do (one at a time,
// one per poll at most, the partition waiting longest once
// SnapshotInterval has passed). Called after the merged rows were written
// and the tombstones produced, with s.mu held.
func (s *mergeStage) snapshot(now time.Time) {
	if _, busy := s.snaps.finished(); busy {
		return // still writing: the next poll looks again
	}
	due := oldestDue(s.states, func(st *mergeState) time.Time { return st.snapAt }, now, s.cfg.SnapshotInterval)
	if due < 0 {
		return
	}
	st := s.states[due]
	start := time.Now()
	f := st.freeze()
	st.snapAt = now
	s.snaps.start(due, st.next, func(keep func() bool) error {
		return writeMergeSnapshot(s.cfg.SnapshotDir, due, f, keep)
	}, func() { s.m.mergeSnapshot.Observe(time.Since(start).Seconds()) })
}

// restore returns the state of a newly assigned partials partition: from
// its snapshot, or, without one or with one that does not restore or is
// past the partition's end (ends: logEnds; logged), empty, to be rebuilt
// from the partition's start.
func (s *mergeStage) restore(partition int32, ends map[int32]int64) *mergeState {
	start := time.Now()
	st, ok, err := readMergeSnapshot(s.cfg.SnapshotDir, partition, s.mergers, s.sources)
	if ok && err == nil {
		err = pastEnd(ends, partition, st.next)
	}
	if err != nil {
		s.log.Error("processors: unreadable merge snapshot; re-reading the partition from its start", "partition", partition, "err", err)
	}
	if !ok || err != nil {
		st = newMergeState(s.sources)
	}
	s.m.mergeRestore.Observe(time.Since(start).Seconds())
	st.snapAt = s.cfg.Now()
	return st
}

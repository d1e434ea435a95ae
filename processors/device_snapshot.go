package processors

import (
	"cmp"
	"encoding/gob"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"time"

	"github.com/questline/questline/processors/bots"
	"github.com/questline/questline/processors/window"
)

// deviceSnapshotPath is the file of a device partition's snapshot, beside
// the source stage's (snapshotPath) in Config.SnapshotDir.
func deviceSnapshotPath(dir string, partition int32) string {
	return filepath.Join(dir, fmt.Sprintf("devices-%d.snap", partition))
}

// deviceSnapshotVersion is the version of deviceState; a process refuses a
// snapshot of another version and re-reads the partition from its start.
// Version 2 adds the flagged windows not yet closed and the last marker
// (Pending, Marked).
const deviceSnapshotVersion = 2

// deviceState is a partition of questline.devices as its snapshot holds
// it. The file is the gob value followed by the checksum trailer
// (checksumMagic, CRC-32C), which is not optional here: device snapshots
// never existed without it.
type deviceState struct {
	Version int
	// Next is the next offset of the devices partition: the records below
	// it are in the state, the fetch resumes there.
	Next int64
	// Window is the bot window's size, slide and lateness (ms) the state
	// was built with: panes of another shape are not restored.
	Window [3]int64
	// MaxOff and SrcWM are devicePart's: per source partition, the highest
	// source offset applied and the watermark.
	MaxOff, SrcWM map[int32]int64
	// Bots is the processor's state: panes with their versions and dirty
	// marks, the emission watermark, the windows' last emissions and the
	// pending updates (window.EngineState), the geo marks.
	Bots *bots.State
	// Pending are the flagged device windows whose flags are not sent
	// yet; Marked is the watermark of the last marker sent.
	Pending []PendingFlags
	Marked  int64
	// frozen is the processor's state as frozen, which encoded fills Bots
	// from off the stage (nil once Bots is set).
	frozen *bots.Frozen
}

// PendingFlags is a flagged device window and its users, in a snapshot.
type PendingFlags struct {
	Device string
	Start  int64
	Users  []string
}

// encoded returns st with Bots made from the frozen processor state: the
// value to encode.
func (st *deviceState) encoded() *deviceState {
	if st.frozen == nil {
		return st
	}
	c := *st
	c.Bots, c.frozen = st.frozen.State(), nil
	return &c
}

// pendingFlags returns the pending windows in a snapshot's order (the
// users lists are never written again: shared).
func pendingFlags(m map[int64]map[string][]string) []PendingFlags {
	var out []PendingFlags
	for start, w := range m {
		for device, users := range w {
			out = append(out, PendingFlags{Device: device, Start: start, Users: users})
		}
	}
	slices.SortFunc(out, func(a, b PendingFlags) int {
		return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(a.Device, b.Device))
	})
	return out
}

// windowShape returns the fields of spec a device state depends on.
func windowShape(spec window.Spec) [3]int64 {
	return [3]int64{spec.Size.Milliseconds(), spec.Slide.Milliseconds(), spec.Lateness.Milliseconds()}
}

// freeze returns the partition's snapshot as of now. Taken after a flush
// whose rows were written: a partition restored from it re-emits,
// identically, whatever it emitted after. The maps are copied and
// bots.Processor.Freeze shares no memory the processor writes again, so
// the state may be encoded (encoded) while the partition goes on.
func (d *devicePart) freeze(spec window.Spec) *deviceState {
	return &deviceState{
		Version: deviceSnapshotVersion, Next: d.next, Window: windowShape(spec),
		MaxOff: maps.Clone(d.maxOff), SrcWM: maps.Clone(d.srcWM), frozen: d.p.Freeze(),
		Pending: pendingFlags(d.pending), Marked: d.marked,
	}
}

// writeDeviceSnapshot stores a device partition's snapshot atomically
// (writeAtomic): put in place only if keep says so just before.
func writeDeviceSnapshot(dir string, partition int32, st *deviceState, keep func() bool) error {
	return writeAtomic(dir, deviceSnapshotPath(dir, partition), func(w io.Writer) error {
		return gob.NewEncoder(w).Encode(st.encoded())
	}, keep)
}

// readDeviceSnapshot restores a device partition for a stage with the
// given bot config and number of source partitions; ok is false when it
// has no snapshot. An error means a file that cannot be restored (damaged,
// truncated, another version or window shape): the caller re-reads the
// partition from its start.
func readDeviceSnapshot(dir string, partition int32, cfg bots.Config, sources int) (d *devicePart, ok bool, err error) {
	var st deviceState
	ok, err = readAtomic(deviceSnapshotPath(dir, partition), false, func(r *checksumReader) error {
		if err := gob.NewDecoder(r).Decode(&st); err != nil {
			return fmt.Errorf("processors: device snapshot: %w", err)
		}
		return nil
	})
	if !ok || err != nil {
		return nil, false, err
	}
	switch {
	case st.Version != deviceSnapshotVersion:
		return nil, false, fmt.Errorf("processors: device snapshot version %d, want %d", st.Version, deviceSnapshotVersion)
	case st.Window != windowShape(cfg.Window):
		return nil, false, fmt.Errorf("processors: device snapshot of windows %v (size, slide, lateness ms), config %v", st.Window, windowShape(cfg.Window))
	case st.Next < 0 || st.Bots == nil:
		return nil, false, fmt.Errorf("processors: device snapshot: offset %d, state %v", st.Next, st.Bots != nil)
	}
	d, err = restoreDevicePart(cfg, sources, &st)
	if err != nil {
		return nil, false, err
	}
	return d, true, nil
}

// restoreDevicePart returns the partition a snapshot holds. A damaged
// state that still decoded can hold what no processor wrote (an event
// offset beyond a pane): an error, not a panic at every start.
func restoreDevicePart(cfg bots.Config, sources int, st *deviceState) (d *devicePart, err error) {
	p, err := bots.New(cfg, nil, nil)
	if err != nil {
		return nil, err
	}
	defer func() {
		if v := recover(); v != nil {
			d, err = nil, fmt.Errorf("processors: device snapshot: inconsistent state: %v", v)
		}
	}()
	p.Restore(st.Bots)
	d = newDevicePart(p, sources)
	d.next, d.marked = st.Next, st.Marked
	if st.MaxOff != nil { // gob leaves an empty map out
		d.maxOff = st.MaxOff
	}
	if st.SrcWM != nil {
		d.srcWM = st.SrcWM
	}
	for _, f := range st.Pending {
		d.setPending(f.Start, f.Device, f.Users)
	}
	return d, nil
}

// snapshot takes the snapshot of one device partition due for it (the one
// whose last snapshot is oldest, once SnapshotInterval has passed since)
// and writes it in the background, as the source stage does: the loop
// stops only while bots.Processor.Snapshot copies the state; one snapshot
// at a time, one partition per poll at most. Called after a flush whose
// rows were written, with s.mu held. The stage's offset commits stay
// informational (commitPolled): the snapshot says where a partition
// resumes.
func (s *deviceStage) snapshot(now time.Time) {
	if _, busy := s.snaps.finished(); busy {
		return // still writing: the next poll looks again
	}
	due := oldestDue(s.parts, func(dp *devicePart) time.Time { return dp.snapAt }, now, s.cfg.SnapshotInterval)
	if due < 0 {
		return
	}
	dp := s.parts[due]
	start := time.Now()
	st := dp.freeze(s.deviceConfig().Window)
	s.m.devicePause.Observe(time.Since(start).Seconds())
	dp.snapAt = now
	s.snaps.start(due, dp.next, func(keep func() bool) error {
		return writeDeviceSnapshot(s.cfg.SnapshotDir, due, st, keep)
	}, func() { s.m.deviceSnapshot.Observe(time.Since(start).Seconds()) })
}

// restore returns the state of a newly assigned partition: from its
// snapshot, or, without one or with one that cannot be restored or is
// past the partition's end (ends: logEnds; logged), empty, to be rebuilt
// from the partition's start.
func (s *deviceStage) restore(partition int32, ends map[int32]int64) (*devicePart, error) {
	start := time.Now()
	dp, ok, err := readDeviceSnapshot(s.cfg.SnapshotDir, partition, s.deviceConfig(), s.sources)
	if ok && err == nil {
		err = pastEnd(ends, partition, dp.next)
	}
	if err != nil {
		s.log.Error("processors: unreadable device snapshot; re-reading the partition from its start", "partition", partition, "err", err)
	}
	if !ok || err != nil {
		p, err := bots.New(s.deviceConfig(), nil, nil)
		if err != nil {
			return nil, err
		}
		dp = newDevicePart(p, s.sources)
	}
	s.m.deviceRestore.Observe(time.Since(start).Seconds())
	dp.snapAt = s.cfg.Now()
	return dp, nil
}

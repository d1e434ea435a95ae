package api

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"time"
)

// Snapshots of the claims fold bound an instance's restart: each instance
// writes, now and then, each partition's fold at its offset to a file of
// its own under the snapshot directory (temp file, fsync, rename), and a
// starting instance restores those it can trust and reads the log from
// their offsets instead of from the start. The fold is a function of the
// record prefix, so a fold restored at offset o and then fed the records
// from o is the fold of the whole prefix, whichever instance wrote it.
//
// The encoding (version snapshotVersion): the magic, a uvarint version,
// the header and the fold (varints and length-prefixed strings), then a
// CRC-32C of everything before it. A snapshot is refused (the partition
// is read from the start, logged) when it does not decode, has another
// version or a bad checksum, or does not match the log: another topic id
// (the topic was re-created), another partition count or layout, another
// claims retention, an offset past the partition's end, or a record
// before that offset other than the one it folded last (a log rewritten
// under the same topic: an embedded broker that lost its last records
// and took new ones at their offsets).

const (
	snapshotMagic   = "QLCLAIMS"
	snapshotVersion = 1
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// snapshotHeader is what a snapshot says about the log it was taken of.
type snapshotHeader struct {
	TopicID    [16]byte // of questline.claims (zero: the broker gives none)
	Partitions int32    // the topic's partition count when it was taken
	Layout     int32    // the partitions drops are placed among
	Partition  int32
	Retention  int64  // the fold's retention (ms)
	LastSum    uint32 // CRC-32C of the value of the record before the fold's offset (none at offset 0)
}

// snapshotPath is partition p's snapshot file under dir.
func snapshotPath(dir string, p int32) string {
	return filepath.Join(dir, fmt.Sprintf("claims-%d.snap", p))
}

// foldView is what a snapshot holds of a fold, taken by the fold's only
// writer between records: the drops and the few applied records and
// forgotten ids copied, the decisions by pointer (a Decision never changes
// once made), so that it can be encoded while the fold goes on. Taking it
// walks the decisions map only; encoding reads every decision (cache
// misses: about 0.5 µs each), which is why it is not done under the fold.
type foldView struct {
	next, clock, due int64
	retention        int64
	drops            []Drop
	decisions        []*Decision
	applied          []appliedView
	gone             []goneView
}

type appliedView struct {
	eventID string
	offset  int64
	rec     []byte
}

type goneView struct {
	id string
	g  goneDrop
}

// view returns f's foldView.
func (f *Fold) view() *foldView {
	v := &foldView{next: f.next, clock: f.clock, due: f.due, retention: f.retention,
		drops: make([]Drop, 0, len(f.drops)), decisions: make([]*Decision, 0, len(f.claims))}
	for _, d := range f.drops {
		v.drops = append(v.drops, *d)
	}
	for _, d := range f.claims {
		v.decisions = append(v.decisions, d)
	}
	for ev, a := range f.applied {
		v.applied = append(v.applied, appliedView{ev, a.offset, a.rec.Marshal()})
	}
	for id, g := range f.gone {
		v.gone = append(v.gone, goneView{id, g})
	}
	return v
}

// encodeSnapshot returns f's snapshot with header h.
func encodeSnapshot(h snapshotHeader, f *Fold) []byte { return encodeView(h, f.view()) }

// encodeView returns the snapshot of v with header h.
func encodeView(h snapshotHeader, v *foldView) []byte {
	e := &enc{b: make([]byte, 0, 64+len(v.decisions)*48)}
	e.b = append(e.b, snapshotMagic...)
	e.uint(snapshotVersion)
	e.b = append(e.b, h.TopicID[:]...)
	e.int(int64(h.Partitions))
	e.int(int64(h.Layout))
	e.int(int64(h.Partition))
	e.int(h.Retention)
	e.b = binary.LittleEndian.AppendUint32(e.b, h.LastSum)

	e.int(v.next)
	e.int(v.clock)
	e.int(v.due)
	e.uint(uint64(len(v.drops)))
	for i := range v.drops {
		d := &v.drops[i]
		e.str(d.ID)
		e.str(d.CreatorID)
		e.uint(flags(d.Scheduled, d.Started, d.Ended, d.HasInventory))
		for _, x := range []int64{d.StartsAt, d.EndsAt, d.StartedAt, d.StartEndsAt, d.EndedAt, d.Inventory, d.Granted} {
			e.int(x)
		}
	}
	e.uint(uint64(len(v.decisions)))
	for _, d := range v.decisions {
		e.str(d.ClaimID)
		e.str(d.DropID)
		e.str(d.UserID)
		e.str(d.DeviceID)
		e.str(d.KeyID)
		e.int(d.At)
		e.int(d.Offset)
		e.uint(flags(d.Granted))
		e.str(d.Reason)
	}
	e.uint(uint64(len(v.applied)))
	for _, a := range v.applied {
		e.str(a.eventID)
		e.int(a.offset)
		e.bytes(a.rec)
	}
	e.uint(uint64(len(v.gone)))
	for _, g := range v.gone {
		e.str(g.id)
		e.int(g.g.closed)
		e.int(g.g.offset)
	}
	// byDrop is not written: it is the decisions grouped by drop id
	// (last: the greatest At among them).
	return binary.LittleEndian.AppendUint32(e.b, crc32.Checksum(e.b, crcTable))
}

// decodeSnapshot decodes a snapshot into its header and fold.
func decodeSnapshot(b []byte) (snapshotHeader, *Fold, error) {
	var h snapshotHeader
	if len(b) < len(snapshotMagic)+4 || string(b[:len(snapshotMagic)]) != snapshotMagic {
		return h, nil, errors.New("not a claims snapshot (bad magic)")
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	d := &dec{b: body[len(snapshotMagic):], intern: map[string]string{}}
	if v := d.uint(); d.err == nil && v != snapshotVersion {
		return h, nil, fmt.Errorf("snapshot version %d, this questline reads %d", v, snapshotVersion)
	}
	if crc32.Checksum(body, crcTable) != sum {
		return h, nil, errors.New("checksum mismatch (a torn or corrupt file)")
	}
	copy(h.TopicID[:], d.raw(16))
	h.Partitions, h.Layout, h.Partition = int32(d.int()), int32(d.int()), int32(d.int())
	h.Retention = d.int()
	if b := d.raw(4); b != nil {
		h.LastSum = binary.LittleEndian.Uint32(b)
	}
	f := NewFold(h.Partition)
	f.retention = h.Retention
	f.next, f.clock, f.due = d.int(), d.int(), d.int()
	for n := d.count(); n > 0 && d.err == nil; n-- {
		dr := &Drop{ID: d.istr(), CreatorID: d.istr()}
		fl := d.uint()
		dr.Scheduled, dr.Started, dr.Ended, dr.HasInventory = fl&1 != 0, fl&2 != 0, fl&4 != 0, fl&8 != 0
		dr.StartsAt, dr.EndsAt, dr.StartedAt, dr.StartEndsAt, dr.EndedAt, dr.Inventory, dr.Granted = d.int(), d.int(), d.int(), d.int(), d.int(), d.int(), d.int()
		f.drops[dr.ID] = dr
	}
	var chunk []Decision // decisions allocated 256 at a time, not one by one nor all in one (a kept one would pin them all)
	n := d.count()
	f.claims = make(map[string]*Decision, n)
	for ; n > 0 && d.err == nil; n-- {
		if len(chunk) == 0 {
			chunk = make([]Decision, min(n, 256))
		}
		x := &chunk[0]
		chunk = chunk[1:]
		x.ClaimID, x.DropID, x.UserID, x.DeviceID, x.KeyID = d.str(), d.istr(), d.str(), d.istr(), d.istr()
		x.At, x.Offset = d.int(), d.int()
		x.Granted = d.uint()&1 != 0
		x.Reason = d.istr()
		x.Partition = h.Partition
		f.hold(x)
	}
	for n := d.count(); n > 0 && d.err == nil; n-- {
		ev, off := d.str(), d.int()
		rec, err := ParseRecord(d.bytes())
		if err != nil && d.err == nil {
			d.err = err
		}
		f.applied[ev] = appliedRecord{off, rec}
	}
	for n := d.count(); n > 0 && d.err == nil; n-- {
		id := d.str()
		f.gone[id] = goneDrop{closed: d.int(), offset: d.int()}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errors.New("trailing data")
	}
	if d.err != nil {
		return h, nil, fmt.Errorf("snapshot does not decode: %w", d.err)
	}
	return h, f, nil
}

// writeSnapshot writes b as partition p's snapshot under dir atomically:
// a temp file, fsynced, renamed over the old one.
func writeSnapshot(dir string, p int32, b []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil { // the event log, snapshots: ours to read only
		return err
	}
	tmp, err := os.CreateTemp(dir, fmt.Sprintf("claims-%d-*.tmp", p))
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), snapshotPath(dir, p))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // the rename itself
		d.Close()
	}
	return nil
}

// removeStaleTemps removes the temp files of snapshot writes that a
// crash interrupted, older than age (instances sharing dir may be writing
// newer ones).
func removeStaleTemps(dir string, age time.Duration) {
	tmps, _ := filepath.Glob(filepath.Join(dir, "claims-*.tmp"))
	for _, t := range tmps {
		if st, err := os.Stat(t); err == nil && time.Since(st.ModTime()) > age {
			os.Remove(t)
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func flags(bs ...bool) uint64 {
	var v uint64
	for i, b := range bs {
		if b {
			v |= 1 << i
		}
	}
	return v
}

type enc struct{ b []byte }

func (e *enc) uint(v uint64)  { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) int(v int64)    { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) str(s string)   { e.uint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *enc) bytes(b []byte) { e.uint(uint64(len(b))); e.b = append(e.b, b...) }

// dec reads what enc wrote; the first error sticks and later reads
// return zero values.
type dec struct {
	b      []byte
	err    error
	intern map[string]string // repeated strings (drop ids, key ids) share one copy
}

var errShort = errors.New("truncated")

func (d *dec) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) int() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length no greater than the bytes left (each item takes
// at least one).
func (d *dec) count() int {
	n := d.uint()
	if n > uint64(len(d.b)) {
		if d.err == nil {
			d.err = errShort
		}
		return 0
	}
	return int(n)
}

func (d *dec) raw(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.err = errShort
		return nil
	}
	b := d.b[:n:n]
	d.b = d.b[n:]
	return b
}

func (d *dec) bytes() []byte { return d.raw(d.count()) }
func (d *dec) str() string   { return string(d.bytes()) }

// istr reads a string that many records share (a drop id, a key id).
func (d *dec) istr() string {
	b := d.bytes()
	if s, ok := d.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	d.intern[s] = s
	return s
}

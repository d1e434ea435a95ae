package processors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/questline/questline/event"
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
		"devices-3.snap":       2 * time.Hour,
		"devices-3.snap.tmp5":  2 * time.Hour, // the device stage's, left by a crash
		"partials-1.snap.tmp7": 2 * time.Hour, // the merge stage's
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
	want := []string{"devices-3.snap", "events-0.snap", "events-1.snap.tmp456", "events-2.snap.tmp789", "notes.tmp"}
	if n != 4 || !slices.Equal(left, want) {
		t.Fatalf("removed %d, left %v; want 4 removed, %v left", n, left, want)
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

// TestSnapshotNextOffset: a snapshot whose clean queue holds a log offset
// at or past the file's next offset is refused (its partition is rebuilt
// from the log), one below it restores.
func TestSnapshotNextOffset(t *testing.T) {
	dir := t.TempDir()
	cfg := pipeline.DefaultConfig()
	p, err := pipeline.New(cfg, catalog.New())
	if err != nil {
		t.Fatal(err)
	}
	p.ReadCleanFrom(func(int64) ([]byte, error) { return nil, fmt.Errorf("not read in this test") })
	var e event.Event
	for i := range 50 {
		rec := event.AppendBinary(nil, &event.Event{ID: fmt.Sprint("e", i), Type: event.QuestStarted, UserID: "u1", QuestID: "q1", EventTime: 1767225600000 + int64(i)*1000})
		if err := event.DecodeBinaryShared(rec, &e); err != nil {
			t.Fatal(err)
		}
		p.AddRecord(rec, &e, 10+int64(i)) // offsets 10 to 59
	}
	if n := p.Stats().CleanPending; n != 50 {
		t.Fatalf("%d events queued for the clean pass, want 50", n)
	}
	for _, c := range []struct {
		next int64
		ok   bool
	}{{60, true}, {1000, true}, {59, false}, {30, false}} {
		if err := writeSnapshot(dir, 0, c.next, p.Freeze(), func() bool { return true }); err != nil {
			t.Fatal(err)
		}
		_, next, ok, err := readSnapshot(dir, 0, cfg)
		if c.ok && (!ok || err != nil || next != c.next) {
			t.Errorf("next %d: ok %v, next %d, %v", c.next, ok, next, err)
		}
		if !c.ok && err == nil {
			t.Errorf("next %d: restored a queue holding offset 59", c.next)
		}
	}
}

// TestSnapshotChecksum: a snapshot file whose state still decodes after a
// flipped bit (in an event id's hash: a consistent, wrong state) fails its
// checksum, as do a changed trailer and bytes after it; a file written
// before the trailer (none) still restores.
func TestSnapshotChecksum(t *testing.T) {
	dir := t.TempDir()
	cfg := pipeline.DefaultConfig()
	p, err := pipeline.New(cfg, catalog.New())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		p.Add(&event.Event{ID: fmt.Sprint("e", i), Type: event.QuestStarted, UserID: "u1", QuestID: "q1", EventTime: 1767225600000 + int64(i)*1000})
	}
	if err := writeSnapshot(dir, 0, 7, p.Freeze(), func() bool { return true }); err != nil {
		t.Fatal(err)
	}
	path := snapshotPath(dir, 0)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	body := good[:len(good)-len(checksumMagic)-4]
	if string(good[len(body):len(body)+len(checksumMagic)]) != checksumMagic {
		t.Fatal("no trailer written")
	}
	// The event ids' section: its uvarint length (400 = 50 hashes) is
	// followed by the hashes; flip a bit of the first. That state decodes.
	at := bytes.Index(body, binary.AppendUvarint(nil, 8*50))
	if at < 0 {
		t.Fatal("event ids' section not found")
	}
	at += len(binary.AppendUvarint(nil, 8*50))
	flipped := slices.Clone(body)
	flipped[at] ^= 1
	if _, err := pipeline.Restore(cfg, catalog.New(), bytes.NewReader(flipped[8:])); err != nil {
		t.Fatalf("the damage must decode for this test to mean anything: %v", err)
	}
	for _, c := range []struct {
		name string
		file []byte
		ok   bool
	}{
		{"intact", good, true},
		{"without a trailer (before session 6)", body, true},
		{"a flipped bit in an event id", append(slices.Clone(flipped), good[len(body):]...), false},
		{"a changed checksum", append(slices.Clone(good[:len(good)-1]), good[len(good)-1]^1), false},
		{"a byte after the trailer", append(slices.Clone(good), 0), false},
		{"half a trailer", good[:len(good)-2], false},
	} {
		if err := os.WriteFile(path, c.file, 0o644); err != nil {
			t.Fatal(err)
		}
		_, next, ok, err := readSnapshot(dir, 0, cfg)
		t.Logf("%s: %v", c.name, err)
		if c.ok != (err == nil) || c.ok && (!ok || next != 7) {
			t.Errorf("%s: ok %v next %d err %v", c.name, ok, next, err)
		}
	}
}

// TestChecksumReader: reads mixing Read and ReadByte (gob, varints, raw
// sections) sum to the CRC-32C of the bytes in order, and ReadByte, called
// for every byte of the clean queue's varints at a restore, allocates
// nothing.
func TestChecksumReader(t *testing.T) {
	data := make([]byte, 20_000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	r := &checksumReader{r: bufio.NewReader(bytes.NewReader(data))}
	buf := make([]byte, 100)
	for i := 0; ; i++ {
		if i%3 == 0 {
			if _, err := r.Read(buf[:1+i%97]); err != nil {
				break
			}
		} else if _, err := r.ReadByte(); err != nil {
			break
		}
	}
	if got, want := r.sum(), crc32.Checksum(data, castagnoli); got != want {
		t.Fatalf("checksum %08x, want %08x", got, want)
	}
	r = &checksumReader{r: bufio.NewReader(bytes.NewReader(data))}
	if a := testing.AllocsPerRun(10_000, func() { r.ReadByte() }); a > 0.01 {
		t.Errorf("ReadByte allocates %.2f times per call", a)
	}
}

// BenchmarkSnapshotChecksum: what the checksum adds to a snapshot file's
// writer (and, the same sum, its reader), per MB of state. Baseline
// beside it: the same bytes copied into a buffer, as the file's bufio
// writer does, without the checksum.
func BenchmarkSnapshotChecksum(b *testing.B) {
	buf := make([]byte, 64<<20) // larger than the caches, as a snapshot is
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	dst := &copyWriter{b: make([]byte, len(buf))}
	for _, sum := range []bool{false, true} {
		b.Run(fmt.Sprintf("checksum=%v", sum), func(b *testing.B) {
			var w io.Writer = dst
			if sum {
				w = &checksumWriter{w: dst}
			}
			b.SetBytes(int64(len(buf)))
			for range b.N {
				w.Write(buf)
			}
		})
	}
}

// copyWriter copies what it is given into b.
type copyWriter struct{ b []byte }

func (c *copyWriter) Write(p []byte) (int, error) { return copy(c.b, p), nil }

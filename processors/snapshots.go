package processors

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/processors/catalog"
	"github.com/questline/questline/processors/pipeline"
)

// snapshotPath is the file of a partition's snapshot.
func snapshotPath(dir string, partition int32) string {
	return filepath.Join(dir, fmt.Sprintf("events-%d.snap", partition))
}

// writeSnapshot stores a partition's frozen state and the next input
// offset atomically (writeAtomic).
func writeSnapshot(dir string, partition int32, next int64, fz *pipeline.Frozen, keep func() bool) error {
	return writeAtomic(dir, snapshotPath(dir, partition), func(w io.Writer) error {
		var hdr [8]byte
		binary.BigEndian.PutUint64(hdr[:], uint64(next))
		if _, err := w.Write(hdr[:]); err != nil {
			return err
		}
		_, err := fz.WriteTo(w)
		return err
	}, keep)
}

// writeAtomic writes a snapshot file at path: what write writes, then
// the checksum trailer, to a temporary file in dir, fsynced, then renamed
// over path. The file is put in place only if keep, asked just before,
// says so (a partition revoked meanwhile may have a newer snapshot by its
// new owner); a crash at any point leaves the previous file whole.
func writeAtomic(dir, path string, write func(io.Writer) error, keep func() bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil { // the event log, snapshots: ours to read only
		return err
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	bw := bufio.NewWriterSize(f, 1<<20)
	w := &checksumWriter{w: bw}
	if err := write(w); err != nil {
		f.Close()
		return err
	}
	bw.Write(w.trailer())
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if !keep() {
		return nil // the deferred Remove drops it
	}
	return os.Rename(f.Name(), path)
}

// readSnapshot restores a partition; ok is false when it has none.
func readSnapshot(dir string, partition int32, cfg pipeline.Config) (p *pipeline.Partition, next int64, ok bool, err error) {
	var hdr [8]byte
	ok, err = readAtomic(snapshotPath(dir, partition), true, func(r *checksumReader) error {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return err
		}
		if p, err = pipeline.Restore(cfg, catalog.New(), r); err != nil {
			return err
		}
		return p.CheckNext(int64(binary.BigEndian.Uint64(hdr[:])))
	})
	if !ok || err != nil {
		return nil, 0, false, err
	}
	return p, int64(binary.BigEndian.Uint64(hdr[:])), true, nil
}

// readAtomic reads a snapshot file written by writeAtomic: read reads the
// state through a checksumReader, then the checksum trailer must follow
// (or nothing, if trailerOptional: files that may predate trailers). ok
// is false when there is no file.
func readAtomic(path string, trailerOptional bool, read func(r *checksumReader) error) (ok bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	r := &checksumReader{r: br} // an io.ByteReader: gob reads exactly its value
	if err := read(r); err != nil {
		return false, err
	}
	if err := r.verifyTrailer(br, trailerOptional); err != nil {
		return false, err
	}
	return true, nil
}

// A snapshot file is the next offset (8 bytes, big-endian), the frozen
// state (pipeline.Frozen.WriteTo), then since session 6 a trailer: the
// magic checksumMagic and the CRC-32C (Castagnoli) of everything before
// it, big-endian. Damage that still decodes into a consistent state (a
// flipped bit in an event id's hash, a count) fails the checksum, and the
// partition is rebuilt from its log instead of going on from a wrong
// state. A file without a trailer (written before session 6) restores
// unchecked.
const checksumMagic = "QLSNAPCK"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksumWriter passes writes on and keeps their checksum.
type checksumWriter struct {
	w   io.Writer
	crc uint32
}

func (c *checksumWriter) Write(b []byte) (int, error) {
	c.crc = crc32.Update(c.crc, castagnoli, b)
	return c.w.Write(b)
}

// trailer returns the trailer of what was written.
func (c *checksumWriter) trailer() []byte {
	return binary.BigEndian.AppendUint32([]byte(checksumMagic), c.crc)
}

// checksumReader reads, byte by byte too (pipeline.Restore reads its gob
// value exactly through io.ByteReader, and the clean queue's entries as
// varints, byte by byte: millions of calls), and keeps the checksum of
// what it read. The bytes of ReadByte wait in pend and join the checksum
// in blocks: one crc32.Update (and a slice made for it) per byte made a
// restore's varints several times slower.
type checksumReader struct {
	r    *bufio.Reader
	crc  uint32
	pend []byte // read by ReadByte, not yet in crc
}

// sum returns the checksum of everything read.
func (c *checksumReader) sum() uint32 {
	if len(c.pend) > 0 {
		c.crc = crc32.Update(c.crc, castagnoli, c.pend)
		c.pend = c.pend[:0]
	}
	return c.crc
}

func (c *checksumReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.crc = crc32.Update(c.sum(), castagnoli, b[:n])
	return n, err
}

func (c *checksumReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		if c.pend == nil {
			c.pend = make([]byte, 0, 4<<10)
		}
		c.pend = append(c.pend, b)
		if len(c.pend) == cap(c.pend) {
			c.sum()
		}
	}
	return b, err
}

// verifyTrailer reads what follows the state from br: the trailer, which
// must hold the checksum of what c read, or nothing if optional (a file
// written before the trailer; files that never existed without one, such
// as the device and merge stages', make it an error).
func (c *checksumReader) verifyTrailer(br *bufio.Reader, optional bool) error {
	rest, err := io.ReadAll(io.LimitReader(br, int64(len(checksumMagic))+5))
	if err != nil {
		return err
	}
	switch {
	case len(rest) == 0 && optional:
		return nil
	case len(rest) == 0:
		return errors.New("processors: snapshot: no checksum trailer (the file is truncated)")
	case len(rest) != len(checksumMagic)+4 || string(rest[:len(checksumMagic)]) != checksumMagic:
		return fmt.Errorf("processors: snapshot: %d unexpected bytes after the state", len(rest))
	case binary.BigEndian.Uint32(rest[len(checksumMagic):]) != c.sum():
		return errors.New("processors: snapshot: checksum mismatch (the file is damaged)")
	}
	return nil
}

// staleTemp is how old a snapshot's temporary file must be before a
// starting process removes it: a writer takes seconds, so a file this old
// was left by a process killed while writing (several gigabytes of them
// after repeated crashes at high rates, otherwise).
const staleTemp = time.Hour

// removeStaleTemps removes the temporary files of snapshots in dir (the
// source stage's events-N, the device stage's devices-N, the merge
// stage's partials-N) not
// modified for staleTemp before now, and returns how many it removed.
// Newer ones may belong to another process's writer (processes share the
// directory) and are left alone.
func removeStaleTemps(dir string, now time.Time) (int, error) {
	var paths []string
	for _, pattern := range []string{"events-*.snap.tmp*", "devices-*.snap.tmp*", "partials-*.snap.tmp*"} {
		ps, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return 0, err
		}
		paths = append(paths, ps...)
	}
	n := 0
	for _, path := range paths {
		fi, err := os.Stat(path)
		if err != nil || now.Sub(fi.ModTime()) < staleTemp {
			continue // gone already, or maybe being written
		}
		if err := os.Remove(path); err == nil {
			n++
		}
	}
	return n, nil
}

// logEnds returns the end offset of every partition of topic, for the
// stages' assign callbacks to refuse a snapshot past its partition's end
// (pastEnd); nil, logged, when they cannot be listed (the snapshots are
// then trusted, as without the check).
func logEnds(ctx context.Context, cl *kgo.Client, log *slog.Logger, topic string) map[int32]int64 {
	if cl == nil {
		return nil
	}
	listed, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		log.Warn("processors: listing end offsets to check the snapshots' offsets", "topic", topic, "err", err)
		return nil
	}
	ends := map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
	return ends
}

// pastEnd returns an error when a snapshot's offset next is past the end
// of its partition (ends from logEnds): the log the snapshot was taken
// from is not this one (a topic deleted and created again, a broker's
// data lost or replaced while the snapshots stayed). Fetching from next
// would reset to the log's start, and every record below next would be
// taken for one already in the state and skipped: the caller rebuilds
// the partition from its start instead.
func pastEnd(ends map[int32]int64, partition int32, next int64) error {
	if end, ok := ends[partition]; ok && next > end {
		return fmt.Errorf("processors: snapshot at offset %d, past the partition's end %d (not this log's)", next, end)
	}
	return nil
}

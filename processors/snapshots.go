package processors

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/questline/questline/processors/catalog"
	"github.com/questline/questline/processors/pipeline"
)

// snapshotPath is the file of a partition's snapshot.
func snapshotPath(dir string, partition int32) string {
	return filepath.Join(dir, fmt.Sprintf("events-%d.snap", partition))
}

// writeSnapshot stores a partition's frozen state and the next input
// offset atomically (temporary file, fsync, rename). The file is put in
// place only if keep, asked just before, says so (a partition revoked
// meanwhile may have a newer snapshot by its new owner).
func writeSnapshot(dir string, partition int32, next int64, fz *pipeline.Frozen, keep func() bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := snapshotPath(dir, partition)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	w := bufio.NewWriterSize(f, 1<<20)
	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], uint64(next))
	w.Write(hdr[:])
	if _, err := fz.WriteTo(w); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
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
	f, err := os.Open(snapshotPath(dir, partition))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, 0, false, err
	}
	p, err = pipeline.Restore(cfg, catalog.New(), r)
	if err != nil {
		return nil, 0, false, err
	}
	return p, int64(binary.BigEndian.Uint64(hdr[:])), true, nil
}

// staleTemp is how old a snapshot's temporary file must be before a
// starting process removes it: a writer takes seconds, so a file this old
// was left by a process killed while writing (several gigabytes of them
// after repeated crashes at high rates, otherwise).
const staleTemp = time.Hour

// removeStaleTemps removes the temporary files of snapshots in dir not
// modified for staleTemp before now, and returns how many it removed.
// Newer ones may belong to another process's writer (processes share the
// directory) and are left alone.
func removeStaleTemps(dir string, now time.Time) (int, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "events-*.snap.tmp*"))
	if err != nil {
		return 0, err
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

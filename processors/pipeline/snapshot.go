package pipeline

import (
	"encoding/gob"
	"fmt"
	"io"
	"slices"

	"github.com/questline/questline/processors/bots"
	"github.com/questline/questline/processors/catalog"
	"github.com/questline/questline/processors/latency"
	"github.com/questline/questline/processors/lift"
	"github.com/questline/questline/processors/quest"
	"github.com/questline/questline/processors/yield"
)

// snapshotVersion is the version of the snapshot encoding: 3 holds the
// remembered event ids as raw hashes (SeenHashes, SeenMaxes), 2 the clean
// queue in Chunks. Restore also reads 2 (ids in Seen) and 1 (one Arena); a
// process of an older version refuses a newer snapshot instead of losing
// part of it.
const snapshotVersion = 3

// State is a partition's state as a snapshot holds it.
type State struct {
	Version       int
	Max, CleanMax int64
	Stats         Stats
	Catalog       *catalog.State
	Flags         *bots.FlagsState
	Bots          *bots.State
	All           ScopeState
	Clean         *ScopeState
	Arena         []byte   // version 1: the clean queue's records
	Chunks        [][]byte // version 2: the clean queue's records
	Queue         []QueuedState
	Seen          []SeenID // versions 1, 2: event ids remembered for de-duplication
	// Version 3: the event ids remembered for de-duplication (dedup.blocks).
	SeenHashes []byte
	SeenMaxes  []uint32
}

// ScopeState is the state of one scope's processors.
type ScopeState struct {
	Quest   *quest.State
	Latency *latency.State
	Yield   *yield.State
	Lift    *lift.State
}

// QueuedState is an event waiting for the clean pass.
type QueuedState struct {
	Chunk    int // index in Chunks (version 2)
	Off, End int
	Need     int64
}

func (s *scope) snapshot() ScopeState {
	return ScopeState{Quest: s.quest.Snapshot(), Latency: s.latency.Snapshot(), Yield: s.yield.Snapshot(), Lift: s.lift.Snapshot()}
}

func (s *scope) restore(st *ScopeState) {
	s.quest.Restore(st.Quest)
	s.latency.Restore(st.Latency)
	s.yield.Restore(st.Yield)
	s.lift.Restore(st.Lift)
}

// Snapshot writes the partition's state to w (encoding/gob). Take it after
// a Flush whose rows were written: the rows emitted so far are then in the
// tables, and a partition restored from the snapshot re-emits, identically,
// whatever it emits after. Records applied after the snapshot must be read
// again after a restore (the caller stores the input offset with it).
func (p *Partition) Snapshot(w io.Writer) error {
	st := State{
		Version: snapshotVersion, Max: p.wm.Max(), CleanMax: p.cleanWM.Max(), Stats: p.Stats(),
		Catalog: p.cat.Snapshot(), Flags: p.flags.Snapshot(), Bots: p.bots.Snapshot(), All: p.all.snapshot(),
	}
	st.SeenHashes, st.SeenMaxes = p.seen.blocks()
	if p.clean != nil {
		c := p.clean.snapshot()
		st.Clean = &c
		if p.head < len(p.queue) {
			// From the first record waiting: the chunks hold nothing
			// older (releaseClean drops them).
			h := p.queue[p.head]
			st.Chunks = slices.Clone(p.chunks)
			st.Chunks[0] = st.Chunks[0][h.off:]
			for _, q := range p.queue[p.head:] {
				qs := QueuedState{Chunk: q.chunk - p.chunk0, Off: q.off, End: q.end, Need: q.need}
				if qs.Chunk == 0 {
					qs.Off, qs.End = qs.Off-h.off, qs.End-h.off
				}
				st.Queue = append(st.Queue, qs)
			}
		}
	}
	return gob.NewEncoder(w).Encode(&st)
}

// Restore returns the partition pipeline of a snapshot read from r. cat
// receives the snapshot's catalog.
func Restore(cfg Config, cat *catalog.Catalog, r io.Reader) (*Partition, error) {
	var st State
	if err := gob.NewDecoder(r).Decode(&st); err != nil {
		return nil, fmt.Errorf("pipeline: snapshot: %w", err)
	}
	if st.Version < 1 || st.Version > snapshotVersion {
		return nil, fmt.Errorf("pipeline: snapshot version %d, want %d", st.Version, snapshotVersion)
	}
	if (st.Clean != nil) != cfg.Clean {
		return nil, fmt.Errorf("pipeline: snapshot clean scope %v, config %v", st.Clean != nil, cfg.Clean)
	}
	cat.Restore(st.Catalog)
	p, err := New(cfg, cat)
	if err != nil {
		return nil, err
	}
	p.wm.Restore(st.Max)
	p.cleanWM.Restore(st.CleanMax)
	p.stats = st.Stats
	p.stats.CleanPending = 0
	if st.Version >= 3 {
		if err := p.seen.restoreBlocks(st.SeenHashes, st.SeenMaxes); err != nil {
			return nil, err
		}
	} else {
		p.seen.restore(st.Seen)
	}
	p.flags.Restore(st.Flags)
	p.bots.Restore(st.Bots)
	p.all.restore(&st.All)
	if p.clean != nil {
		p.clean.restore(st.Clean)
		p.chunks = st.Chunks
		if st.Version == 1 && len(st.Queue) > 0 {
			p.chunks = [][]byte{st.Arena} // every QueuedState.Chunk is 0
		}
		for _, q := range st.Queue {
			p.queue = append(p.queue, queued{chunk: q.Chunk, off: q.Off, end: q.End, need: q.Need})
		}
	}
	return p, nil
}

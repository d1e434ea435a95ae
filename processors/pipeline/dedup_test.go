package pipeline

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/questline/questline/event"
)

// withRetries returns events with about one in eight sent again a little
// later in the partition, as a client's retried batch is: same id, an
// event time up to 3 s later (derived from a later received_at).
func withRetries(events []event.Event, seed uint64) ([]event.Event, int) {
	rng := rand.New(rand.NewPCG(seed, seed))
	out := slices.Clone(events)
	dups := 0
	for i := range events {
		if rng.IntN(8) != 0 {
			continue
		}
		d := events[i]
		d.EventTime += rng.Int64N(3 * sec)
		at := min(len(out), i+dups+1+rng.IntN(40))
		out = slices.Insert(out, at, d)
		dups++
	}
	return out, dups
}

// TestRetriedEventsCountOnce: a stream with retried copies of events gives
// the same tables as the stream without them.
func TestRetriedEventsCountOnce(t *testing.T) {
	cfg := testConfig()
	events := stream(11)
	retried, dups := withRetries(events, 3)
	if dups < 100 {
		t.Fatalf("only %d copies", dups)
	}
	want := run(t, cfg, events, 1, 50, 0)
	got := run(t, cfg, retried, 1, 50, 0)
	for table, rows := range want {
		if !slices.Equal(rows, got[table]) {
			t.Fatalf("%s differs with %d retried copies: %s", table, dups, firstDiff(rows, got[table]))
		}
	}
}

// TestRetriedEventsAcrossRestore: the remembered ids are part of the
// snapshot, so a copy arriving after a crash and restore is still dropped.
func TestRetriedEventsAcrossRestore(t *testing.T) {
	retried, _ := withRetries(stream(11), 4)
	crashRestore(t, testConfig(), retried)
}

func TestDedupForgetsBehindHorizon(t *testing.T) {
	d := newDedup(10 * sec)
	if !d.first("a", 0, -1<<63) || d.first("a", 5*sec, -1<<63) {
		t.Fatal("a second sighting before any watermark must be a duplicate")
	}
	if d.first("a", 0, 9*sec) {
		t.Fatal("within the horizon: duplicate")
	}
	// Ids are forgotten by full blocks: fill a's block with ids of event
	// time 0 and 1.5 s, then start the next block.
	for i := 1; i < dedupBlock; i++ {
		d.first(fmt.Sprint("x", i), int64(i%2)*1500, 9*sec)
	}
	if !d.first("b", 20*sec, 11*sec) || d.first("a", 0, 11*sec) {
		t.Fatal("11 s: the block's latest event (1.5 s, kept as 2 s) is within the horizon")
	}
	if !d.first("c", 20*sec, 12*sec+1) || d.len() != 2 {
		t.Fatalf("behind the horizon the block is forgotten; remembered %d", d.len())
	}
	if !d.first("a", 0, 12*sec+1) {
		t.Fatal("a forgotten id is new")
	}
}

// TestDedupSnapshotKeepsBlocks: a restored set forgets the same ids at the
// same watermarks as the original.
func TestDedupSnapshotKeepsBlocks(t *testing.T) {
	a := newDedup(10 * sec)
	rng := rand.New(rand.NewPCG(3, 4))
	var wm int64
	for i := range 5000 {
		wm += rng.Int64N(50)
		a.first(fmt.Sprint(i), wm+rng.Int64N(3*sec)-sec, wm)
		if i == 2500 {
			b := newDedup(10 * sec) // version 2's form
			b.restore(a.state())
			c := newDedup(10 * sec) // version 3's
			if err := c.restoreBlocks(hashBytes(a.blocks())); err != nil {
				t.Fatal(err)
			}
			for j := 2501; j < 5000; j++ {
				wm += rng.Int64N(50)
				id, et := fmt.Sprint(rng.IntN(j)), wm+rng.Int64N(3*sec)-sec
				x, y, z := a.first(id, et, wm), b.first(id, et, wm), c.first(id, et, wm)
				if x != y || x != z {
					t.Fatalf("event %d: original %v, restored %v (version 2), %v (version 3)", j, x, y, z)
				}
				if a.len() != b.len() {
					t.Fatalf("event %d: original remembers %d, restored %d", j, a.len(), b.len())
				}
			}
			return
		}
	}
}

// TestHashSetAgainstMap: random adds and deletes of clustered hashes (long
// probe runs that wrap around the end of the table, growth and shrinking)
// keep the set equal to a map.
func TestHashSetAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var s hashSet
	want := map[uint64]bool{}
	var keys []uint64
	for step := range 200_000 {
		// Homes cluster on a few slots near the end of the table, and
		// the population swings between small and large.
		h := rng.Uint64()<<12 | uint64(1016+rng.IntN(16))
		if rng.IntN(50) == 0 {
			h = 0
		}
		grow := (step/20_000)%2 == 0
		if len(keys) > 0 && (!grow && rng.IntN(3) != 0 || rng.IntN(4) == 0) {
			i := rng.IntN(len(keys))
			k := keys[i]
			keys[i] = keys[len(keys)-1]
			keys = keys[:len(keys)-1]
			s.del(k)
			delete(want, k)
			continue
		}
		if got := s.add(h); got != !want[h] {
			t.Fatalf("step %d: add(%x) = %v with the key present=%v", step, h, got, want[h])
		}
		if !want[h] {
			want[h] = true
			keys = append(keys, h)
		}
	}
	n := len(want)
	if want[0] {
		n--
	}
	if s.n != n {
		t.Fatalf("%d entries, want %d", s.n, n)
	}
	for k := range want {
		if s.add(k) {
			t.Fatalf("%x lost", k)
		}
	}
	for range 10_000 {
		if k := rng.Uint64() | 1; !want[k] && !s.add(k) {
			t.Fatalf("%x present though never added", k)
		}
	}
}

// TestDedupChunksAgainstModel: across many chunks of the eviction queue,
// the ids remembered are those of the blocks of dedupBlock sightings (in
// arrival order) not wholly behind the horizon, as one flat list has them;
// a snapshot taken anywhere restores the same.
func TestDedupChunksAgainstModel(t *testing.T) {
	const horizon = 10 * sec
	d := newDedup(horizon)
	rng := rand.New(rand.NewPCG(5, 6))
	var hashes []uint64 // the model: every sighting, and the blocks' latest times
	var maxes []uint32
	head := 0
	var wm int64
	for i := range 5 * dedupChunk {
		wm += rng.Int64N(20)
		id, et := fmt.Sprint(rng.IntN(i+1)), wm+rng.Int64N(3*sec)-sec
		first := d.first(id, et, wm)
		// The model, before the id is looked up: forget whole blocks.
		for head+dedupBlock <= len(hashes) && int64(maxes[head/dedupBlock])*1000 < wm-horizon {
			head += dedupBlock
		}
		h := xxhash.Sum64String(id)
		want := !slices.Contains(hashes[head:], h)
		if first != want {
			t.Fatalf("event %d: first %v, model %v", i, first, want)
		}
		if want {
			if len(hashes)%dedupBlock == 0 {
				maxes = append(maxes, secs(et))
			} else {
				maxes[len(hashes)/dedupBlock] = max(maxes[len(hashes)/dedupBlock], secs(et))
			}
			hashes = append(hashes, h)
		}
		if d.len() != len(hashes)-head {
			t.Fatalf("event %d: %d remembered, model %d", i, d.len(), len(hashes)-head)
		}
		if i%3001 == 0 {
			s := d.state()
			for j, id := range s {
				if id.Hash != hashes[head+j] || id.Time != int64(maxes[(head+j)/dedupBlock])*1000 {
					t.Fatalf("event %d: state[%d] = %+v", i, j, id)
				}
			}
			r := newDedup(horizon)
			r.restore(s)
			if !slices.Equal(r.state(), s) {
				t.Fatalf("event %d: restored state differs", i)
			}
			r3 := newDedup(horizon)
			if err := r3.restoreBlocks(hashBytes(d.blocks())); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(r3.state(), s) {
				t.Fatalf("event %d: state restored from blocks differs", i)
			}
		}
	}
	if len(d.chunks) > 3 {
		t.Fatalf("%d chunks held for %d ids", len(d.chunks), d.len())
	}
}

// hashBytes is what a snapshot's section holds of blocks' hashes.
func hashBytes(hashes [][]uint64, maxes []uint32) ([]byte, []uint32) {
	var b []byte
	for _, c := range hashes {
		for _, h := range c {
			b = binary.LittleEndian.AppendUint64(b, h)
		}
	}
	return b, maxes
}

// state returns the remembered ids, oldest first, each with its block's
// time, as snapshots of versions 1 and 2 held them (restore reads them).
func (d *dedup) state() []SeenID {
	out := make([]SeenID, 0, d.len())
	for ci, c := range d.chunks {
		from := 0
		if ci == 0 {
			from = d.head
		}
		for j := from; j < len(c); j++ {
			out = append(out, SeenID{Hash: c[j], Time: int64(d.maxes[(ci*dedupChunk+j)/dedupBlock]) * 1000})
		}
	}
	return out
}

package pipeline

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

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
	crashRestore(t, testConfig(), retried, nil)
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
			if err := c.restoreBlocks(hashBytes(a.state())); err != nil {
				t.Fatal(err)
			}
			c4 := newDedup(10 * sec) // version 4's
			if err := c4.restoreFrozen(frozenBytes(a.freeze())); err != nil {
				t.Fatal(err)
			}
			for j := 2501; j < 5000; j++ {
				wm += rng.Int64N(50)
				id, et := fmt.Sprint(rng.IntN(j)), wm+rng.Int64N(3*sec)-sec
				x, y, z, z4 := a.first(id, et, wm), b.first(id, et, wm), c.first(id, et, wm), c4.first(id, et, wm)
				if x != y || x != z || x != z4 {
					t.Fatalf("event %d: original %v, restored %v (version 2), %v (version 3), %v (version 4)", j, x, y, z, z4)
				}
				if a.len() != b.len() {
					t.Fatalf("event %d: original remembers %d, restored %d", j, a.len(), b.len())
				}
			}
			return
		}
	}
}

// TestHashSetAgainstMap: random adds and deletes by key of clustered
// hashes (long runs spilling past the last home slot, many hashes of one
// key, growth and shrinking) keep the set equal to a map and the table
// ordered (checkSet), and add counts the other hashes of the key.
func TestHashSetAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var s hashSet
	want := map[uint64]bool{}
	perKey := map[uint32]int{} // hashes in want by key
	var keys []uint64
	for step := range 200_000 {
		// Homes cluster near the end of the table (keys near 2^32),
		// keys repeat (few distinct ones), and the population swings
		// between small and large.
		h := rng.Uint64()<<32 | uint64(0xffff_f000+rng.IntN(1<<12))
		if rng.IntN(4) == 0 {
			h = rng.Uint64()<<32 | uint64(0xffff_ffc0+rng.IntN(64))
		}
		if rng.IntN(50) == 0 {
			h = 0
		}
		grow := (step/20_000)%2 == 0
		if len(keys) > 0 && (!grow && rng.IntN(3) != 0 || rng.IntN(4) == 0) {
			k := uint32(keys[rng.IntN(len(keys))])
			s.delKey(k, true)
			keys = slices.DeleteFunc(keys, func(h uint64) bool {
				if uint32(h) == k {
					delete(want, h)
					return true
				}
				return false
			})
			delete(perKey, k)
			continue
		}
		others := perKey[uint32(h)]
		got, gotOthers := s.add(h)
		if got != !want[h] || got && gotOthers != others {
			t.Fatalf("step %d: add(%x) = %v, %d with the key present=%v, %d others", step, h, got, gotOthers, want[h], others)
		}
		if !want[h] {
			want[h] = true
			perKey[uint32(h)]++
			keys = append(keys, h)
		}
		if step%1000 == 0 {
			checkSet(t, &s)
		}
	}
	checkSet(t, &s)
	n := len(want)
	if want[0] {
		n--
	}
	if s.n != n {
		t.Fatalf("%d entries, want %d", s.n, n)
	}
	if got := s.appendTo(nil); len(got) != len(want) {
		t.Fatalf("appendTo: %d hashes, want %d", len(got), len(want))
	}
	for k := range want {
		if added, _ := s.add(k); added {
			t.Fatalf("%x lost", k)
		}
	}
	for range 10_000 {
		if k := rng.Uint64() | 1; !want[k] {
			if added, _ := s.add(k); !added {
				t.Fatalf("%x present though never added", k)
			}
		}
	}
}

// TestDedupSharedKeys: ids whose hashes share their low 32 bits (the key
// in the eviction queue) are each remembered and forgotten no earlier than
// their blocks, together with the key's last sighting, also across a
// snapshot.
func TestDedupSharedKeys(t *testing.T) {
	const key = 0xabcd0000
	for _, k := range []uint64{key, 0} { // 0: with the hash 0, held apart
		dv := newDedup(10 * sec)
		d := &dv
		a, b, c := 7<<32|k, 9<<32|k, k // c: the hash 0 for k = 0
		wm := int64(0)
		fill := func(n int, t int64) { // other ids, to fill blocks
			for i := range n {
				d.remember(xxhash.Sum64String(fmt.Sprint(t, i)), secs(t))
			}
		}
		if !d.remember(a, secs(0)) {
			t.Fatal("a is new")
		}
		fill(dedupBlock-1, 0)
		if !d.remember(b, secs(20*sec)) || d.remember(a, 0) || d.remember(b, 0) {
			t.Fatal("a and b are remembered apart")
		}
		fill(dedupBlock-1, 20*sec)
		if d.shared[uint32(k)] != 2 {
			t.Fatalf("key %x counts %d sightings", k, d.shared[uint32(k)])
		}
		// a's block is behind the horizon, b's is not: a is kept with b.
		wm = 15 * sec
		d.evict(wm)
		if d.len() != dedupBlock || d.remember(a, 0) {
			t.Fatalf("%d remembered: a's block went, a must stay with its key", d.len())
		}
		if !d.remember(c, secs(20*sec)) || d.shared[uint32(k)] != 2 {
			t.Fatalf("c is new, and shares the key: %d", d.shared[uint32(k)])
		}
		var r dedup
		r.horizon = d.horizon
		if err := r.restoreFrozen(frozenBytes(d.freeze())); err != nil {
			t.Fatal(err)
		}
		for _, x := range []*dedup{d, &r} {
			fill(dedupBlock, 40*sec) // closes the block of b and c
			x.evict(35 * sec)
			if x.remember(a, 0) || x.remember(b, 0) || x.remember(c, 0) {
				t.Fatal("forgotten before the key's last block")
			}
			x.evict(51 * sec)
			if len(x.shared) != 0 || !x.remember(a, 60) || !x.remember(b, 60) || !x.remember(c, 60) {
				t.Fatalf("the key's last block went: its ids must go (%v)", x.shared)
			}
			if x == d {
				d = &r // the same, restored (fill adds to d)
			}
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
			if err := r3.restoreBlocks(hashBytes(s)); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(r3.state(), s) {
				t.Fatalf("event %d: state restored from blocks differs", i)
			}
			r4 := newDedup(horizon)
			if err := r4.restoreFrozen(frozenBytes(d.freeze())); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(r4.state(), s) {
				t.Fatalf("event %d: state restored from version 4 differs", i)
			}
		}
	}
	if len(d.chunks) > 3 {
		t.Fatalf("%d chunks held for %d ids", len(d.chunks), d.len())
	}
}

// hashBytes is what a snapshot of version 3 holds of ids: their hashes
// in arrival order, and their blocks' times.
func hashBytes(ids []SeenID) ([]byte, []uint32) {
	var b []byte
	var maxes []uint32
	for i, id := range ids {
		b = binary.LittleEndian.AppendUint64(b, id.Hash)
		if i%dedupBlock == 0 {
			maxes = append(maxes, secs(id.Time))
		}
	}
	return b, maxes
}

// frozenBytes is what a snapshot of version 4 holds of f.
func frozenBytes(f frozenSeen) (keys, hashes []byte, maxes []uint32, shared map[uint32]int32) {
	for _, c := range f.keys {
		for _, k := range c {
			keys = binary.LittleEndian.AppendUint32(keys, k)
		}
	}
	for _, h := range f.hashes {
		hashes = binary.LittleEndian.AppendUint64(hashes, h)
	}
	return keys, hashes, f.maxes, f.shared
}

// state returns the remembered ids, oldest first, each with its block's
// time, as snapshots of versions 1 and 2 held them (restore reads them):
// each key's hash from the set (a test's ids share no key).
func (d *dedup) state() []SeenID {
	byKey := map[uint32]uint64{}
	for _, h := range d.seen.appendTo(nil) {
		if _, ok := byKey[uint32(h)]; ok {
			panic("pipeline: test ids share a key")
		}
		byKey[uint32(h)] = h
	}
	out := make([]SeenID, 0, d.len())
	for ci, c := range d.chunks {
		from := 0
		if ci == 0 {
			from = d.head
		}
		for j := from; j < len(c); j++ {
			out = append(out, SeenID{Hash: byKey[c[j]], Time: int64(d.maxes[(ci*dedupChunk+j)/dedupBlock]) * 1000})
		}
	}
	return out
}

// TestDedupRestoreInTableOrder: a snapshot's hashes come in its table's
// order; restoring them into a power-of-two table with linear probing that
// grows piled them into one probe run (seconds for millions of ids, 25
// times as long as adding them in random order). At its final size at
// once, a restore takes about as long as that, from the ordered set's
// snapshot and from one of the power-of-two table's order (before session
// 8), which restores the same set.
func TestDedupRestoreInTableOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("3 M ids")
	}
	d := newDedup(1 << 60)
	rng := rand.New(rand.NewPCG(7, 8))
	for range 3_000_000 {
		d.remember(rng.Uint64(), 1)
	}
	keys, hashes, maxes, shared := frozenBytes(d.freeze())
	start := time.Now()
	var r dedup
	if err := r.restoreFrozen(keys, hashes, maxes, shared); err != nil {
		t.Fatal(err)
	}
	restore := time.Since(start)
	if r.seen.n != d.seen.n || r.seen.size != d.seen.size {
		t.Fatalf("restored %d ids into %d home slots, from %d in %d", r.seen.n, r.seen.size, d.seen.n, d.seen.size)
	}
	checkSet(t, &r.seen)
	// A snapshot of the power-of-two table (before session 8) lists the
	// hashes in the order of their low bits (2^22 slots for 3 M ids).
	old := d.seen.appendTo(nil)
	slices.SortStableFunc(old, func(a, b uint64) int { return cmp.Compare(a&(1<<22-1), b&(1<<22-1)) })
	oldHashes := make([]byte, 0, 8*len(old))
	for _, h := range old {
		oldHashes = binary.LittleEndian.AppendUint64(oldHashes, h)
	}
	start = time.Now()
	var o dedup
	if err := o.restoreFrozen(keys, oldHashes, maxes, shared); err != nil {
		t.Fatal(err)
	}
	oldOrder := time.Since(start)
	checkSet(t, &o.seen)
	if a, b := o.seen.appendTo(nil), r.seen.appendTo(nil); o.seen.size != r.seen.size || !slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))) {
		t.Fatal("the hashes in the old table's order restore into another set")
	}
	shuffled := d.seen.appendTo(nil)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	start = time.Now()
	var s hashSet
	for _, h := range shuffled {
		s.add(h)
	}
	if random := time.Since(start); max(restore, oldOrder) > 5*random+100*time.Millisecond {
		t.Fatalf("restore of %d ids took %v (%v in the old table's order), adding them in random order %v", r.seen.n, restore, oldOrder, random)
	}
}

// checkSet checks the invariants of s: every hash at or after its home
// slot with no empty slot in between, the hashes in the order of their
// keys, n of them, and the last slot empty.
func checkSet(t *testing.T, s *hashSet) {
	t.Helper()
	if s.size == 0 {
		return
	}
	n, prev := 0, uint32(0)
	for i, v := range s.slots {
		if v == 0 {
			continue
		}
		n++
		k := uint32(v)
		if h := s.home(k); h > i || slices.Contains(s.slots[h:i], 0) {
			t.Fatalf("slot %d: hash %x of home %d with an empty slot between", i, v, h)
		}
		if k < prev {
			t.Fatalf("slot %d: key %x after key %x", i, k, prev)
		}
		prev = k
	}
	if n != s.n || s.slots[len(s.slots)-1] != 0 || len(s.slots) < s.size+setSpill {
		t.Fatalf("%d hashes in %d slots (%d home), counted %d, last %x", n, len(s.slots), s.size, s.n, s.slots[len(s.slots)-1])
	}
}

// TestHashSetSpill: the hashes of one key at the top of the key range (a
// run from the last home slot, longer than the spill) are all held, in
// a table that does not grow for them, and deleted again.
func TestHashSetSpill(t *testing.T) {
	var s hashSet
	const k = 0xffff_ffff
	for i := range uint64(3 * setSpill) {
		if added, others := s.add(i<<32 | k); !added || others != int(i) {
			t.Fatalf("add %d: %v, %d others", i, added, others)
		}
	}
	checkSet(t, &s)
	if s.size != setMinSize || s.count(k) != 3*setSpill {
		t.Fatalf("size %d, %d of the key", s.size, s.count(k))
	}
	s.delKey(k, false)
	s.delKey(k, true)
	checkSet(t, &s)
	if s.n != 0 {
		t.Fatalf("%d left", s.n)
	}
}

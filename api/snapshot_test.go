package api

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/questline/questline/kafka"
)

// claimsLog returns records of a varied claims log from time t0 (ms):
// drops scheduled, started (some with an end time, some ended), retried
// drop records, claims granted, sold out, not live, repeated, conflicting,
// on unknown drops, and, with a retention of an hour, drops forgotten.
func claimsLog(seed uint64, t0 int64, n int) (recs []Record, claimIDs, dropIDs []string) {
	rng := rand.New(rand.NewPCG(seed, 7))
	at := t0
	for i := range n {
		at += int64(rng.IntN(3_000)) // ~1.5 s a record: 1 h every ~2,400
		drop := fmt.Sprintf("d%d-%d", seed, rng.IntN(12))
		switch k := rng.IntN(60); {
		case k == 0:
			recs = append(recs, Record{Kind: KindSchedule, DropID: drop, At: at, StartsAt: at + 60_000, EndsAt: at + int64(rng.IntN(1800_000)) + 60_001,
				Inventory: inv(int64(rng.IntN(40))), EventID: fmt.Sprintf("ev-%d-%d", seed, rng.IntN(n))})
		case k == 1:
			r := Record{Kind: KindStart, DropID: drop, At: at, EventID: fmt.Sprintf("ev-%d-%d", seed, rng.IntN(n))}
			if rng.IntN(2) == 0 {
				r.EndsAt = at + int64(rng.IntN(1800_000)) + 1
			}
			if rng.IntN(2) == 0 {
				r.Inventory = inv(int64(rng.IntN(40)))
			}
			recs = append(recs, r)
		case k == 2:
			recs = append(recs, Record{Kind: KindEnd, DropID: drop, At: at, EventID: fmt.Sprintf("ev-%d-%d", seed, i)})
		case k == 3:
			recs = append(recs, claimRec(at, fmt.Sprintf("nodrop-%d", rng.IntN(50)), fmt.Sprintf("c%d-%d", seed, rng.IntN(n)), "u1"))
		default:
			c := fmt.Sprintf("c%d-%d", seed, rng.IntN(n))
			recs = append(recs, claimRec(at-int64(rng.IntN(5000)), drop, c, fmt.Sprintf("u%d", rng.IntN(3))))
		}
		if r := recs[len(recs)-1]; r.Kind == KindClaim {
			claimIDs = append(claimIDs, r.ClaimID)
		}
	}
	for d := range 12 {
		dropIDs = append(dropIDs, fmt.Sprintf("d%d-%d", seed, d))
	}
	for d := range 50 {
		dropIDs = append(dropIDs, fmt.Sprintf("nodrop-%d", d))
	}
	return recs, claimIDs, dropIDs
}

// foldsOf returns a copy of the instance's folds' comparable state.
func foldsOf(in *instance) map[int32]string {
	in.h.seq.mu.RLock()
	defer in.h.seq.mu.RUnlock()
	out := map[int32]string{}
	for p, f := range in.h.seq.folds {
		if f.next == 0 {
			continue // a partition without records (its fold made or not)
		}
		by := map[string]string{}
		for id, dc := range f.byDrop {
			var cs []string
			for _, d := range dc.decided {
				cs = append(cs, d.ClaimID)
			}
			slices.Sort(cs)
			by[id] = fmt.Sprint(cs, dc.last)
		}
		claims := map[string]Decision{}
		for id, d := range f.claims {
			claims[id] = *d
		}
		drops := map[string]Drop{}
		for id, d := range f.drops {
			drops[id] = *d
		}
		applied := map[string]string{} // records by value: Inventory is a pointer
		for ev, a := range f.applied {
			applied[ev] = fmt.Sprint(a.offset, " ", string(a.rec.Marshal()))
		}
		out[p] = fmt.Sprintf("next %d clock %d due %d retention %d\ndrops %v\nclaims %v\napplied %v\ngone %v\nbyDrop %v",
			f.next, f.clock, f.due, f.retention, drops, claims, applied, f.gone, by)
	}
	return out
}

// sameAnswers checks that a and b hold the same folds and answer every
// claim_id (over HTTP: a known claim_id appends nothing) and drop alike.
func sameAnswers(t *testing.T, a, b *instance, claimIDs, dropIDs []string) {
	t.Helper()
	fa, fb := foldsOf(a), foldsOf(b)
	if !reflect.DeepEqual(fa, fb) {
		for p := range fa {
			if fa[p] != fb[p] {
				t.Errorf("partition %d: the folds differ:\n%.600s\nvs\n%.600s", p, fa[p], fb[p])
			}
		}
		t.FailNow()
	}
	// The folds are equal: now the answers over HTTP, of every claim_id
	// decided in one partition only (one decided on two drops hashed
	// apart is answered from either: docs/api.md, "Idempotent").
	in := map[string]int{}
	a.h.seq.mu.RLock()
	for _, f := range a.h.seq.folds {
		for id := range f.claims {
			in[id]++
		}
	}
	a.h.seq.mu.RUnlock()
	for _, id := range claimIDs {
		da, oka := a.h.seq.claimAnywhere(id)
		if oka && in[id] == 1 {
			ra := call(t, a.srv.URL, "POST", "/v1/drops/"+da.DropID+"/claims", serverKey, map[string]any{"claim_id": id, "user_id": da.UserID})
			rb := call(t, b.srv.URL, "POST", "/v1/drops/"+da.DropID+"/claims", serverKey, map[string]any{"claim_id": id, "user_id": da.UserID})
			delete(ra.body, "server_time")
			delete(rb.body, "server_time")
			if ra.code != rb.code || !reflect.DeepEqual(ra.body, rb.body) {
				t.Fatalf("claim %s answered %d %v and %d %v", id, ra.code, ra.body, rb.code, rb.body)
			}
		}
	}
	for _, id := range dropIDs {
		ra := call(t, a.srv.URL, "GET", "/v1/drops/"+id, serverKey, nil)
		rb := call(t, b.srv.URL, "GET", "/v1/drops/"+id, serverKey, nil)
		delete(ra.body, "server_time")
		delete(rb.body, "server_time")
		if ra.code != rb.code || !reflect.DeepEqual(ra.body, rb.body) {
			t.Fatalf("drop %s: %d %v and %d %v", id, ra.code, ra.body, rb.code, rb.body)
		}
	}
}

func restoredOf(in *instance) map[int32]int64 {
	in.h.seq.mu.RLock()
	defer in.h.seq.mu.RUnlock()
	return maps.Clone(in.h.seq.restored)
}

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	es, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestSnapshotRestore: an instance that restored the claims fold from
// snapshots (written at a clean stop) and read the rest of the log from
// their offsets holds the same fold, and gives the same answer for every
// claim_id and drop, as one that read the whole log; forgetting included.
func TestSnapshotRestore(t *testing.T) {
	brokers := newBroker(t)
	dir := t.TempDir()
	t0 := time.Now().Add(-30 * 24 * time.Hour).UnixMilli()
	recs, claimIDs, dropIDs := claimsLog(1, t0, 6000)
	appendRecords(t, brokers, recs[:3000])
	a := startInstance(t, brokers, ClaimsRetention(time.Hour), Snapshots(dir, time.Hour), OutcomeRelay(false))
	a.stop() // a clean stop writes every partition's snapshot
	files, _ := filepath.Glob(filepath.Join(dir, "claims-*.snap"))
	if len(files) != 4 {
		t.Fatalf("snapshot files %v, want 4", files)
	}
	appendRecords(t, brokers, recs[3000:])
	// A write a crash interrupted two hours ago, and one under way.
	stale, fresh := filepath.Join(dir, "claims-1-123.tmp"), filepath.Join(dir, "claims-2-456.tmp")
	for _, f := range []string{stale, fresh} {
		if err := os.WriteFile(f, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Chtimes(stale, time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour))

	reg := prometheus.NewRegistry()
	b := startInstance(t, brokers, ClaimsRetention(time.Hour), Snapshots(dir, time.Hour), OutcomeRelay(false), Registerer(reg))
	c := startInstance(t, brokers, ClaimsRetention(time.Hour), OutcomeRelay(false))
	if r := restoredOf(b); len(r) != 4 {
		t.Fatalf("restored %v, want 4 partitions", r)
	} else {
		t.Logf("restored at offsets %v; the log's ends are about twice that", r)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("a stale temp file was not removed")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Error("a recent temp file (another instance's write) was removed")
	}
	if g := gauge(t, reg, "questline_api_claims_snapshot_restored_partitions"); g != 4 {
		t.Errorf("questline_api_claims_snapshot_restored_partitions = %v", g)
	}
	if foldsOf(b)[0] == "" || len(claimIDs) == 0 {
		t.Fatal("nothing folded")
	}
	gone := 0
	for _, f := range b.h.seq.folds {
		gone += f.GoneDrops()
	}
	if gone == 0 {
		t.Error("no drop forgotten: the test log should exercise forgetting")
	}
	sameAnswers(t, b, c, claimIDs, dropIDs)
}

// TestSnapshotRefused: a snapshot that cannot be trusted is refused
// (logged, counted) and its partition read from the start; partition 0's
// carries the layout, so without it none is restored. The instance then
// answers as one that read the whole log.
func TestSnapshotRefused(t *testing.T) {
	brokers := newBroker(t)
	dir := t.TempDir()
	recs, claimIDs, dropIDs := claimsLog(2, time.Now().Add(-10*24*time.Hour).UnixMilli(), 2000)
	appendRecords(t, brokers, recs)
	startInstance(t, brokers, Snapshots(dir, time.Hour), OutcomeRelay(false)).stop()
	ref := startInstance(t, brokers, OutcomeRelay(false))
	edit := func(p int, f func([]byte) []byte) func(string) {
		return func(d string) {
			path := snapshotPath(d, int32(p))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, f(b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name     string
		mutate   func(dir string)
		opts     []Option
		restored int
	}{
		{"as written", func(string) {}, nil, 4},
		{"a flipped byte in partition 1's", edit(1, func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b }), nil, 3},
		{"partition 2's truncated", edit(2, func(b []byte) []byte { return b[:len(b)-9] }), nil, 3},
		{"partition 3's of another version", edit(3, func(b []byte) []byte { b[len(snapshotMagic)] = snapshotVersion + 1; return b }), nil, 3},
		{"partition 3's empty", edit(3, func([]byte) []byte { return nil }), nil, 3},
		{"partition 0's corrupt: the layout is unknown", edit(0, func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), nil, 0},
		{"another claims retention", func(string) {}, []Option{ClaimsRetention(time.Hour)}, 0},
		{"partition 2's last record not the log's (a log rewritten under the same topic)", edit(2, func(b []byte) []byte {
			h, f, err := decodeSnapshot(b)
			if err != nil {
				t.Fatal(err)
			}
			h.LastSum++
			return encodeSnapshot(h, f)
		}), nil, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := copyDir(t, dir)
			tc.mutate(d)
			reg := prometheus.NewRegistry()
			in := startInstance(t, brokers, append([]Option{Snapshots(d, time.Hour), OutcomeRelay(false), Registerer(reg)}, tc.opts...)...)
			if r := restoredOf(in); len(r) != tc.restored {
				t.Fatalf("restored %v, want %d partitions", r, tc.restored)
			}
			refused := testCounter(t, reg, "questline_api_claims_snapshot_failures_total")
			if (tc.restored < 4) != (refused > 0) {
				t.Errorf("%v snapshots refused, %d partitions restored", refused, tc.restored)
			}
			if len(tc.opts) == 0 {
				sameAnswers(t, in, ref, claimIDs, dropIDs)
			}
			in.stop()
		})
	}

	// The topic re-created (another broker, a shorter log): its
	// snapshots are past the ends and of another topic id.
	t.Run("a re-created topic", func(t *testing.T) {
		brokers2 := newBroker(t)
		appendRecords(t, brokers2, recs[:500])
		in := startInstance(t, brokers2, Snapshots(copyDir(t, dir), time.Hour), OutcomeRelay(false))
		if r := restoredOf(in); len(r) != 0 {
			t.Fatalf("restored %v from another topic's snapshots", r)
		}
		if f := in.h.seq.folds[0]; f == nil || f.next > 500 {
			t.Fatal("partition 0 not read from the start")
		}
	})
	// Partitions added to the topic: the snapshots were taken of 4.
	t.Run("partitions added", func(t *testing.T) {
		cl, err := kafka.NewClient(brokers, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := kadm.NewClient(cl).CreatePartitions(ctx, 2, kafka.TopicClaims); err != nil {
			t.Fatal(err)
		}
		in := startInstance(t, brokers, Snapshots(copyDir(t, dir), time.Hour), OutcomeRelay(false))
		if r := restoredOf(in); len(r) != 0 {
			t.Fatalf("restored %v of a topic of another partition count", r)
		}
		sameAnswers(t, in, ref, claimIDs, dropIDs)
	})
}

// TestSnapshotWrittenPeriodically: a running instance snapshots the
// partitions that changed every interval, not only at a clean stop.
func TestSnapshotWrittenPeriodically(t *testing.T) {
	brokers := newBroker(t)
	dir := t.TempDir()
	in := startInstance(t, brokers, Snapshots(dir, 20*time.Millisecond))
	scheduleLive(t, in.srv.URL, "drop-s", 5)
	for i := range 20 {
		call(t, in.srv.URL, "POST", "/v1/drops/drop-s/claims", serverKey, map[string]any{"claim_id": fmt.Sprint("s", i), "user_id": "u"})
	}
	p := int32(keyPartition("drop-s", 4))
	waitFor(t, func() bool {
		b, err := os.ReadFile(snapshotPath(dir, p))
		if err != nil {
			return false
		}
		_, f, err := decodeSnapshot(b)
		return err == nil && f.Decisions() == 20
	}, "a snapshot holding the 20 decisions")
	time.Sleep(100 * time.Millisecond) // polls returning at their deadline, nothing new
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		if b := filepath.Base(f); b < "claims-0.snap" || b > "claims-3.snap" || len(b) != len("claims-0.snap") {
			t.Errorf("file %s in the snapshot directory", b)
		}
	}
	in.h.seq.mu.RLock()
	defer in.h.seq.mu.RUnlock()
	for p := range in.h.seq.folds {
		if p < 0 || p > 3 {
			t.Errorf("a fold of partition %d", p)
		}
	}
}

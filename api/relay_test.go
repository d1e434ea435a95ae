package api

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/event"
	"github.com/questline/questline/kafka"
	"github.com/questline/questline/kafka/kafkatest"
)

// appendRecords writes recs to questline.claims directly, as an instance
// that crashed after appending (before answering) leaves them.
func appendRecords(t testing.TB, brokers []string, recs []Record) {
	t.Helper()
	cl, err := kafka.NewClient(brokers, nil, kgo.ProducerLinger(20*time.Millisecond), kgo.MaxBufferedRecords(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	errc := make(chan error, 1)
	for i := range recs {
		cl.Produce(ctx, &kgo.Record{Topic: kafka.TopicClaims, Key: []byte(recs[i].DropID), Value: recs[i].Marshal()}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
}

// TestRelayWritesUnansweredOutcomes: claims appended by an instance that
// died before writing their outcome events still reach questline.events,
// through the outcome relay, once each.
func TestRelayWritesUnansweredOutcomes(t *testing.T) {
	brokers := newBroker(t)
	now := time.Now().UnixMilli()
	recs := []Record{{Kind: KindStart, DropID: "orphan", At: now, Inventory: inv(2)}}
	for i := range 5 {
		recs = append(recs, claimRec(now+int64(i), "orphan", fmt.Sprintf("o%d", i), fmt.Sprintf("u%d", i)))
	}
	recs = append(recs, claimRec(now+9, "orphan", "o0", "u0")) // a repeat: no second event
	appendRecords(t, brokers, recs)
	startInstance(t, brokers)
	startInstance(t, brokers)

	deadline := time.Now().Add(30 * time.Second)
	for !kafkatest.CommittedAtEnd(t, brokers, "questline-api", kafka.TopicClaims) {
		if time.Now().After(deadline) {
			t.Fatal("the relays did not commit the claims log within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	got := map[string]string{}
	n := 0
	for _, r := range eventRecords(t, brokers) {
		e := decodeEvent(t, r)
		if e.Type == event.DropClaimed || e.Type == event.ClaimRejected {
			n++
			got[e.ClaimID] = e.Type.String() + "/" + e.Reason
			if e.ID != OutcomeEventID("orphan", e.ClaimID) {
				t.Errorf("outcome event id %s", e.ID)
			}
		}
	}
	want := map[string]string{"o0": "drop_claimed/", "o1": "drop_claimed/", "o2": "claim_rejected/sold_out", "o3": "claim_rejected/sold_out", "o4": "claim_rejected/sold_out"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("outcome events %v, want %v", got, want)
	}
	if n != len(want) {
		t.Errorf("%d outcome records for %d claims (the relay writes one per deciding record)", n, len(want))
	}
}

// TestCatchUp: a fresh instance re-reads the claims log before it answers
// and then answers every claim as decided; it writes snapshots of its fold,
// and a second instance restoring them is ready sooner and answers alike.
// QUESTLINE_API_CATCHUP_RECORDS sets the log's size (default 20000;
// docs/api.md quotes 1000000).
func TestCatchUp(t *testing.T) {
	n := 20000
	if s := os.Getenv("QUESTLINE_API_CATCHUP_RECORDS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatal(err)
		}
	}
	brokers := newBroker(t)
	const drops = 16
	now := time.Now().UnixMilli()
	var recs []Record
	for d := range drops {
		recs = append(recs, Record{Kind: KindStart, DropID: fmt.Sprintf("d%d", d), At: now, Inventory: inv(int64(n / drops / 2))})
	}
	for i := range n - drops {
		recs = append(recs, claimRec(now+1, fmt.Sprintf("d%d", i%drops), fmt.Sprintf("c%d", i), fmt.Sprintf("u%d", i%5000)))
	}
	t0 := time.Now()
	appendRecords(t, brokers, recs)
	t.Logf("wrote %d claims records in %v", n, time.Since(t0).Round(time.Millisecond))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	t0 = time.Now()
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	in := startInstance(t, brokers, OutcomeRelay(false), Snapshots(dir, time.Hour), Registerer(reg)) // no snapshot yet: reads the whole log
	took := time.Since(t0)
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("a fresh instance caught up with %d records in %v (sequencer: %v); live heap grew %d MB (%d bytes per record)",
		n, took.Round(time.Millisecond), in.h.seq.readyAt.Round(time.Millisecond),
		(int64(after.HeapAlloc)-int64(before.HeapAlloc))>>20, (int64(after.HeapAlloc)-int64(before.HeapAlloc))/int64(n))
	defer func() {
		// Restart from the snapshots its clean stop wrote.
		in.stop()
		var size int64
		files, _ := filepath.Glob(filepath.Join(dir, "*.snap"))
		for _, f := range files {
			if st, err := os.Stat(f); err == nil {
				size += st.Size()
			}
		}
		encode := gauge(t, reg, "questline_api_claims_snapshot_seconds")
		t1 := time.Now()
		re := startInstance(t, brokers, OutcomeRelay(false), Snapshots(dir, time.Hour))
		took2 := time.Since(t1)
		if len(restoredOf(re)) != len(files) {
			t.Fatalf("restored %v of %d snapshot files", restoredOf(re), len(files))
		}
		t.Logf("restarted from snapshots (%d files, %d MB; taking the last one paused folding %.0f ms) in %v (sequencer: %v), %.1fx faster",
			len(files), size>>20, encode*1000, took2.Round(time.Millisecond), re.h.seq.readyAt.Round(time.Millisecond),
			took.Seconds()/took2.Seconds())
		a := call(t, re.srv.URL, "POST", "/v1/drops/d0/claims", serverKey, map[string]any{"claim_id": "c0", "user_id": "u0"})
		if outcome(a) != "granted" {
			t.Errorf("claim c0 after the restore: %d %v", a.code, a.body)
		}
		for d := range drops {
			if dr, ok := re.h.seq.drop(fmt.Sprintf("d%d", d)); !ok || dr.Granted != dr.Inventory {
				t.Errorf("drop d%d after the restore: %+v", d, dr)
			}
		}
	}()
	granted := 0
	for d := range drops {
		dr, ok := in.h.seq.drop(fmt.Sprintf("d%d", d))
		if !ok {
			t.Fatalf("drop d%d unknown after catch-up", d)
		}
		granted += int(dr.Granted)
		if dr.Granted != dr.Inventory {
			t.Errorf("drop d%d: granted %d of %d", d, dr.Granted, dr.Inventory)
		}
	}
	a := call(t, in.srv.URL, "POST", "/v1/drops/d0/claims", serverKey, map[string]any{"claim_id": "c0", "user_id": "u0"})
	if outcome(a) != "granted" {
		t.Errorf("claim c0 after catch-up: %d %v", a.code, a.body)
	}
}

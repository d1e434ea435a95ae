package pipeline

import (
	"context"
	"fmt"
	"maps"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/catalog"
	"github.com/questline/questline/processors/internal/streamgen"
)

// records returns a realistic mix as Kafka record values (event.AppendBinary)
// and the event-time span it covers.
func records(n, users int) ([][]byte, int64) {
	evs := streamgen.Generate(streamgen.Config{Seed: 42, Events: n, Users: users, Gap: 2, Disorder: 5000, Quests: 20, Drops: 3})
	recs := make([][]byte, len(evs))
	for i := range evs {
		evs[i].ID = fmt.Sprintf("01J%020d", i)
		evs[i].SessionID = "s-" + evs[i].UserID
		evs[i].KeyID = "key1"
		recs[i] = event.AppendBinary(nil, &evs[i])
	}
	span := evs[len(evs)-1].ReceivedAt - evs[0].ReceivedAt + 10_000
	return recs, span
}

func benchCatalog() *catalog.Catalog {
	cat := catalog.New()
	for _, e := range testCatalog() {
		cat.Apply(&e)
	}
	return cat
}

var (
	benchRecs [][]byte
	benchSpan int64
)

// benchRecords is the shared input: 400,000 events of 40,000 users (about
// 7 minutes of event time). Run with -benchtime=400000x to stay within one
// pass; later passes replay it with shifted times and repeated ids.
func benchRecords() ([][]byte, int64) {
	if benchRecs == nil {
		benchRecs, benchSpan = records(400_000, 40_000)
		runtime.GC()
	}
	return benchRecs, benchSpan
}

// BenchmarkDecode is the baseline: decoding the records alone.
func BenchmarkDecode(b *testing.B) {
	recs, _ := benchRecords()
	var e event.Event
	b.ResetTimer()
	cpu := startCPU()
	for i := 0; i < b.N; i++ {
		if err := event.DecodeBinary(recs[i%len(recs)], &e); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDecodeShared is BenchmarkDecode without the copy of each
// record (event.DecodeBinaryShared, as the source stage decodes).
func BenchmarkDecodeShared(b *testing.B) {
	recs, _ := benchRecords()
	var e event.Event
	b.ResetTimer()
	cpu := startCPU()
	for i := 0; i < b.N; i++ {
		if err := event.DecodeBinaryShared(recs[i%len(recs)], &e); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// TestDecodeSharedIsDecode: both decoders give the same events.
func TestDecodeSharedIsDecode(t *testing.T) {
	recs, _ := records(20_000, 2_000)
	var a, b event.Event
	for _, r := range recs {
		if err := event.DecodeBinary(r, &a); err != nil {
			t.Fatal(err)
		}
		if err := event.DecodeBinaryShared(r, &b); err != nil {
			t.Fatal(err)
		}
		if a != b {
			t.Fatalf("%+v\n%+v", a, b)
		}
	}
	if err := event.DecodeBinaryShared(nil, &b); err == nil {
		t.Fatal("empty record decoded")
	}
}

// cpuStart is the process's CPU time at the start of a timed loop.
type cpuStart struct{ all, sys time.Duration }

func startCPU() cpuStart { return cpuStart{cpuTime(), sysTime()} }

// reportCPU reports the process's CPU time per event since start (see
// cpuTime), when it can be measured, and the system part of it (page
// faults, mostly: a state growing from empty touches fresh memory).
func reportCPU(b *testing.B, start cpuStart) {
	if now := cpuTime(); now > 0 {
		b.ReportMetric(float64(now-start.all)/float64(b.N), "cpu-ns/event")
		b.ReportMetric(float64(sysTime()-start.sys)/float64(b.N), "sys-ns/event")
	}
}

// BenchmarkPartition: decode and every metric (all and clean scopes, user
// bot signals), records passed as the source stage passes them
// (AddRecord), one goroutine, flushing every 50,000 events (a runtime
// flushes per poll or commit interval: at 1M events/s, every 50 ms). The input is
// replayed with shifted event times so time keeps moving forward. The
// timed loop runs under the pprof label phase=timed (-tagfocus leaves out
// generating the records). clean=false: the all scope only; clean=true:
// the clean pass holding its events' records (Add's way, and the source
// stage's before session 12); clean=log: the clean pass holding offsets
// and reading the records again (ReadCleanFrom, the source stage's way;
// here from memory: the Kafka fetch is BenchmarkLogReader's).
func BenchmarkPartition(b *testing.B) {
	for _, clean := range []string{"false", "true", "log"} {
		b.Run("clean="+clean, func(b *testing.B) {
			recs, span := benchRecords()
			cfg := DefaultConfig()
			cfg.Clean = clean != "false"
			p, err := New(cfg, benchCatalog())
			if err != nil {
				b.Fatal(err)
			}
			var e event.Event
			var shifted, again []byte
			if clean == "log" {
				p.ReadCleanFrom(func(off int64) ([]byte, error) {
					// The record at off, as the loop below made it.
					rec := recs[off%int64(len(recs))]
					if pass := off / int64(len(recs)); pass > 0 {
						var e event.Event
						if err := event.DecodeBinaryShared(rec, &e); err != nil {
							return nil, err
						}
						e.EventTime += pass * span
						again = event.AppendBinary(again[:0], &e)
						rec = again
					}
					return rec, nil
				})
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu := startCPU()
			pprof.Do(context.Background(), pprof.Labels("phase", "timed"), func(context.Context) {
				for i := 0; i < b.N; i++ {
					rec := recs[i%len(recs)]
					if err := event.DecodeBinaryShared(rec, &e); err != nil {
						b.Fatal(err)
					}
					if pass := int64(i / len(recs)); pass > 0 {
						e.EventTime += pass * span
						shifted = event.AppendBinary(shifted[:0], &e)
						rec = shifted
					}
					p.AddRecord(rec, &e, int64(i))
					if i%50_000 == 0 {
						p.Flush(p.Watermark())
						p.Reset()
					}
				}
			})
			reportCPU(b, cpu)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

var (
	steadyArena []byte // the records, back to back (no pointers for the GC to follow)
	steadyEnds  []int
)

// BenchmarkPartitionSteady is BenchmarkPartition/clean=log in a steady
// state: 2,000,000 events of 40,000 users (about 35 minutes of event
// time), the first 1,600,000 applied before the timer starts, so that
// the timed events meet what a long-running partition does: the clean
// pass processing (it trails by 21 minutes), panes, auctions and bot
// entities evicted, the remembered ids near their 31-minute horizon.
// Run with -benchtime 400000x (at most 400,000). The timed part runs
// under the pprof label phase=timed. QUESTLINE_STEADY_WARM sets the
// events applied first: 3600000 (an hour of event time) reaches the
// state's full size, auctions held to their grace (45 minutes) included;
// the default, kept for comparison with earlier figures, does not.
func BenchmarkPartitionSteady(b *testing.B) {
	warm := 1_600_000
	if v := os.Getenv("QUESTLINE_STEADY_WARM"); v != "" {
		var err error
		if warm, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	n := warm + 400_000
	if b.N > n-warm {
		b.Skip("at most 400000 events")
	}
	if os.Getenv("QUESTLINE_HEAPPROFILE") != "" {
		runtime.MemProfileRate = 4096
	}
	if steadyArena == nil {
		recs, _ := records(n, 40_000)
		for _, r := range recs {
			steadyArena = append(steadyArena, r...)
			steadyEnds = append(steadyEnds, len(steadyArena))
		}
		recs = nil
		runtime.GC()
	}
	at := func(i int) []byte {
		start := 0
		if i > 0 {
			start = steadyEnds[i-1]
		}
		return steadyArena[start:steadyEnds[i]:steadyEnds[i]]
	}
	// Each user's latest event time in the warm-up (for the state per
	// active user after it), sorted: 8 bytes a user, made before the
	// heap is measured.
	last := steadyLast(b, warm, at)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	p, err := New(DefaultConfig(), benchCatalog())
	if err != nil {
		b.Fatal(err)
	}
	if os.Getenv("QUESTLINE_BENCH_HELD") == "" {
		// The source stage's way (QUESTLINE_BENCH_HELD=1: the records
		// held, as before session 12).
		p.ReadCleanFrom(func(off int64) ([]byte, error) { return at(int(off)), nil })
	}
	var e event.Event
	add := func(i int) {
		rec := at(i)
		if err := event.DecodeBinaryShared(rec, &e); err != nil {
			b.Fatal(err)
		}
		p.AddRecord(rec, &e, int64(i))
		if i%50_000 == 0 {
			p.Flush(p.Watermark())
			p.Reset()
		}
	}
	for i := range warm {
		add(i)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if profile := os.Getenv("QUESTLINE_HEAPPROFILE"); profile != "" { // the state after the warm-up
		writeHeapProfile(profile)
	}
	// Active: an event within the horizon ids are remembered for.
	cfg := DefaultConfig()
	active := len(last) - sort.Search(len(last), func(i int) bool { return last[i] >= p.Watermark()-cfg.DedupHorizon() })
	state := (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(active)
	ids := float64(p.seen.len()) / float64(active)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU()
	pprof.Do(context.Background(), pprof.Labels("phase", "timed"), func(context.Context) {
		for i := warm; i < warm+b.N; i++ {
			add(i)
		}
	})
	reportCPU(b, cpu)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(p.Stats().CleanPending), "clean-pending")
	// After the warm-up: the state per active user with the clean pass
	// running, and the event ids remembered per active user.
	b.ReportMetric(state, "state-B/active-user")
	b.ReportMetric(ids, "ids/active-user")
}

// steadyLast returns the latest event time of each user in the first n
// records, ascending.
func steadyLast(b *testing.B, n int, at func(int) []byte) []int64 {
	latest := map[string]int64{}
	var e event.Event
	for i := range n {
		if err := event.DecodeBinary(at(i), &e); err != nil {
			b.Fatal(err)
		}
		if e.UserID != "" {
			latest[e.UserID] = max(latest[e.UserID], e.EventTime)
		}
	}
	return slices.Sorted(maps.Values(latest))
}

// TestStateBytesPerUser measures the heap held by a partition's state per
// active user (a user with an event within the retention horizon), all
// scope (the published figure), in two catalogs: the benchmarks' (no drop
// is live in these first 5 minutes of events: lift holds nothing) and one
// where drop0 is live all along (every active user is then in its lift
// state, as on a platform with a drop live); then in the default
// configuration, with the clean pass holding the offsets of its waiting
// events (as the source stage does; in these 5 minutes of events it takes
// none yet).
func TestStateBytesPerUser(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	if os.Getenv("QUESTLINE_HEAPPROFILE") != "" {
		runtime.MemProfileRate = 4096 // a finer profile than the default
	}
	const users = 50_000
	recs, _ := records(300_000, users)
	live := catalog.New()
	for _, e := range testCatalog() {
		if e.Type == event.DropStarted && e.DropID == "drop0" {
			e.EventTime = t0 - minute
		}
		live.Apply(&e)
	}
	none := stateBytesPerUser(t, recs, false, benchCatalog(), "no drop live", false)
	if withDrop := stateBytesPerUser(t, recs, false, live, "a drop live", true); withDrop <= none {
		t.Errorf("with a drop live %.0f B per user, without %.0f: lift holds nothing (is the drop live over these events?)", withDrop, none)
	}
	stateBytesPerUser(t, recs, true, live, "a drop live", false)
}

// stateBytesPerUser measures one configuration and returns its bytes per
// active user, writing the heap profile (QUESTLINE_HEAPPROFILE) if
// profile is set.
func stateBytesPerUser(t *testing.T, recs [][]byte, clean bool, cat *catalog.Catalog, drops string, profile bool) float64 {
	cfg := DefaultConfig()
	cfg.Clean = clean
	// The active users, counted before the measurement starts (a map
	// filled during it would hold its keys, and through them the decoded
	// records, in the measured heap).
	active := map[string]bool{}
	var e event.Event
	for _, r := range recs {
		if err := event.DecodeBinary(r, &e); err != nil {
			t.Fatal(err)
		}
		active[e.UserID] = true
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	p, err := New(cfg, cat)
	if err != nil {
		t.Fatal(err)
	}
	if clean {
		p.ReadCleanFrom(func(off int64) ([]byte, error) { return recs[off], nil })
	}
	for i, r := range recs {
		// As the source stage has it: the event's strings are the bytes
		// of a record that is garbage once applied, unless the state
		// keeps a string of it without a copy (which this would count).
		r = slices.Clone(r)
		if err := event.DecodeBinaryShared(r, &e); err != nil {
			t.Fatal(err)
		}
		p.AddRecord(r, &e, int64(i))
		if i%10_000 == 0 {
			p.Flush(p.Watermark())
			p.Reset()
		}
	}
	p.Flush(p.Watermark())
	p.Reset()
	runtime.GC()
	runtime.ReadMemStats(&after)
	bytes := float64(after.HeapAlloc) - float64(before.HeapAlloc)
	span := time.Duration(p.wm.Max()-(1767225600000)) * time.Millisecond
	what := "all scope"
	if clean {
		what = fmt.Sprintf("with the clean pass (%d events waiting, as offsets)", p.Stats().CleanPending)
	}
	perUser := bytes / float64(len(active))
	t.Logf("%d active users over %v of event time, %s: %.0f bytes of state per active user, %s", len(active), span, drops, perUser, what)
	if f := os.Getenv("QUESTLINE_HEAPPROFILE"); f != "" && profile {
		writeHeapProfile(f)
	}
	runtime.KeepAlive(p)
	runtime.KeepAlive(recs)
	runtime.KeepAlive(active)
	return perUser
}

// writeHeapProfile writes the heap profile to file (QUESTLINE_HEAPPROFILE).
func writeHeapProfile(file string) {
	w, err := os.Create(file)
	if err != nil {
		panic(err)
	}
	defer w.Close()
	if err := pprof.WriteHeapProfile(w); err != nil {
		panic(err)
	}
}

package event

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

// BenchEvents returns n realistic client events: a mix of quest, drop and
// offer types with the props their type needs, device and session ids, and
// an unknown prop on every fourth event (about 230 bytes of JSON each).
func benchEvents(n int) []Event {
	r := rand.New(rand.NewPCG(7, 8))
	evs := make([]Event, n)
	ts := int64(1_777_000_000_000)
	for i := range evs {
		e := Event{
			ID:        fmt.Sprintf("01J%013d-%04d", r.Int64N(1e13), i),
			UserID:    fmt.Sprintf("user-%06d", r.IntN(1e6)),
			DeviceID:  fmt.Sprintf("dev-%08x", r.Uint32()),
			SessionID: fmt.Sprintf("sess-%08x", r.Uint32()),
			Country:   "DE",
			TS:        ts + int64(i)*137,
		}
		switch i % 5 {
		case 0:
			e.Type, e.QuestID = QuestStarted, fmt.Sprintf("quest-%03d", r.IntN(500))
		case 1:
			e.Type, e.QuestID, e.DurationMs, e.Has = QuestCompleted, fmt.Sprintf("quest-%03d", r.IntN(500)), 200_000+r.Int64N(100_000), HasDurationMs
		case 2:
			e.Type, e.DropID, e.CreatorID = DropViewed, fmt.Sprintf("drop-%04d", r.IntN(1000)), fmt.Sprintf("creator-%03d", r.IntN(100))
		case 3:
			e.Type, e.AuctionID, e.OfferID, e.Placement = OfferShown, fmt.Sprintf("auc-%010d", r.Int64N(1e10)), "offer-42", "feed_top"
		case 4:
			e.Type, e.OrderID, e.AmountMicros, e.Currency, e.Has = Conversion, fmt.Sprintf("order-%08d", r.IntN(1e8)), 4_990_000, "EUR", HasAmountMicros
		}
		if i%4 == 0 {
			e.Extra = `{"app_version":"3.14.1"}`
		}
		evs[i] = e
	}
	return evs
}

// The loops are serial: events/s is per core. events/cpu-s divides by the
// CPU time the process used (the loop plus GC), which other load on a
// shared machine does not inflate.

// cpuTime returns the user+system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkParseBatch100(b *testing.B) {
	body := batchJSON(`"sent_at":"2026-05-01T12:00:00.000Z",`, benchEvents(100))
	var batch Batch
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		if err := ParseBatch(body, &batch, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*100/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.N)*100/(cpuTime()-cpu0).Seconds(), "events/cpu-s")
}

// BenchmarkEncodingJSONBaseline100 decodes the same body with encoding/json
// into generic maps, the baseline ParseBatch is compared against.
func BenchmarkEncodingJSONBaseline100(b *testing.B) {
	body := batchJSON(`"sent_at":"2026-05-01T12:00:00.000Z",`, benchEvents(100))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		var v struct {
			SentAt string           `json:"sent_at"`
			Events []map[string]any `json:"events"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*100/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.N)*100/(cpuTime()-cpu0).Seconds(), "events/cpu-s")
}

func BenchmarkAppendBinary(b *testing.B) {
	evs := benchEvents(100)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	cpu0 := cpuTime()
	i := 0
	for b.Loop() {
		buf = AppendBinary(buf[:0], &evs[i%len(evs)])
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.N)/(cpuTime()-cpu0).Seconds(), "events/cpu-s")
}

func BenchmarkDecodeBinary(b *testing.B) {
	evs := benchEvents(100)
	recs := make([][]byte, len(evs))
	for i := range evs {
		recs[i] = AppendBinary(nil, &evs[i])
	}
	var e Event
	b.ReportAllocs()
	cpu0 := cpuTime()
	i := 0
	for b.Loop() {
		if err := DecodeBinary(recs[i%len(recs)], &e); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.N)/(cpuTime()-cpu0).Seconds(), "events/cpu-s")
}

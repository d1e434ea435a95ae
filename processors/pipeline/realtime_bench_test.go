package pipeline

import (
	"fmt"
	"testing"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/internal/streamgen"
)

var realtimeRecs [][]byte

// BenchmarkPartitionRealtime is a partition as `questline run` drives it
// in real time: flushed every 1,000 events (about 500 ms of event time at
// this stream's 2,000 events/s, the e2e benchmark's flush interval), with
// events up to 2 minutes late (offline devices: late for the 30 s
// out-of-order bound, within the 10 min lateness, so windows keep taking
// updates). 600,000 events of 40,000 users, about 5 minutes of event time,
// both scopes. Two runs side by side: bot windows updated at every flush
// that changed them (window.Spec.UpdateEvery = 0, the code before session
// 6) and at most once a minute of event time (the default). Run with
// -benchtime 600000x.
func BenchmarkPartitionRealtime(b *testing.B) {
	const n = 600_000
	if b.N > n {
		b.Skip("at most 600000 events")
	}
	if realtimeRecs == nil {
		i := 0
		streamgen.Each(streamgen.Config{Seed: 7, Events: n, Users: 40_000, Gap: 1, Disorder: 120_000, Quests: 20, Drops: 3}, func(e *event.Event) {
			e.ID = fmt.Sprintf("01K%020d", i)
			e.SessionID = "s-" + e.UserID
			realtimeRecs = append(realtimeRecs, event.AppendBinary(nil, e))
			i++
		})
	}
	for _, every := range []time.Duration{0, time.Minute} {
		b.Run(fmt.Sprintf("bot-updates=%v", every), func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Clean = true
			cfg.Bots.Window.UpdateEvery = every
			p, err := New(cfg, benchCatalog())
			if err != nil {
				b.Fatal(err)
			}
			var e event.Event
			rows := 0
			b.ResetTimer()
			cpu := startCPU()
			for i := 0; i < b.N; i++ {
				rec := realtimeRecs[i]
				if err := event.DecodeBinaryShared(rec, &e); err != nil {
					b.Fatal(err)
				}
				p.AddRecord(rec, &e, int64(i))
				if i%1000 == 999 {
					rows += len(p.Flush(p.Watermark()).Bots)
					p.Reset()
				}
			}
			reportCPU(b, cpu)
			b.ReportMetric(float64(rows)/float64(b.N), "bot-rows/event")
		})
	}
}

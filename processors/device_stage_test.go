package processors

import (
	"fmt"
	"testing"
	"time"

	"github.com/questline/questline/processors/bots"
	"github.com/questline/questline/processors/window"
)

// BenchmarkFlagRecordsNothingClosed (helper-51): a device-stage loop's
// flagRecords with many flagged device windows open (66 each) and none
// closing, as in every loop between two window ends. Until the pending
// windows were kept by start, every loop sorted all of them: 1.9, 23.1
// and 356 ms for 100, 1,000 and 10,000 devices (docs/benchmarks/processors.md,
// "Session 16", says how to run it on that code).
func BenchmarkFlagRecordsNothingClosed(b *testing.B) {
	for _, devices := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprint(devices), func(b *testing.B) {
			p, err := bots.New(bots.DefaultConfig(), nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			dp := newDevicePart(p, 1)
			const base = int64(1767225600000)
			spec := window.Spec{Size: time.Minute, Slide: 10 * time.Second, Lateness: 10 * time.Minute}
			for d := range devices {
				for w := range 66 {
					dp.track([]bots.Row{{Start: base + int64(w)*10_000, EntityID: fmt.Sprint("device-", d), Flagged: true, Users: &[]string{"u1", "u2"}}})
				}
			}
			dp.srcWM[0] = base // closes nothing
			b.ResetTimer()
			for range b.N {
				dp.marked = window.None
				if recs := dp.flagRecords(0, spec, 8, func(string) int32 { return 0 }); len(recs) != 8 {
					b.Fatalf("%d records, want the 8 markers", len(recs))
				}
			}
		})
	}
}

package loadgen

import (
	"context"
	"testing"
)

// discard accepts every batch.
type discard struct{}

func (discard) Send(_ context.Context, b *Batch) (SendResult, error) {
	return SendResult{Accepted: len(b.Events)}, nil
}

// BenchmarkGenerate measures the model alone: one op is one event.
func BenchmarkGenerate(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Count = 1
	g := newGen(cfg, testOrigin.UnixMilli())
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if n == 0 {
			n = len(g.next().Events)
		}
		n--
	}
}

// BenchmarkEncodeJSON is the baseline: encoding already generated events
// as request bodies, the least any generator must do per event. One op is
// one event.
func BenchmarkEncodeJSON(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Count = 1
	g := newGen(cfg, testOrigin.UnixMilli())
	var batches []*Batch
	for n := 0; n < 100000; {
		bt := g.next()
		batches = append(batches, bt)
		n += len(bt.Events)
	}
	b.ReportAllocs()
	var buf []byte
	i, left := 0, 0
	for b.Loop() {
		if left == 0 {
			bt := batches[i%len(batches)]
			i++
			buf = bt.AppendSimJSON(buf[:0])
			left = len(bt.Events)
		}
		left--
	}
}

// BenchmarkRun measures a whole run with its ground truth (no network):
// one op is one event.
func BenchmarkRun(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Speed, cfg.Concurrency, cfg.Origin = 0, 1, testOrigin
	cfg.Count = max(b.N, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	if _, err := Run(context.Background(), cfg, discard{}, nil); err != nil {
		b.Fatal(err)
	}
}

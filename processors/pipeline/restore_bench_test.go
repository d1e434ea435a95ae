package pipeline

import (
	"bytes"
	"context"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/loadgen"
	"github.com/questline/questline/processors/catalog"
	"github.com/questline/questline/processors/internal/streamgen"
)

// BenchmarkRestore1MUsers: restore a partition holding the state of 1M
// active users (3M events over about 25 minutes of event time), from a
// snapshot in memory, without and with the clean pass: clean=true holds
// the records of its lag in its queue, clean=log their offsets (as the
// source stage does since session 12). Run with -benchtime=1x.
func BenchmarkRestore1MUsers(b *testing.B) {
	for _, clean := range []string{"false", "true", "log"} {
		b.Run("clean="+clean, func(b *testing.B) { benchRestore(b, clean) })
	}
}

// logFeed adds events to a partition as records of a log in memory, at
// offsets 0, 1, … (AddRecord, as the source stage does); with read, the
// partition's clean pass reads them again from it (ReadCleanFrom) rather
// than holding them.
type logFeed struct {
	p    *Partition
	read bool
	recs [][]byte
	e    event.Event
}

// newLogFeed feeds p, which reads its clean pass's events again.
func newLogFeed(p *Partition) *logFeed {
	f := &logFeed{read: true}
	f.use(p)
	return f
}

// use makes p the partition fed (a new one, or one restored).
func (f *logFeed) use(p *Partition) {
	f.p = p
	if f.read {
		p.ReadCleanFrom(func(off int64) ([]byte, error) { return f.recs[off], nil })
	}
}

func (f *logFeed) add(e *event.Event) {
	rec := event.AppendBinary(nil, e)
	f.recs = append(f.recs, rec)
	if err := event.DecodeBinaryShared(rec, &f.e); err != nil {
		panic(err)
	}
	f.p.AddRecord(rec, &f.e, int64(len(f.recs)-1))
}

func benchRestore(b *testing.B, clean string) {
	cfg := DefaultConfig()
	cfg.Clean = clean != "false"
	p, err := New(cfg, benchCatalog())
	if err != nil {
		b.Fatal(err)
	}
	add := p.Add
	if clean == "log" {
		add = newLogFeed(p).add
	}
	users := map[string]struct{}{}
	n := 0
	streamgen.Each(streamgen.Config{Seed: 9, Events: 3_000_000, Users: 20_000_000, Gap: 1, Disorder: 5000, Quests: 20, Drops: 3}, func(e *event.Event) {
		users[e.UserID] = struct{}{}
		add(e)
		if n++; n%100_000 == 0 {
			p.Flush(p.Watermark())
			p.Reset()
		}
	})
	p.Flush(p.Watermark())
	p.Reset()
	var buf bytes.Buffer
	start := time.Now()
	if err := p.Snapshot(&buf); err != nil {
		b.Fatal(err)
	}
	snapTime := time.Since(start)
	active := len(users)
	users = nil
	p, add = nil, nil
	runtime.GC()
	b.ResetTimer()
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := Restore(cfg, catalog.New(), bytes.NewReader(buf.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "restore-s")
	if now := cpuTime(); now > 0 {
		b.ReportMetric((now-cpu).Seconds()/float64(b.N), "restore-cpu-s")
	}
	b.ReportMetric(snapTime.Seconds(), "snapshot-s")
	b.ReportMetric(float64(buf.Len())/1e6, "snapshot-MB")
	b.ReportMetric(float64(active), "users")
}

// BenchmarkSnapshot: snapshot a partition at a high event rate, where the
// remembered event ids (every id of the dedup horizon, about 31 minutes)
// and the clean pass's queue outweigh the per-user state. Two streams:
// synthetic, 3M events of 50,000 users over about 25 minutes of event time;
// loadgen, one partition's share of the load generator at 36,000 events/s
// for 9 minutes (4,500 events/s, 2M events). Reports the CPU time of one
// snapshot, of its freeze (the pause of the source stage; the rest is
// written in the background), and its size. Run with -benchtime=3x.
// stream=synthetic-log: the synthetic stream as records of a log, whose
// offsets the clean pass holds (the source stage's way since session 12).
func BenchmarkSnapshot(b *testing.B) {
	for _, name := range []string{"synthetic", "synthetic-log"} {
		b.Run("stream="+name, func(b *testing.B) {
			p, err := New(DefaultConfig(), benchCatalog())
			if err != nil {
				b.Fatal(err)
			}
			add := p.Add
			var feed *logFeed
			if name == "synthetic-log" {
				feed = newLogFeed(p)
				add = feed.add
			}
			n := 0
			streamgen.Each(streamgen.Config{Seed: 9, Events: 3_000_000, Users: 50_000, Gap: 1, Disorder: 5000, Quests: 20, Drops: 3}, func(e *event.Event) {
				add(e)
				if n++; n%100_000 == 0 {
					p.Flush(p.Watermark())
					p.Reset()
				}
			})
			benchSnapshot(b, p)
			runtime.KeepAlive(feed)
		})
	}
	b.Run("stream=loadgen", func(b *testing.B) {
		cfg := DefaultConfig()
		cfg.OutOfOrder = time.Second
		p, err := New(cfg, catalog.New())
		if err != nil {
			b.Fatal(err)
		}
		lc := loadgen.DefaultConfig()
		lc.Seed, lc.Rate, lc.Duration, lc.Speed, lc.Concurrency = 3, 4500, 9*time.Minute, 0, 1
		lc.Origin = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		if _, err := loadgen.Run(context.Background(), lc, &partitionSender{p: p}, io.Discard); err != nil {
			b.Fatal(err)
		}
		benchSnapshot(b, p)
	})
}

// partitionSender feeds the load generator's events to one partition, on
// the true clock (what ingest does with a device's skew, roughly).
type partitionSender struct {
	mu sync.Mutex
	p  *Partition
	n  int
}

func (s *partitionSender) Send(_ context.Context, b *loadgen.Batch) (loadgen.SendResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range b.Events {
		e := b.Events[i]
		e.EventTime -= b.Skew
		s.p.Add(&e)
		if s.n++; s.n%50_000 == 0 {
			s.p.Flush(s.p.Watermark())
			s.p.Reset()
		}
	}
	return loadgen.SendResult{Accepted: len(b.Events)}, nil
}

func benchSnapshot(b *testing.B, p *Partition) {
	p.Flush(p.Watermark())
	p.Reset()
	runtime.GC()
	var buf bytes.Buffer
	b.ResetTimer()
	var freeze, write time.Duration
	for i := 0; i < b.N; i++ {
		buf.Reset()
		c0 := cpuTime()
		f := p.Freeze()
		c1 := cpuTime()
		if _, err := f.WriteTo(&buf); err != nil {
			b.Fatal(err)
		}
		freeze, write = freeze+c1-c0, write+cpuTime()-c1
	}
	// The pause of the source stage is the freeze; the write runs beside
	// it (before session 5 the whole snapshot was the pause).
	b.ReportMetric(freeze.Seconds()/float64(b.N), "freeze-cpu-s")
	b.ReportMetric((freeze+write).Seconds()/float64(b.N), "snapshot-cpu-s")
	b.ReportMetric(float64(buf.Len())/1e6, "snapshot-MB")
	b.ReportMetric(float64(p.Stats().SeenIDs), "seen-ids")
}

package pipeline

import (
	"fmt"
	"slices"
	"testing"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/bots"
	"github.com/questline/questline/processors/catalog"
	"github.com/questline/questline/processors/window"
)

// TestDeviceRecords: a device processor without a catalog, given the
// records a partition forwards (as the device stage is), computes the rows
// of a device processor given the whole events and the partition's
// catalog; and that catalog matters in this stream (q1's minimum duration
// is 100 s, the default 60 s), so a forwarded record that lost the
// minimum, or any field the signals read, fails it.
func TestDeviceRecords(t *testing.T) {
	cfg := testConfig()
	cfg.ForwardDevices = true
	devCfg := cfg.Bots
	devCfg.Entity = bots.EntityDevice
	// The stream's shared device, d0, has 3 users: over 2, so that
	// shared_device (the events' users) is among the signals compared.
	devCfg.SharedDeviceUsers = 2
	newBots := func(cat *catalog.Catalog) *bots.Processor {
		b, err := bots.New(devCfg, cat, nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for seed := range uint64(3) {
		events := stream(seed)
		p := newTestPartition(t, cfg)
		stage, whole, noCatalog := newBots(nil), newBots(p.Catalog()), newBots(nil)
		var rows [3][]string
		var signals uint8 // of the whole events' rows
		keep := func(i int, rs []bots.Row) {
			for _, r := range rs {
				u := r.Users
				r.Users = nil // a pointer: printed by its value
				s := fmt.Sprintf("%+v", r)
				if u != nil {
					s += fmt.Sprint(*u)
				}
				rows[i] = append(rows[i], s)
				if i == 1 {
					signals |= r.Signals
				}
			}
		}
		var rec []byte
		var e, d event.Event
		forwarded, shorter := 0, 0
		for i := range events {
			rec = event.AppendBinary(rec[:0], &events[i])
			if err := event.DecodeBinary(rec, &e); err != nil {
				t.Fatal(err)
			}
			p.AddRecord(rec, &e, int64(i))
			out := p.Flush(p.Watermark())
			for _, fw := range out.Devices {
				if err := event.DecodeBinary(fw.Record, &d); err != nil {
					t.Fatal(err)
				}
				src := &events[fw.Offset]
				if len(fw.Record) < len(event.AppendBinary(nil, src)) {
					shorter++
				}
				// The device stage's watermark trails every source's; here
				// there is one source, this partition.
				r := window.Range{Lo: fw.Lo, Hi: 1<<63 - 1}
				wm := p.Watermark()
				stage.AddRange(&d, wm, r)
				whole.AddRange(src, wm, r)
				noCatalog.AddRange(src, wm, r)
				forwarded++
			}
			p.Reset()
			for k, b := range []*bots.Processor{stage, whole, noCatalog} {
				b.Advance(p.Watermark())
				keep(k, b.Flush(p.Watermark()))
			}
		}
		for k, b := range []*bots.Processor{stage, whole, noCatalog} {
			b.Advance(p.Watermark() + 1e9)
			keep(k, b.Flush(p.Watermark()+1e9))
		}
		if forwarded == 0 || shorter != forwarded {
			t.Fatalf("seed %d: %d events forwarded, %d of them shorter than their record", seed, forwarded, shorter)
		}
		if len(rows[1]) == 0 {
			t.Fatalf("seed %d: no device rows", seed)
		}
		// Each field forwarded shows in a signal: the type (claims and
		// completions), the duration and minimum, the user, the countries.
		for _, sig := range []bots.Signal{bots.ImpossibleQuest, bots.SharedDevice, bots.GeoMismatch, bots.ClaimBurst} {
			if signals&(1<<sig) == 0 {
				t.Fatalf("seed %d: no device row with %v: the test shows nothing of the fields it reads", seed, sig)
			}
		}
		if !slices.Equal(rows[0], rows[1]) {
			t.Fatalf("seed %d: the device stage's rows (%d) differ from the rows of the whole events with the catalog (%d)", seed, len(rows[0]), len(rows[1]))
		}
		if slices.Equal(rows[1], rows[2]) {
			t.Fatalf("seed %d: the catalog changes no device row: the test shows nothing of the minimum forwarded", seed)
		}
	}
}

package pipeline

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/window"
)

// deviceFlagsLog is a flags log: a flag of user "farm" in the bot window
// of its completion, a marker of device partition 0, the flag again, a
// lower marker of 0, and the marker of device partition 1.
func deviceFlagsLog(end int64) [][]byte {
	return [][]byte{
		DeviceFlagValue("farm", t0+60*sec),
		DeviceMarkerValue(0, end),
		DeviceFlagValue("farm", t0+60*sec),
		DeviceMarkerValue(0, end-minute),
		DeviceMarkerValue(1, end),
	}
}

// deviceFlagsInput: two users complete q1 at t0+90 s, one of them ("farm")
// flagged only through a device; the watermark then passes everything.
func deviceFlagsInput(p *Partition, end int64) {
	for i, u := range []string{"farm", "human"} {
		p.Add(&event.Event{ID: fmt.Sprint("s", i), Type: event.QuestStarted, UserID: u, QuestID: "q1", EventTime: t0})
		p.Add(&event.Event{ID: fmt.Sprint("c", i), Type: event.QuestCompleted, UserID: u, QuestID: "q1", DurationMs: 300_000, Has: event.HasDurationMs, EventTime: t0 + 90*sec})
	}
	p.Advance(end)
}

// cleanCompletions returns the clean scope's completions of q1 in the
// window starting at t0 (-1 without a row).
func cleanCompletions(tb *tables) int {
	r, ok := tb.quest[fmt.Sprint(t0, "q1", window.ScopeClean)]
	if !ok {
		return -1
	}
	return int(r.Completions)
}

// TestDeviceFlagsGateTheCleanPass: with device partitions configured, the
// clean pass takes no event until every device partition's marker has
// passed its need, and leaves out the users flagged through a device. A
// flag sent twice, a lower marker and a record read again change nothing.
func TestDeviceFlagsGateTheCleanPass(t *testing.T) {
	cfg := testConfig()
	cfg.DevicePartitions = 2
	p := newTestPartition(t, cfg)
	end := t0 + 3*3600_000
	deviceFlagsInput(p, end)
	tb := newTables()
	flush := func() {
		tb.keep(p.Flush(p.Watermark()))
		p.Reset()
	}
	flush()
	if all := tb.quest[fmt.Sprint(t0, "q1", window.ScopeAll)]; all.Completions != 2 {
		t.Fatalf("all scope: %d completions, want 2", all.Completions)
	}
	if n := cleanCompletions(tb); n != -1 || p.Stats().CleanPending == 0 {
		t.Fatalf("without markers the clean pass took its events: %d completions, %d waiting", n, p.Stats().CleanPending)
	}
	log := deviceFlagsLog(end)
	for i, v := range log[:4] {
		if err := p.AddDeviceFlags(int64(i), v); err != nil {
			t.Fatal(err)
		}
	}
	flush()
	if n := cleanCompletions(tb); n != -1 || p.Stats().CleanPending == 0 {
		t.Fatalf("with one device partition's marker of two the clean pass took its events: %d completions", n)
	}
	if err := p.AddDeviceFlags(4, log[4]); err != nil {
		t.Fatal(err)
	}
	flush()
	if n := cleanCompletions(tb); n != 1 || p.Stats().CleanPending != 0 {
		t.Fatalf("clean scope: %d completions with %d events waiting, want 1 (the device-flagged user left out) and none", n, p.Stats().CleanPending)
	}
	// Read again (a restart that resumes before the offsets): passed over.
	if err := p.AddDeviceFlags(0, []byte{9}); err != nil || p.DeviceFlagsNext() != 5 {
		t.Fatalf("a record below the next offset: %v, next %d", err, p.DeviceFlagsNext())
	}
	if err := p.AddDeviceFlags(5, []byte{9}); err == nil {
		t.Fatal("an unknown record: no error")
	}
	if err := p.AddDeviceFlags(6, DeviceMarkerValue(2, end)); err == nil {
		t.Fatal("a marker of a device partition past the configured count: no error")
	}
}

// TestDeviceFlagsSnapshot: a partition snapshotted between the flags'
// records and restored (version 6: the device flags, the markers, the next
// offset) goes on to the same rows as one that was not.
func TestDeviceFlagsSnapshot(t *testing.T) {
	cfg := testConfig()
	cfg.DevicePartitions = 2
	end := t0 + 3*3600_000
	log := deviceFlagsLog(end)
	for cut := range len(log) + 1 {
		p := newTestPartition(t, cfg)
		deviceFlagsInput(p, end)
		tb := newTables()
		tb.keep(p.Flush(p.Watermark()))
		p.Reset()
		for i, v := range log[:cut] {
			if err := p.AddDeviceFlags(int64(i), v); err != nil {
				t.Fatal(err)
			}
		}
		tb.keep(p.Flush(p.Watermark())) // a snapshot follows a flush written
		p.Reset()
		var buf bytes.Buffer
		if err := p.Snapshot(&buf); err != nil {
			t.Fatal(err)
		}
		q, err := Restore(cfg, newTestCatalog(), &buf)
		if err != nil {
			t.Fatal(err)
		}
		if q.DeviceFlagsNext() != int64(cut) {
			t.Fatalf("cut %d: restored next offset %d", cut, q.DeviceFlagsNext())
		}
		// The restored partition is given the log from its start: what it
		// applied before is passed over.
		for i, v := range log {
			if err := q.AddDeviceFlags(int64(i), v); err != nil {
				t.Fatal(err)
			}
		}
		tb.keep(q.Flush(q.Watermark()))
		if n := cleanCompletions(tb); n != 1 {
			t.Errorf("cut %d: clean scope %d completions after the restore, want 1", cut, n)
		}
	}
}

// TestNoDevicePartitionsNoGate: without device partitions (the default:
// tests, benchmarks, Partition.Add users) the clean pass goes by the
// watermark alone, and device flags still leave users out.
func TestNoDevicePartitionsNoGate(t *testing.T) {
	p := newTestPartition(t, testConfig())
	if err := p.AddDeviceFlags(0, DeviceFlagValue("farm", t0+60*sec)); err != nil {
		t.Fatal(err)
	}
	deviceFlagsInput(p, t0+3*3600_000)
	tb := newTables()
	tb.keep(p.Flush(p.Watermark()))
	if n := cleanCompletions(tb); n != 1 {
		t.Fatalf("clean scope: %d completions, want 1", n)
	}
}

// TestMarkerTimingLeavesCleanRows (helper-51): the same events log and
// the same flags log, the flags read at two points of the events log (a
// flush earlier or later), give the same clean rows. Before watermark
// entries, a marker read while the clean queue was empty raised the clean
// watermark at once, so a very late event was late in the clean scope in
// one run and counted in the other (more than the all scope counted).
func TestMarkerTimingLeavesCleanRows(t *testing.T) {
	W := t0 + 3*3600_000
	W2 := W + 2*3600_000
	run := func(early bool) (all, clean int) {
		cfg := testConfig()
		cfg.DevicePartitions = 1
		p := newTestPartition(t, cfg)
		p.Add(&event.Event{ID: "s", Type: event.QuestStarted, UserID: "h", QuestID: "q1", EventTime: t0})
		p.Add(&event.Event{ID: "c", Type: event.QuestCompleted, UserID: "h", QuestID: "q1", DurationMs: 300_000, Has: event.HasDurationMs, EventTime: t0 + 90*sec})
		p.Advance(W) // an idle watermark record in the events log
		off := int64(0)
		if early {
			mustAddFlags(t, p, off, DeviceMarkerValue(0, W))
			off++
		}
		// A very late completion (a phone offline for hours).
		p.Add(&event.Event{ID: "x", Type: event.QuestCompleted, UserID: "late", QuestID: "q1", DurationMs: 300_000, Has: event.HasDurationMs, EventTime: t0 + 2*minute})
		p.Advance(W2)
		if !early {
			mustAddFlags(t, p, off, DeviceMarkerValue(0, W))
			off++
		}
		mustAddFlags(t, p, off, DeviceMarkerValue(0, W2))
		tb := newTables()
		tb.keep(p.Flush(p.Watermark()))
		return int(tb.quest[fmt.Sprint(t0, "q1", window.ScopeAll)].Completions), cleanCompletions(tb)
	}
	a1, c1 := run(true)
	a2, c2 := run(false)
	t.Logf("marker W read before the late event: all %d clean %d; after: all %d clean %d", a1, c1, a2, c2)
	if c1 != c2 {
		t.Errorf("clean rows depend on when the flags log was read")
	}
	if c2 > a2 {
		t.Errorf("clean scope counts more completions (%d) than the all scope (%d)", c2, a2)
	}
}

func mustAddFlags(t *testing.T, p *Partition, offset int64, v []byte) {
	t.Helper()
	if err := p.AddDeviceFlags(offset, v); err != nil {
		t.Fatal(err)
	}
}

// TestWatermarkEntriesCostLittle (helper-52): an idle watermark record
// (Advance) whose entry is taken at once takes no chunk; one waiting for
// the device stage's marker takes a small one and leaves the partition
// drained (the idle records then come once per bot window, not every
// IdleTimeout), with no event counted as waiting.
func TestWatermarkEntriesCostLittle(t *testing.T) {
	for _, devices := range []int{0, 1} {
		cfg := testConfig()
		cfg.DevicePartitions = devices
		p := newTestPartition(t, cfg)
		p.Add(&event.Event{ID: "s", Type: event.QuestStarted, UserID: "h", QuestID: "q1", EventTime: t0})
		w := t0 + 3*3600_000
		p.Advance(w)
		if devices > 0 {
			mustAddFlags(t, p, 0, DeviceMarkerValue(0, w))
		}
		p.Flush(p.Watermark())
		p.Reset()
		for k := int64(1); k <= 6; k++ {
			p.Advance(w + k*10_000) // its marker comes after the next record
			if devices > 0 {
				mustAddFlags(t, p, k, DeviceMarkerValue(0, w+(k-1)*10_000))
			}
			chunks := 0
			for _, c := range p.queue.chunks {
				chunks += cap(c)
			}
			if !p.Drained() || p.Stats().CleanPending != 0 || chunks > firstChunk || devices == 0 && chunks > 0 {
				t.Fatalf("device partitions %d, idle record %d: drained %v, %d events waiting, %d bytes of chunks", devices, k, p.Drained(), p.Stats().CleanPending, chunks)
			}
		}
	}
}

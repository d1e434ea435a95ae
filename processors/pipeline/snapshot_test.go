package pipeline

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/catalog"
	"github.com/questline/questline/processors/internal/streamgen"
)

// TestCrashRestoreIdentical crashes the partition at random points (rows
// emitted since the last written Flush are lost, state is lost), restores
// the last snapshot, re-reads the records from the snapshot's position, and
// requires the same tables as an uninterrupted run.
func TestCrashRestoreIdentical(t *testing.T) {
	cfg := testConfig()
	// Disorder beyond the watermark's bound (within the allowed lateness),
	// so late updates, re-attributions and retractions cross restores too.
	late := streamgen.Generate(streamgen.Config{Seed: 12, Events: 8000, Disorder: 5 * minute, Gap: 400, Users: 40, Drops: 2})
	for _, events := range [][]event.Event{stream(11), late} {
		crashRestore(t, cfg, events)
	}
}

func crashRestore(t *testing.T, cfg Config, events []event.Event) {
	want := run(t, cfg, events, 1, 50, 0)

	newCat := func() *catalog.Catalog {
		cat := catalog.New()
		for _, e := range testCatalog() {
			cat.Apply(&e)
		}
		return cat
	}
	p, err := New(cfg, newCat())
	if err != nil {
		t.Fatal(err)
	}
	tb := newTables()
	rng := rand.New(rand.NewPCG(5, 5))
	var snap []byte
	snapAt, crashes, restoredBytes := 0, 0, 0
	for i := 0; i < len(events); {
		p.Add(&events[i])
		i++
		if i%50 == 0 {
			tb.keep(p.Flush(p.Watermark()))
			p.Reset()
			if rng.IntN(3) == 0 {
				var buf bytes.Buffer
				if err := p.Snapshot(&buf); err != nil {
					t.Fatal(err)
				}
				snap, snapAt = buf.Bytes(), i
			}
		}
		if crashes < 25 && rng.IntN(len(events)/30) == 0 {
			crashes++
			if snap == nil {
				p, _ = New(cfg, newCat())
				i = 0
				continue
			}
			p, err = Restore(cfg, catalog.New(), bytes.NewReader(snap))
			if err != nil {
				t.Fatal(err)
			}
			restoredBytes = max(restoredBytes, len(snap))
			i = snapAt
		}
	}
	p.Advance(p.Watermark() + 1e9)
	tb.keep(p.Flush(p.Watermark()))
	if crashes < 20 {
		t.Fatalf("only %d crashes", crashes)
	}
	got := merged([]*tables{tb})
	for k, w := range want {
		if !slices.Equal(got[k], w) {
			t.Fatalf("after %d crashes: table %s differs (%d vs %d rows)\n%s", crashes, k, len(got[k]), len(w), firstDiff(got[k], w))
		}
	}
	t.Logf("%d crashes, largest snapshot %d bytes", crashes, restoredBytes)
}

package processors

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
)

// countingMerger records the rows it decoded and how many partials each
// merge saw.
type countingMerger struct {
	decoded []string
	merged  []int
}

func (m *countingMerger) decode(row []byte) (any, error) {
	m.decoded = append(m.decoded, string(row))
	return string(row), nil
}

func (m *countingMerger) merge(parts []any) error {
	m.merged = append(m.merged, len(parts))
	return nil
}

func (m *countingMerger) flush(context.Context) error { return nil }

// TestMergeStateEvictsWhatEverySourceIsDoneWith: the merge state forgets an
// identity only after it was emitted and every source's watermark passed
// its Until, and says which partial keys to tombstone.
func TestMergeStateEvictsWhatEverySourceIsDoneWith(t *testing.T) {
	m := &countingMerger{}
	ms := map[string]merger{tQuest: m}
	st := newMergeState(2)
	row := json.RawMessage(`{}`)
	st.add(partial{Table: tQuest, Identity: "x", Source: 0, Version: 1, Until: 100, Row: row})
	st.add(partial{Table: tQuest, Identity: "x", Source: 1, Version: 2, Until: 100, Row: row})
	st.add(partial{Table: tQuest, Identity: "y", Source: 1, Version: 1, Until: 200, Row: row})
	st.add(partial{Source: 0, Watermark: 500})
	if keys := st.evict(); keys != nil {
		t.Fatalf("evicted %v before every source sent a watermark", keys)
	}
	st.add(partial{Source: 1, Watermark: 150})
	if keys := st.evict(); keys != nil {
		t.Fatalf("evicted %v before the identities were emitted", keys)
	}
	if err := st.emit(ms); err != nil {
		t.Fatal(err)
	}
	keys := st.evict()
	slices.Sort(keys)
	if want := []string{"quest_completion|x|0", "quest_completion|x|1"}; !slices.Equal(keys, want) {
		t.Fatalf("evicted %v, want %v", keys, want)
	}
	if _, ok := st.latest["quest_completion|y"]; !ok || len(st.latest) != 1 {
		t.Fatalf("left %v, want y only (source 1 is at 150 < 200)", st.latest)
	}
	// A source re-sending an evicted identity (a restore from an older
	// snapshot) is merged again and forgotten again after emission.
	st.add(partial{Table: tQuest, Identity: "x", Source: 0, Version: 1, Until: 100, Row: row})
	if err := st.emit(ms); err != nil {
		t.Fatal(err)
	}
	if keys := st.evict(); len(keys) != 1 || keys[0] != "quest_completion|x|0" {
		t.Fatalf("re-sent identity evicted as %v", keys)
	}
	// Watermarks never go back.
	st.add(partial{Source: 1, Watermark: 10})
	st.add(partial{Source: 1, Watermark: 200})
	if keys := st.evict(); len(keys) != 1 || keys[0] != "quest_completion|y|1" || len(st.latest) != 0 {
		t.Fatalf("evicted %v, left %v", keys, st.latest)
	}
	slices.Sort(m.merged[:2]) // x and y are merged in map order
	if !slices.Equal(m.merged, []int{1, 2, 1}) {
		t.Fatalf("merges saw %v partials, want [1 2 1] (y and x, then x again)", m.merged)
	}
}

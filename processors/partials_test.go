package processors

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/questline/questline/processors/histogram"
	"github.com/questline/questline/processors/latency"
	"github.com/questline/questline/processors/yield"
)

// TestPartialEncoding: a partial survives the binary envelope, and a
// partial written as JSON (the envelope before it, still on compacted
// topics) is read the same way.
func TestPartialEncoding(t *testing.T) {
	for _, p := range []partial{
		{Table: tQuest, Identity: "1700000000000|all|q1", Source: 7, Version: 42, Until: 1700000660000, Row: json.RawMessage(`{"Start":1}`)},
		{Table: "unknown_table", Identity: "", Source: 0, Version: 0, Row: json.RawMessage(`{}`)},
		{Source: 3, Watermark: -5},
		{Source: 2147483647, Watermark: 1 << 62},
	} {
		var bin, js partial
		if err := decodePartial(p.appendBinary(nil), &bin); err != nil {
			t.Fatalf("%+v: binary: %v", p, err)
		}
		v, err := json.Marshal(&p)
		if err != nil {
			t.Fatal(err)
		}
		if err := decodePartial(v, &js); err != nil {
			t.Fatalf("%+v: json: %v", p, err)
		}
		for name, got := range map[string]partial{"binary": bin, "json": js} {
			if !reflect.DeepEqual(got, p) {
				t.Errorf("%s: got %+v, want %+v", name, got, p)
			}
		}
	}
	full := (&partial{Table: tYield, Identity: "x", Source: 1, Version: 2, Row: json.RawMessage(`{}`)}).appendBinary(nil)
	for n := 1; n < len(full)-len(`{}`); n++ {
		var p partial
		if err := decodePartial(full[:n], &p); err == nil {
			t.Errorf("a partial cut at %d of %d bytes decoded as %+v", n, len(full), p)
		}
	}
}

// TestMergeStateDecodesOnce: a partial's row is decoded the first time its
// identity is merged, not again when another source's partial of the same
// identity arrives; a newer partial of a source is decoded anew.
func TestMergeStateDecodesOnce(t *testing.T) {
	m := &countingMerger{}
	ms := map[string]merger{tQuest: m}
	st := newMergeState(2)
	st.add(partial{Table: tQuest, Identity: "x", Source: 0, Version: 1, Row: json.RawMessage(`a`)})
	if err := st.emit(ms); err != nil {
		t.Fatal(err)
	}
	st.add(partial{Table: tQuest, Identity: "x", Source: 1, Version: 1, Row: json.RawMessage(`b`)})
	if err := st.emit(ms); err != nil {
		t.Fatal(err)
	}
	st.add(partial{Table: tQuest, Identity: "x", Source: 0, Version: 2, Row: json.RawMessage(`c`)})
	if err := st.emit(ms); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "c"}; !reflect.DeepEqual(m.decoded, want) {
		t.Fatalf("decoded %v, want %v", m.decoded, want)
	}
}

// TestMergeLeavesPartialsIntact: the merge stage keeps decoded partials and
// merges them again whenever their identity changes, so a Merge must not
// change the rows it is given (histograms included).
func TestMergeLeavesPartialsIntact(t *testing.T) {
	hist := func(vs ...int64) histogram.Sparse {
		var h histogram.Sparse
		for _, v := range vs {
			h.Record(v)
		}
		return h
	}
	lat := []latency.Row{
		{Start: 1, QuestID: "q", Scope: "all", Conversions: 2, SumMs: 30, MaxMs: 20, Hist: hist(10, 20), Version: 2},
		{Start: 1, QuestID: "q", Scope: "all", Conversions: 1, SumMs: 15, MaxMs: 15, Hist: hist(15), Version: 1},
	}
	yl := []yield.Row{
		{Start: 1, Placement: "p", BidderID: "b", Scope: "all", Hist: hist(100, 200), Version: 2},
		{Start: 1, Placement: "p", BidderID: "b", Scope: "all", Hist: hist(150, 200), Version: 1},
	}
	check := func(name string, rows any, merge func()) {
		before, _ := json.Marshal(rows)
		merge()
		merge()
		if after, _ := json.Marshal(rows); string(after) != string(before) {
			t.Errorf("%s: Merge changed its input:\n%s\n%s", name, before, after)
		}
	}
	check("latency", lat, func() { latency.Merge(lat) })
	check("yield", yl, func() { yield.Merge(yl) })
}

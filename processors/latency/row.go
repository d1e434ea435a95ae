package latency

import (
	"cmp"
	"slices"

	"github.com/questline/questline/processors/histogram"
)

// Row is one row of conversion_latency: window × quest × scope. Rows of one
// identity from different partitions merge exactly (Merge): counts, sums and
// maxima add up or take the maximum, histograms add bucket by bucket.
type Row struct {
	Start, End  int64 // Unix ms
	QuestID     string
	Scope       string
	Conversions int64
	SumMs       int64
	MaxMs       int64
	Hist        histogram.Sparse // latency_ms, HDR buckets
	Version     uint64
}

func (r *Row) add(s *stats) {
	r.Conversions += s.N
	r.SumMs += s.Sum
	r.MaxMs = max(r.MaxMs, s.Max)
	r.Hist.Merge(&s.Hist)
}

// Quantile returns the latency at quantile q (0 < q ≤ 100) from the HDR
// histogram: the highest value equivalent to the exact one at 3
// significant digits. ok is false without conversions (stored as NULL).
func (r *Row) Quantile(q float64) (ms int64, ok bool) {
	return r.Hist.Quantile(q)
}

// MeanMs returns the exact mean latency, ok false without conversions.
func (r *Row) MeanMs() (mean float64, ok bool) {
	if r.Conversions == 0 {
		return 0, false
	}
	return float64(r.SumMs) / float64(r.Conversions), true
}

type rowKey struct {
	start int64
	quest string
	scope string
}

// Merge merges partial rows of the same identity (window, quest, scope) —
// typically the latest row of each source partition — into new rows sorted by
// window, scope and quest. The partials are not modified.
func Merge(partials []Row) []Row {
	idx := make(map[rowKey]int)
	var out []Row
	for _, r := range partials {
		k := rowKey{r.Start, r.QuestID, r.Scope}
		i, ok := idx[k]
		if !ok {
			idx[k] = len(out)
			r.Hist = r.Hist.Clone()
			out = append(out, r)
			continue
		}
		o := &out[i]
		o.Conversions += r.Conversions
		o.SumMs += r.SumMs
		o.MaxMs = max(o.MaxMs, r.MaxMs)
		o.Hist.Merge(&r.Hist)
		o.Version += r.Version
	}
	slices.SortFunc(out, compareRows)
	return out
}

func compareRows(a, b Row) int {
	return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(a.Scope, b.Scope), cmp.Compare(a.QuestID, b.QuestID))
}

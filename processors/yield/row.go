package yield

import (
	"cmp"
	"slices"

	"github.com/questline/questline/processors/histogram"
	"github.com/questline/questline/processors/window"
)

// Row is one row of offer_yield: window × placement × bidder × scope. Rows
// of one identity from different partitions merge exactly (Merge).
type Row struct {
	Start, End int64 // Unix ms
	Placement  string
	BidderID   string
	Scope      string
	Counts
	// Hist holds the bid latencies (ms), HDR buckets.
	Hist    histogram.Sparse
	Version uint64
}

// FillRate returns impressions / auctions; nil (NULL) without auctions.
func (r *Row) FillRate() *float64 {
	return window.Ratio(float64(r.Impressions), float64(r.Auctions))
}

// ECPM returns revenue per thousand impressions in currency units
// (revenue_micros / 1e6 / impressions × 1000); nil without impressions.
func (r *Row) ECPM() *float64 {
	return window.Ratio(float64(r.RevenueMicros)/1e3, float64(r.Impressions))
}

// RPM returns revenue per thousand auctions in currency units (the yield);
// nil without auctions.
func (r *Row) RPM() *float64 {
	return window.Ratio(float64(r.RevenueMicros)/1e3, float64(r.Auctions))
}

// WinRate returns wins / bids; nil without bids.
func (r *Row) WinRate() *float64 {
	return window.Ratio(float64(r.Wins), float64(r.Bids))
}

// LatencyQuantile returns the bid latency (ms) at quantile q (0 < q ≤ 100)
// at 3 significant digits; ok false without latencies (NULL).
func (r *Row) LatencyQuantile(q float64) (ms int64, ok bool) {
	return r.Hist.Quantile(q)
}

// IntegrityRow is one row of bidstream_integrity: window × placement ×
// kind × scope (” placement for all), with the auctions of the window and
// placement and how many had no violation.
type IntegrityRow struct {
	Start, End    int64
	Placement     string
	Kind          string
	Scope         string
	Violations    int64 // auctions with this kind of violation
	Auctions      int64
	CleanAuctions int64 // auctions without any violation
	Version       uint64
}

// IntegrityRatio returns auctions without violation / auctions; nil (NULL)
// without auctions.
func (r *IntegrityRow) IntegrityRatio() *float64 {
	return window.Ratio(float64(r.CleanAuctions), float64(r.Auctions))
}

func compareRows(a, b Row) int {
	return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(a.Scope, b.Scope),
		cmp.Compare(a.Placement, b.Placement), cmp.Compare(a.BidderID, b.BidderID))
}

func compareIntegrity(a, b IntegrityRow) int {
	return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(a.Scope, b.Scope),
		cmp.Compare(a.Placement, b.Placement), cmp.Compare(a.Kind, b.Kind))
}

// Merge merges partial rows of the same identity — typically the latest of
// each source partition — into new rows, sorted. The partials are not
// modified.
func Merge(partials []Row) []Row {
	type id struct {
		start             int64
		placement, bidder string
		scope             string
	}
	idx := map[id]int{}
	var out []Row
	for _, r := range partials {
		k := id{r.Start, r.Placement, r.BidderID, r.Scope}
		i, ok := idx[k]
		if !ok {
			idx[k] = len(out)
			r.Hist = r.Hist.Clone()
			out = append(out, r)
			continue
		}
		o := &out[i]
		o.Counts.add(&r.Counts, 1)
		o.Hist.Merge(&r.Hist)
		o.Version += r.Version
	}
	slices.SortFunc(out, compareRows)
	return out
}

// MergeIntegrity adds up partial integrity rows of the same identity.
func MergeIntegrity(partials []IntegrityRow) []IntegrityRow {
	type id struct {
		start                  int64
		placement, kind, scope string
	}
	idx := map[id]int{}
	var out []IntegrityRow
	for _, r := range partials {
		k := id{r.Start, r.Placement, r.Kind, r.Scope}
		i, ok := idx[k]
		if !ok {
			idx[k] = len(out)
			out = append(out, r)
			continue
		}
		o := &out[i]
		o.Violations += r.Violations
		o.Auctions += r.Auctions
		o.CleanAuctions += r.CleanAuctions
		o.Version += r.Version
	}
	slices.SortFunc(out, compareIntegrity)
	return out
}

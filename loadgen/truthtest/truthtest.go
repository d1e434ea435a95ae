// Package truthtest holds the comparisons the ground-truth tests share
// (loadgen's pipeline tests, e2e): rows keyed by their identity, compared
// as maps, and HDR answers compared within the histograms' precision.
package truthtest

import (
	"math"
	"testing"
)

// CompareMaps fails t unless got and want hold the same keys with equal
// values, listing the first five differences (row identity, got, want).
// An empty want is a failure: there would be nothing to compare.
func CompareMaps[V comparable](t testing.TB, got, want map[string]V) {
	t.Helper()
	if len(want) == 0 {
		t.Fatal("nothing to compare")
	}
	bad := 0
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			if bad++; bad <= 5 {
				if ok {
					t.Errorf("%s: got %v, want %v", k, g, v)
				} else {
					t.Errorf("%s: no row, want %v", k, v)
				}
			}
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			if bad++; bad <= 5 {
				t.Errorf("%s: got %v, want no row", k, v)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d keys differ", bad, len(want))
	}
}

// Within reports whether an HDR answer h is the exact value v within 3
// significant digits.
func Within(h, v int64) bool { return math.Abs(float64(h-v)) <= math.Max(1, float64(v)/1000) }

// DropZero returns m without the rows whose value is zero: a window
// emptied by a retraction is written as a zero row.
func DropZero[V comparable](m map[string]V, zero V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		if v != zero {
			out[k] = v
		}
	}
	return out
}

// Package histogram is the sparse form of an HDR histogram with the
// geometry of hdrhistogram-go at 3 significant digits (lowest discernible
// value 1): the same buckets, stored as the list of non-empty ones. Rows
// carry it instead of a dense hdrhistogram-go Histogram (about 100 KB each),
// and it merges exactly: the buckets of equal values add up. Quantiles are
// hdrhistogram-go's (ValueAtQuantile), which the tests check bucket for
// bucket against the library.
package histogram

import (
	"math/bits"
	"slices"
)

// SigFigs is the precision in significant decimal digits.
const SigFigs = 3

// subBucketBits: 3 significant digits need 2·10³ ≤ 2^11 sub-buckets.
const subBucketBits = 11

// Bucket is one non-empty bucket: the lowest value equivalent to its
// values, and how many were recorded.
type Bucket struct {
	Value, Count int64
}

// Sparse is an HDR histogram as its non-empty buckets, ascending. The zero
// value is empty and ready.
type Sparse struct {
	Buckets []Bucket
}

// Lowest returns the lowest value equivalent to v (its bucket's Value).
// Negative values count as 0.
func Lowest(v int64) int64 {
	if v <= 0 {
		return 0
	}
	shift := bits.Len64(uint64(v)) - subBucketBits
	if shift <= 0 {
		return v
	}
	return v >> shift << shift
}

// highest returns the highest value equivalent to the bucket value b.
func highest(b int64) int64 {
	shift := bits.Len64(uint64(b)) - subBucketBits
	if shift <= 0 {
		return b
	}
	return b + 1<<shift - 1
}

// Record adds one value.
func (s *Sparse) Record(v int64) { s.RecordN(v, 1) }

// RecordN adds n equal values.
func (s *Sparse) RecordN(v, n int64) {
	b := Lowest(v)
	i, found := slices.BinarySearchFunc(s.Buckets, b, func(x Bucket, t int64) int {
		switch {
		case x.Value < t:
			return -1
		case x.Value > t:
			return 1
		}
		return 0
	})
	if found {
		s.Buckets[i].Count += n
		return
	}
	s.Buckets = slices.Insert(s.Buckets, i, Bucket{b, n})
}

// Merge adds o's buckets to s.
func (s *Sparse) Merge(o *Sparse) {
	if len(o.Buckets) == 0 {
		return
	}
	out := make([]Bucket, 0, len(s.Buckets)+len(o.Buckets))
	i, j := 0, 0
	for i < len(s.Buckets) || j < len(o.Buckets) {
		switch {
		case j == len(o.Buckets) || i < len(s.Buckets) && s.Buckets[i].Value < o.Buckets[j].Value:
			out = append(out, s.Buckets[i])
			i++
		case i == len(s.Buckets) || o.Buckets[j].Value < s.Buckets[i].Value:
			out = append(out, o.Buckets[j])
			j++
		default:
			out = append(out, Bucket{s.Buckets[i].Value, s.Buckets[i].Count + o.Buckets[j].Count})
			i++
			j++
		}
	}
	s.Buckets = out
}

// AddFrom adds o's buckets to s, like Merge, but in s's own array (grown
// when o has buckets s lacks): use it only when no other Sparse shares s's
// buckets (Merge never writes to them).
func (s *Sparse) AddFrom(o *Sparse) {
	n, m := len(s.Buckets), len(o.Buckets)
	if m == 0 {
		return
	}
	// The size of the union.
	u := n + m
	for i, j := 0, 0; i < n && j < m; {
		switch a, b := s.Buckets[i].Value, o.Buckets[j].Value; {
		case a < b:
			i++
		case a > b:
			j++
		default:
			u--
			i++
			j++
		}
	}
	if u == n { // every value of o is in s
		for i, j := 0, 0; j < m; i++ {
			if s.Buckets[i].Value == o.Buckets[j].Value {
				s.Buckets[i].Count += o.Buckets[j].Count
				j++
			}
		}
		return
	}
	s.Buckets = slices.Grow(s.Buckets, u-n)[:u]
	// From the back, so that no bucket of s is overwritten before it is read.
	i, j := n-1, m-1
	for k := u - 1; j >= 0; k-- {
		switch {
		case i >= 0 && s.Buckets[i].Value > o.Buckets[j].Value:
			s.Buckets[k] = s.Buckets[i]
			i--
		case i >= 0 && s.Buckets[i].Value == o.Buckets[j].Value:
			s.Buckets[k] = Bucket{s.Buckets[i].Value, s.Buckets[i].Count + o.Buckets[j].Count}
			i--
			j--
		default:
			s.Buckets[k] = o.Buckets[j]
			j--
		}
	}
}

// Total returns the number of values recorded.
func (s *Sparse) Total() int64 {
	var n int64
	for _, b := range s.Buckets {
		n += b.Count
	}
	return n
}

// Quantile returns the value at quantile q (0 < q ≤ 100) as
// hdrhistogram-go's ValueAtQuantile does: the highest value equivalent to
// the bucket holding the q-th percentile. ok is false when empty.
func (s *Sparse) Quantile(q float64) (v int64, ok bool) {
	total := s.Total()
	if total == 0 {
		return 0, false
	}
	q = min(q, 100)
	want := int64(q/100*float64(total) + 0.5)
	want = max(want, 1)
	var seen int64
	for _, b := range s.Buckets {
		seen += b.Count
		if seen >= want {
			return highest(b.Value), true
		}
	}
	return highest(s.Buckets[len(s.Buckets)-1].Value), true
}

// Equal reports whether s and o hold the same buckets.
func (s *Sparse) Equal(o *Sparse) bool { return slices.Equal(s.Buckets, o.Buckets) }

// Clone returns a copy of s.
func (s *Sparse) Clone() Sparse { return Sparse{Buckets: slices.Clone(s.Buckets)} }

package window

import "math"

// Scopes of every window table (SPEC §5): ScopeAll counts every user;
// ScopeClean leaves out users the bot processor flagged in an overlapping
// window.
const (
	ScopeAll   = "all"
	ScopeClean = "clean"
)

// Range is an inclusive range of window starts (Unix ms). A contribution
// made with a Range reaches only the windows whose start is in it.
type Range struct{ Lo, Hi int64 }

// Every is the Range of all windows.
var Every = Range{Lo: math.MinInt64, Hi: math.MaxInt64}

// Ratio returns num/den, or nil when den is zero: window tables store a
// ratio with an empty denominator as NULL (Nullable(Float64)), never NaN or
// Inf.
func Ratio(num, den float64) *float64 {
	if den == 0 {
		return nil
	}
	r := num / den
	return &r
}

// Filter returns the windows of spec holding t that a contribution of user
// at event time t may reach. The clean scope passes one that leaves out the
// windows overlapping the user's bot flags; nil (the all scope) means Every.
type Filter func(user string, t int64, spec Spec) Range

package lift

import "math"

// Counts are the four cells of a drop's lift; they add up across partitions
// because every user is in one partition.
type Counts struct {
	ExposedUsers, ExposedConverters, ControlUsers, ControlConverters int64
}

func (c *Counts) add(o Counts) {
	c.ExposedUsers += o.ExposedUsers
	c.ExposedConverters += o.ExposedConverters
	c.ControlUsers += o.ControlUsers
	c.ControlConverters += o.ControlConverters
}

// Stats are the derived columns of a row. A nil field is stored as NULL:
//
//   - Lift = rE/rC − 1 is nil without exposed or control users or without
//     control converters (rC = 0); with no exposed converter it is −1.
//   - The 95 % interval and ChanceToWin need a converter in both groups
//     (the log relative risk is undefined otherwise) and are nil without.
//   - When every user of both groups converted (se = 0) the interval is the
//     point [Lift, Lift] and ChanceToWin is 1, 0 or 0.5 by the sign of
//     ln(rE/rC).
type Stats struct {
	Lift, CILow, CIHigh, ChanceToWin *float64
}

// Compute returns the SPEC §5 statistics of c.
func (c Counts) Compute() Stats {
	var s Stats
	if c.ExposedUsers == 0 || c.ControlUsers == 0 || c.ControlConverters == 0 {
		return s
	}
	eC, eU := float64(c.ExposedConverters), float64(c.ExposedUsers)
	cC, cU := float64(c.ControlConverters), float64(c.ControlUsers)
	rE, rC := eC/eU, cC/cU
	s.Lift = ptr(rE/rC - 1)
	if c.ExposedConverters == 0 {
		return s
	}
	lnRR := math.Log(rE / rC)
	se := math.Sqrt(max(1/eC-1/eU+1/cC-1/cU, 0))
	s.CILow = ptr(math.Exp(lnRR-1.96*se) - 1)
	s.CIHigh = ptr(math.Exp(lnRR+1.96*se) - 1)
	switch {
	case se > 0:
		s.ChanceToWin = ptr(phi(lnRR / se))
	case lnRR > 0:
		s.ChanceToWin = ptr(1)
	case lnRR < 0:
		s.ChanceToWin = ptr(0)
	default:
		s.ChanceToWin = ptr(0.5)
	}
	return s
}

// phi is the standard normal cumulative distribution function.
func phi(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

func ptr(v float64) *float64 { return &v }

package bots

import (
	"math"
	"slices"
	"strings"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/window"
)

// geoMark is a geo-mismatched event: its time, the first window it
// reaches (Lo: the device stage's events reach only the windows open at
// their source; math.MinInt64 for every window) and declared country (its
// number in the processor's countries). The processor links an entity's
// marks into a list by next, in the record's padding: 24 bytes a mark
// (a map of slices before session 9: a 24-byte slice header in each map
// entry and the slice's allocation grown by doubling).
type geoMark struct {
	T       int64
	Lo      int64
	Country uint32
	next    uint32 // the entity's next mark (processors/internal/pool)
}

// geoChunk is log2 of the marks in a chunk of geoMarks (16 KiB).
const geoChunk = 10

func geoMismatch(e *event.Event) bool {
	return e.Country != "" && e.EdgeCountry != "" && e.Country != e.EdgeCountry
}

// hopMs returns GeoHop in ms.
func hopMs(cfg Config) int64 { return cfg.GeoHop.Milliseconds() }

// addGeo records a geo-mismatched event of entity id at t, reaching the
// windows starting at lo or later, and marks the panes of its later
// partners (mismatched events up to GeoHop after it declaring another
// country) changed where a window it reaches holds them: those windows may
// gain country_hopping.
func (p *Processor) addGeo(id string, t, lo int64, country string, wm int64) {
	p.geoMin = min(p.geoMin, t)
	head := p.geo[id]
	if head == 0 {
		// A copy keys the marks, which outlive the entity (a view of its
		// name would keep the names' chunk).
		id = strings.Clone(id)
	}
	// Before the first mark at or after t.
	c := p.countries.ID(country)
	n := p.geoMarks.Alloc()
	link := &head
	for *link != 0 && p.geoMarks.At(*link).T < t {
		link = &p.geoMarks.At(*link).next
	}
	*p.geoMarks.At(n) = geoMark{T: t, Lo: lo, Country: c, next: *link}
	*link = n
	p.geo[id] = head
	p.touched = p.touched[:0]
	for i := n; i != 0; i = p.geoMarks.At(i).next {
		m := p.geoMarks.At(i)
		if m.T > t+p.hopMs {
			break
		}
		// The newest window holding the partner's pane starts with it.
		pane := window.Floor(m.T, p.cfg.Window.Slide.Milliseconds())
		if m.Country != c && pane >= lo && !slices.Contains(p.touched, pane) {
			p.touched = append(p.touched, pane)
			p.eng.Pane(m.T, wm)
		}
	}
}

// geoList returns the geo marks of entity id as a slice, in geoBuf (reused
// by the next call).
func (p *Processor) geoList(id string) []geoMark {
	p.geoBuf = p.geoBuf[:0]
	for i := p.geo[id]; i != 0; i = p.geoMarks.At(i).next {
		p.geoBuf = append(p.geoBuf, *p.geoMarks.At(i))
	}
	return p.geoBuf
}

// hopping reports whether a mismatched event of marks in [start, end) has
// an earlier one (at most hop ms before it, or at the same time) declaring
// another country; of the marks that reach the window (Lo ≤ start), so
// that in the device stage a partner counts for the windows open at its
// source only, whenever it arrives (before session 14 it counted for any
// window still open at the stage, which the sources' interleaving
// decided: helper-39).
func hopping(marks []geoMark, start, end, hop int64) bool {
	lo, _ := slices.BinarySearchFunc(marks, start-hop, func(m geoMark, t int64) int { return cmpInt(m.T, t) })
	for i := lo; i < len(marks) && marks[i].T < end; i++ {
		y := marks[i]
		if y.T < start || y.Lo > start {
			continue
		}
		for j := lo; j < len(marks) && marks[j].T <= y.T; j++ {
			if x := marks[j]; x.T >= y.T-hop && x.Lo <= start && x.Country != y.Country {
				return true
			}
		}
	}
	return false
}

// pruneGeo forgets the geo marks before horizon.
func (p *Processor) pruneGeo(horizon int64) {
	p.geoMin = math.MaxInt64
	for id, head := range p.geo {
		i := head
		for i != 0 && p.geoMarks.At(i).T < horizon {
			next := p.geoMarks.At(i).next
			p.geoMarks.Release(i)
			i = next
		}
		switch {
		case i == 0:
			delete(p.geo, id)
		case i != head:
			p.geo[id] = i
		}
		if i != 0 {
			p.geoMin = min(p.geoMin, p.geoMarks.At(i).T)
		}
	}
}

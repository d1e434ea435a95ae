// Package intern numbers strings that are few in a processor (placements,
// bidders, quests, drops, creators, currencies, countries: configuration
// and catalog, not users), so that per-user and per-auction records hold a
// 4-byte number instead of a string, and no record pins the Kafka record
// its strings were decoded from.
package intern

import "strings"

// Table numbers strings from 0, which is "". Numbers are never forgotten.
// Not safe for concurrent use.
type Table struct {
	ids  map[string]uint32
	strs []string
}

// New returns a table holding "" as 0.
func New() *Table { return &Table{ids: map[string]uint32{"": 0}, strs: []string{""}} }

// ID returns the number of s, numbering a copy of it the first time
// (decoded strings share their record's allocation).
func (t *Table) ID(s string) uint32 {
	if i, ok := t.ids[s]; ok {
		return i
	}
	c := strings.Clone(s)
	i := uint32(len(t.strs))
	t.strs = append(t.strs, c)
	t.ids[c] = i
	return i
}

// Name returns the string numbered i.
func (t *Table) Name(i uint32) string { return t.strs[i] }

// Names returns the strings numbered so far, by number: a view that later
// calls to ID do not change (they append past its end), to read on any
// goroutine.
func (t *Table) Names() []string { return t.strs[:len(t.strs):len(t.strs)] }

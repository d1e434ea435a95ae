package bots

import (
	"math"
	"strings"
)

// entities interns the entity ids (user or device ids) of a Processor to
// dense integers, so that the panes hold small pointer-free records instead
// of string-keyed maps. An id is forgotten (and its number reused) once no
// live pane holds it.
type entities struct {
	byName map[string]uint32
	names  []string // "" for a free number
	last   []int64  // the newest pane start holding the entity
	// The entity's events in the pane (aggregate) numbered serial[i], its
	// newest: counted to find the panes where it is heavy.
	serial []uint32
	count  []uint32
	free   []uint32
}

func newEntities() entities { return entities{byName: map[string]uint32{}} }

// id returns the number of name, interning a copy of it (decoded strings
// share their record's allocation).
func (t *entities) id(name string) uint32 {
	if i, ok := t.byName[name]; ok {
		return i
	}
	name = strings.Clone(name)
	var i uint32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
		t.names[i], t.last[i], t.serial[i], t.count[i] = name, math.MinInt64, 0, 0
	} else {
		i = uint32(len(t.names))
		t.names = append(t.names, name)
		t.last = append(t.last, math.MinInt64)
		t.serial = append(t.serial, 0)
		t.count = append(t.count, 0)
	}
	t.byName[name] = i
	return i
}

// hold records that the pane starting at start holds entity i.
func (t *entities) hold(i uint32, start int64) {
	if start > t.last[i] {
		t.last[i] = start
	}
}

// sweep forgets the entities whose newest pane starts at or before cut
// (every pane of theirs is evicted).
func (t *entities) sweep(cut int64) {
	for i, name := range t.names {
		if name != "" && t.last[i] <= cut {
			delete(t.byName, name)
			t.names[i] = ""
			t.free = append(t.free, uint32(i))
		}
	}
}

// len returns the number of entities held.
func (t *entities) len() int { return len(t.byName) }

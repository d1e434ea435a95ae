package latency

// A user's lists are linked nodes in the table's pools
// (processors/internal/pool): chunks of 1,024 completions (16 KiB) and 256
// released conversions (20 KiB), allocation size classes both.
const (
	compBits = 10
	relBits  = 8
)

// comp returns completion node i.
func (t *users) comp(i uint32) *userComp { return t.comps.At(i) }

// rel returns released conversion node i.
func (t *users) rel(i uint32) *released { return t.rels.At(i) }

// insertComp adds c to u's completions, ascending by (T, quest id): after
// the last one that after does not put after c.
func (t *users) insertComp(u *user, c userComp, after func(a, b userComp) bool) {
	n := t.comps.Alloc()
	prev := uint32(0)
	for i := u.comps; i != 0 && !after(*t.comp(i), c); i = t.comp(i).next {
		prev = i
	}
	if prev == 0 {
		c.next = u.comps
		u.comps = n
	} else {
		c.next = t.comp(prev).next
		t.comp(prev).next = n
	}
	*t.comp(n) = c
}

// appendRel adds rc at the end of u's released conversions.
func (t *users) appendRel(u *user, rc released) {
	n := t.rels.Alloc()
	rc.next = 0
	*t.rel(n) = rc
	if u.rels == 0 {
		u.rels = n
		return
	}
	i := u.rels
	for t.rel(i).next != 0 {
		i = t.rel(i).next
	}
	t.rel(i).next = n
}

// dropComps forgets u's completions before horizon (its first ones).
func (t *users) dropComps(u *user, horizon int64) {
	for u.comps != 0 && t.comp(u.comps).T < horizon {
		i := u.comps
		u.comps = t.comp(i).next
		t.comps.Release(i)
	}
}

// dropRels forgets u's released conversions that drop reports (it may
// read but not keep the node), keeping the order of the rest.
func (t *users) dropRels(u *user, drop func(*released) bool) {
	link := &u.rels
	for *link != 0 {
		i := *link
		if rc := t.rel(i); drop(rc) {
			*link = rc.next
			t.rels.Release(i)
		} else {
			link = &rc.next
		}
	}
}

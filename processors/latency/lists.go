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

// MaxUserList bounds each of a user's lists, its completions and its
// released conversions: past it the oldest entry is forgotten
// (Processor.Forgotten counts them). A person completes a few quests and converts a few
// times in the ~50 minutes a completion is kept (the 11 a released
// conversion is); a client sending thousands for one user (a bot, or an
// attack with a client key) made every append walk them all, quadratic:
// 200,000 conversions of one user took 141 s (helper-37, session 14). Each
// append or insertion now walks at most MaxUserList+1 nodes. What it
// changes, for such a user only: a conversion is not attributed to a
// forgotten completion (the oldest), and a late completion does not
// re-attribute a forgotten released conversion.
const MaxUserList = 1024

// insertComp adds c to u's completions, ascending by (T, quest id): after
// the last one that after does not put after c. It forgets the first
// (oldest) when the list grows past MaxUserList, and reports whether it
// did.
func (t *users) insertComp(u *user, c userComp, after func(a, b userComp) bool) (forgot bool) {
	n := t.comps.Alloc()
	prev, length := uint32(0), 1
	for i := u.comps; i != 0 && !after(*t.comp(i), c); i = t.comp(i).next {
		prev = i
		length++
	}
	if prev == 0 {
		c.next = u.comps
		u.comps = n
	} else {
		c.next = t.comp(prev).next
		t.comp(prev).next = n
	}
	*t.comp(n) = c
	for i := c.next; i != 0 && length <= MaxUserList; i = t.comp(i).next {
		length++
	}
	if length > MaxUserList {
		i := u.comps
		u.comps = t.comp(i).next
		t.comps.Release(i)
		return true
	}
	return false
}

// appendRel adds rc at the end of u's released conversions. When the list
// grows past MaxUserList it takes the first (oldest) out and returns it
// (the caller frees what it holds).
func (t *users) appendRel(u *user, rc released) (forgotten released, forgot bool) {
	n := t.rels.Alloc()
	rc.next = 0
	*t.rel(n) = rc
	if u.rels == 0 {
		u.rels = n
		return released{}, false
	}
	i, length := u.rels, 2
	for t.rel(i).next != 0 {
		i = t.rel(i).next
		length++
	}
	t.rel(i).next = n
	if length > MaxUserList {
		first := u.rels
		forgotten = *t.rel(first)
		u.rels = forgotten.next
		t.rels.Release(first)
		return forgotten, true
	}
	return released{}, false
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

package latency

// pool holds the nodes of the users' lists (completions, released
// conversions) by number, in chunks of 1<<bits that never move (a node's
// pointer stays valid while it is held), freed numbers reused. Number 0
// is no node: a list's end. A node links to the next of its list by
// number, in its own padding (userComp) or in the record's last 4 bytes
// (released), so a list costs its nodes alone, not a slice's 24-byte
// header in the user's record and an allocation rounded up to a size
// class and grown by doubling.
type pool[T any] struct {
	chunks [][]T
	free   []uint32
	nums   uint32 // numbers handed out: 1 + the last
	bits   uint8
}

// at returns node number i (not 0).
func (p *pool[T]) at(i uint32) *T {
	i--
	return &p.chunks[i>>p.bits][i&(1<<p.bits-1)]
}

// alloc returns the number of a zero node.
func (p *pool[T]) alloc() uint32 {
	if n := len(p.free); n > 0 {
		i := p.free[n-1]
		p.free = p.free[:n-1]
		return i
	}
	if int(p.nums>>p.bits) == len(p.chunks) {
		p.chunks = append(p.chunks, make([]T, 1<<p.bits))
	}
	p.nums++
	return p.nums
}

// release frees node number i.
func (p *pool[T]) release(i uint32) {
	var zero T
	*p.at(i) = zero
	p.free = append(p.free, i)
}

// The chunk sizes: 1,024 completions (16 KiB) and 256 released
// conversions (20 KiB), allocation size classes both.
const (
	compBits = 10
	relBits  = 8
)

// comp returns completion node i.
func (t *users) comp(i uint32) *userComp { return t.comps.at(i) }

// rel returns released conversion node i.
func (t *users) rel(i uint32) *released { return t.rels.at(i) }

// insertComp adds c to u's completions, ascending by (T, quest id): after
// the last one that after does not put after c.
func (t *users) insertComp(u *user, c userComp, after func(a, b userComp) bool) {
	n := t.comps.alloc()
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
	n := t.rels.alloc()
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
		t.comps.release(i)
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
			t.rels.release(i)
		} else {
			link = &rc.next
		}
	}
}

// Package pool holds a processor's records by number, in chunks that
// never move (a record's pointer stays valid while it is held), freed
// numbers reused: latency's users and bots' entities (numbers their
// indexes and panes hold), and the nodes of many short lists (a user's
// completions or released conversions, an entity's geo marks). A node links to the next of its list
// by number, in bytes its record would have as padding or in its last 4,
// so a list costs its nodes alone: not a slice's 24-byte header where the
// list is held and an allocation of its own rounded up to a size class
// and grown by doubling.
package pool

import "slices"

// Pool is the pool of nodes of type T. Number 0 is no node: a list's end.
// Not safe for concurrent use.
type Pool[T any] struct {
	chunks [][]T
	free   []uint32
	nums   uint32 // numbers handed out, and so the highest
	bits   uint8  // log2 of a chunk's length
}

// New returns an empty pool of chunks of 1<<bits nodes.
func New[T any](bits uint8) Pool[T] { return Pool[T]{bits: bits} }

// At returns node number i (not 0).
func (p *Pool[T]) At(i uint32) *T {
	i--
	return &p.chunks[i>>p.bits][i&(1<<p.bits-1)]
}

// Alloc returns the number of a zero node.
func (p *Pool[T]) Alloc() uint32 {
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

// Release frees node number i.
func (p *Pool[T]) Release(i uint32) {
	var zero T
	*p.At(i) = zero
	p.free = append(p.free, i)
}

// Nums returns how many numbers were handed out: the highest, since they
// start at 1.
func (p *Pool[T]) Nums() uint32 { return p.nums }

// Copy returns a copy of p sharing no memory with it (T's own pointers,
// if any, are copied as they are).
func (p *Pool[T]) Copy() Pool[T] {
	c := Pool[T]{chunks: make([][]T, len(p.chunks)), free: slices.Clone(p.free), nums: p.nums, bits: p.bits}
	for i, ch := range p.chunks {
		c.chunks[i] = slices.Clone(ch)
	}
	return c
}

// Package arena keeps many short strings (a processor's user or device
// ids, one per record) in shared chunks of bytes (of 64 KiB, but the first
// few, from 512 bytes doubling), so that a record
// holds an 8-byte Ref instead of a string: the record is pointer-free (a
// chunk of records is not scanned by the garbage collector) and a name
// costs its bytes, not a 16-byte header and an allocation of its own
// (rounded up to the allocator's size class: 8, 16, 24, 32, 48 bytes).
//
// Bytes once written are never written again: a name is appended after
// the last one of its chunk, and Compact copies the live names into new
// chunks. So View's strings stay valid, and unchanged, for as long as
// anything holds them (they keep their chunk alive: clone one that is kept
// for long, as a map key, or a chunk is kept for it).
package arena

import (
	"math"
	"unsafe"
)

// chunkBits is the width of a name's position in its chunk in Ref.off; a
// chunk is 1<<chunkBits bytes (a name longer than that has a chunk of its
// own, at position 0).
const chunkBits = 16

// chunkSize is the size of a full chunk; the first are smaller, from
// firstChunk doubling, so that a processor of few users (a small
// partition, the clean scope's) does not take 64 KiB for them.
const (
	chunkSize  = 1 << chunkBits
	firstChunk = 512
)

// Ref is a name in the arena: its chunk and position (chunk<<chunkBits |
// position) and its length. The zero Ref is "".
type Ref struct{ off, n uint32 }

// Len returns the length of the name.
func (r Ref) Len() int { return int(r.n) }

// Names is the arena. The zero value is empty and ready. Not safe for
// concurrent use, but for View's strings, which any goroutine may read.
type Names struct {
	chunks     [][]byte
	live, dead int // bytes of names added and not freed, and freed
}

// Add copies s into the arena and returns its Ref.
func (a *Names) Add(s string) Ref {
	if len(s) == 0 {
		return Ref{}
	}
	if len(s) > math.MaxUint32 {
		panic("arena: a name of 4 GiB or more")
	}
	n := len(a.chunks)
	if n == 0 || cap(a.chunks[n-1])-len(a.chunks[n-1]) < len(s) {
		if n == 1<<(32-chunkBits) {
			panic("arena: more than 4 GiB of chunks")
		}
		size := firstChunk
		if n > 0 {
			size = min(2*cap(a.chunks[n-1]), chunkSize)
		}
		a.chunks = append(a.chunks, make([]byte, 0, max(size, len(s))))
		n++
	}
	c := &a.chunks[n-1]
	pos := len(*c)
	*c = append(*c, s...)
	a.live += len(s)
	return Ref{off: uint32(n-1)<<chunkBits | uint32(pos), n: uint32(len(s))}
}

// bytes returns the bytes of r.
func (a *Names) bytes(r Ref) []byte {
	c, pos := r.off>>chunkBits, r.off&(chunkSize-1)
	return a.chunks[c][pos : pos+r.n : pos+r.n]
}

// View returns r's name as a string sharing the arena's bytes (no copy).
func (a *Names) View(r Ref) string {
	if r.n == 0 {
		return ""
	}
	b := a.bytes(r)
	return unsafe.String(&b[0], len(b))
}

// Equal reports whether r's name is s.
func (a *Names) Equal(r Ref, s string) bool {
	return int(r.n) == len(s) && (r.n == 0 || string(a.bytes(r)) == s)
}

// Free counts r's bytes as dead: Compact drops them.
func (a *Names) Free(r Ref) {
	a.live -= int(r.n)
	a.dead += int(r.n)
}

// Frozen returns an arena that reads every name added so far as a does,
// sharing its bytes, which later calls on a never change: Add appends past
// the view's end, Free only counts, and Compact moves the names into new
// chunks. Read it on any goroutine; add nothing to it.
func (a *Names) Frozen() Names {
	v := Names{chunks: make([][]byte, len(a.chunks)), live: a.live, dead: a.dead}
	for i, c := range a.chunks {
		v.chunks[i] = c[:len(c):len(c)]
	}
	return v
}

// Bytes returns the bytes held in chunks (live, dead and unused).
func (a *Names) Bytes() int {
	n := 0
	for _, c := range a.chunks {
		n += cap(c)
	}
	return n
}

// Compact copies the live names into new chunks once the dead bytes are
// more than the live ones and a chunk's worth: each calls move on the Ref
// of every live name (each once) and stores the Ref it returns in its
// place. The old chunks are garbage once no View of them is held.
func (a *Names) Compact(each func(move func(Ref) Ref)) {
	if a.dead <= a.live || a.dead < chunkSize {
		return
	}
	old := a.chunks
	*a = Names{}
	each(func(r Ref) Ref {
		if r.n == 0 {
			return r
		}
		c, pos := r.off>>chunkBits, r.off&(chunkSize-1)
		return a.Add(unsafe.String(&old[c][pos], int(r.n)))
	})
}

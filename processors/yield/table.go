package yield

import (
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/questline/questline/processors/internal/arena"
	"github.com/questline/questline/processors/internal/hashindex"
)

// chunkAuctions is the number of auctions in a chunk of an auction table:
// 1,024 records of 80 bytes are 10 pages of 8 KiB, which a large
// allocation takes without rounding.
const chunkAuctions = 1024

// auctionTable holds a processor's auctions by value in fixed chunks that
// never move (a *auction stays valid until the auction is removed), with
// freed slots reused, and finds them by id through an index of 8-byte
// slots confirmed against the auction's id. Against a map of one heap
// object per auction plus one for its bids, it saves each allocation's
// rounding, the map's entries and their growth, and gives the garbage
// collector a few large objects to mark instead of three small ones per
// auction. Chunks are kept once made (a peak of auctions keeps its
// memory, as a map's buckets did); the index shrinks. The ids are in a
// byte arena (since session 9; a string each before: a 16-byte header in
// the record and an allocation of 8 bytes or more), so the records hold no
// pointer.
type auctionTable struct {
	index  hashindex.Index // slot numbers by hashID(id)
	ids    arena.Names     // the auctions' ids
	chunks []*[chunkAuctions]auction
	free   []int32  // freed slots
	users  []string // by slot: the auction's user, kept only where a filter needs it
	more   overflow // of the auctions with more bids or billed amounts than fit inline
}

// hashID is the hash of an auction id in the index.
func hashID(id string) uint64 { return xxhash.Sum64String(id) }

// at returns the auction in slot s.
func (t *auctionTable) at(s int32) *auction {
	return &t.chunks[s/chunkAuctions][s%chunkAuctions]
}

// find returns the auction of id (nil: none), its slot and the hash of id.
func (t *auctionTable) find(id string) (*auction, int32, uint64) {
	h := hashID(id)
	if s, ok := t.index.Find(h, func(s uint32) bool { return t.ids.Equal(t.at(int32(s)).id, id) }); ok {
		return t.at(int32(s)), int32(s), h
	}
	return nil, -1, h
}

// add returns a new, zero auction for id (absent), of hash h, and its
// slot, keeping copies of id and, when keepUser, of user.
func (t *auctionTable) add(id string, h uint64, user string, keepUser bool) (*auction, int32) {
	var s int32
	if n := len(t.free); n > 0 {
		s, t.free = t.free[n-1], t.free[:n-1]
	} else {
		s = int32(len(t.chunks) * chunkAuctions)
		t.chunks = append(t.chunks, new([chunkAuctions]auction))
		for i := s + chunkAuctions - 1; i > s; i-- {
			t.free = append(t.free, i)
		}
	}
	t.index.Insert(h, uint32(s))
	if keepUser {
		for int(s) >= len(t.users) {
			t.users = append(t.users, "")
		}
		t.users[s] = strings.Clone(user)
	}
	a := t.at(s)
	a.id = t.ids.Add(id)
	a.set(bLive, true)
	return a, s
}

// user returns the user kept for the auction in slot s ("" unless
// keepUser).
func (t *auctionTable) user(s int32) string {
	if int(s) < len(t.users) {
		return t.users[s]
	}
	return ""
}

// id returns the id of a, a view of the arena's bytes: clone it to keep it
// (a view keeps its whole chunk).
func (t *auctionTable) id(a *auction) string { return t.ids.View(a.id) }

// remove frees a, in slot s (compact, after removals, shrinks the index
// and the ids).
func (t *auctionTable) remove(a *auction, s int32) {
	t.index.Remove(hashID(t.id(a)), uint32(s))
	t.ids.Free(a.id)
	t.more.drop(a)
	*a = auction{}
	if int(s) < len(t.users) {
		t.users[s] = ""
	}
	t.free = append(t.free, s)
}

// each calls fn for every auction and its slot, in slot order; fn may
// remove it.
func (t *auctionTable) each(fn func(a *auction, s int32)) {
	for ci, c := range t.chunks {
		for i := range c {
			if c[i].has(bLive) {
				fn(&c[i], int32(ci*chunkAuctions+i))
			}
		}
	}
}

// compact shrinks the index and the ids' arena after removals.
func (t *auctionTable) compact() {
	t.index.Shrink()
	t.ids.Compact(func(move func(arena.Ref) arena.Ref) {
		t.each(func(a *auction, _ int32) { a.id = move(a.id) })
	})
}

// len returns the number of auctions.
func (t *auctionTable) len() int { return t.index.Len() }

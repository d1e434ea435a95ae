package yield

import "strings"

// chunkAuctions is the number of auctions in a chunk of an auction table.
const chunkAuctions = 512

// auctionTable holds a processor's auctions by value in fixed chunks that
// never move (a *auction stays valid until the auction is freed), with
// freed slots reused. Against one heap object per auction plus one for its
// bids, it saves each allocation's rounding and header and gives the
// garbage collector a few large objects to mark instead of two small ones
// per auction.
type auctionTable struct {
	ids    map[string]int32 // auction id (a copy) → slot
	chunks []*[chunkAuctions]auction
	free   []int32  // freed slots
	users  []string // by slot: the auction's user, kept only where a filter needs it
}

func newAuctionTable() auctionTable { return auctionTable{ids: map[string]int32{}} }

// at returns the auction in slot s.
func (t *auctionTable) at(s int32) *auction {
	return &t.chunks[s/chunkAuctions][s%chunkAuctions]
}

// find returns the auction of id, or nil.
func (t *auctionTable) find(id string) *auction {
	if s, ok := t.ids[id]; ok {
		return t.at(s)
	}
	return nil
}

// add returns a new, zero auction for id (absent), keeping copies of id
// and, when keepUser, of user.
func (t *auctionTable) add(id, user string, keepUser bool) *auction {
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
	t.ids[strings.Clone(id)] = s
	if keepUser {
		for int(s) >= len(t.users) {
			t.users = append(t.users, "")
		}
		t.users[s] = strings.Clone(user)
	}
	a := t.at(s)
	a.slot = s
	return a
}

// user returns the user kept for slot s ("" unless keepUser).
func (t *auctionTable) user(s int32) string {
	if int(s) < len(t.users) {
		return t.users[s]
	}
	return ""
}

// remove frees the auction of id in slot s.
func (t *auctionTable) remove(id string, s int32) {
	delete(t.ids, id)
	*t.at(s) = auction{}
	if int(s) < len(t.users) {
		t.users[s] = ""
	}
	t.free = append(t.free, s)
}

// len returns the number of auctions.
func (t *auctionTable) len() int { return len(t.ids) }

package lift

import "strings"

// users numbers the users of a Processor's drops, so that an event looks
// its user up once however many drops are live, and a drop finds a user's
// facts by index. A number is freed (and reused) once no drop holds the
// user.
type users struct {
	ids   map[string]int32
	names []string // "" for a free number
	refs  []int32  // drops holding the user
	free  []int32
}

func newUsers() users { return users{ids: map[string]int32{}} }

// lookup returns the number of user id, if it has one.
func (t *users) lookup(id string) (int32, bool) {
	n, ok := t.ids[id]
	return n, ok
}

// number returns the number of user id, numbering a copy of it (decoded
// strings share their record). A new number is freed by the first
// release after the hold of the drop that asked for it.
func (t *users) number(id string) int32 {
	if n, ok := t.ids[id]; ok {
		return n
	}
	id = strings.Clone(id)
	var n int32
	if k := len(t.free); k > 0 {
		n = t.free[k-1]
		t.free = t.free[:k-1]
		t.names[n], t.refs[n] = id, 0
	} else {
		n = int32(len(t.names))
		t.names = append(t.names, id)
		t.refs = append(t.refs, 0)
	}
	t.ids[id] = n
	return n
}

// hold records that one more drop holds user n.
func (t *users) hold(n int32) { t.refs[n]++ }

// release records that a drop no longer holds user n, freeing the number
// when none does.
func (t *users) release(n int32) {
	if t.refs[n]--; t.refs[n] == 0 {
		delete(t.ids, t.names[n])
		t.names[n] = ""
		t.free = append(t.free, n)
	}
}

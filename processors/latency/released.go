package latency

import (
	"strings"

	"github.com/questline/questline/processors/internal/arena"
	"github.com/questline/questline/processors/window"
)

// released is a conversion the watermark has passed, with its current
// attribution (quest, completion time; attributed) and whether that
// attribution is in the panes (applied). It keeps what its
// quest_conversions row needs but the user (the key of its user) and the
// latency (derived): ids of quests, drops, creators and currencies are
// numbers in the processor's names, the event and order ids one name in
// the processor's convIDs. 80 bytes (88 and a string of its own, a
// 16-byte header and the ids' bytes rounded up to a size class, before
// session 9; a version above 2^32 − 1, a conversion attributed again that
// many times, wraps). (A snapshot holds the row itself, releasedState.)
type released struct {
	r                   window.Range
	t, compT, amount    int64
	ids                 arena.Ref // the event id, then the order id
	quest, drop         uint32
	creator, currency   uint32
	version             uint32
	eventLen            uint32 // of the event id in ids
	next                uint32 // the user's next (lists.go)
	attributed, applied bool
}

// setIDs sets rc's event and order ids: ids, their concatenation (the
// event id first), or "" to make it of them.
func (p *Processor) setIDs(rc *released, ids, eventID, orderID string) {
	if ids == "" {
		ids = eventID + orderID // (copied below)
	}
	rc.ids, rc.eventLen = p.convIDs.Add(ids), uint32(len(eventID))
}

// concat returns a new copy of a followed by b (where a + b may return a
// or b itself, which would keep its record).
func concat(a, b string) string {
	var sb strings.Builder
	sb.Grow(len(a) + len(b))
	sb.WriteString(a)
	sb.WriteString(b)
	return sb.String()
}

// eventID returns the event id of rc, a view of ids, the processor's
// convIDs (see arena.View).
func (rc *released) eventID(ids *arena.Names) string { return ids.View(rc.ids)[:rc.eventLen] }

// orderID returns the order id of rc, a view of ids.
func (rc *released) orderID(ids *arena.Names) string { return ids.View(rc.ids)[rc.eventLen:] }

// latency returns the latency of rc's attribution (0 without one).
func (rc *released) latency() int64 {
	if !rc.attributed {
		return 0
	}
	return rc.t - rc.compT
}

// queued is a conversion waiting in the queue for the watermark: what its
// released conversion will hold, with its user (a copy of the id) and its
// arrival number; without Processor.Conversions only the user and the
// time (as before: the ids, amount, drop, creator and currency are in no
// row then). 88 bytes (session 9; the whole row before, 192 bytes). A
// snapshot holds it as a pending.
type queued struct {
	seq                     uint64
	r                       window.Range
	t, amount               int64
	user                    string
	ids                     string // the event id, then the order id
	eventLen                uint32 // of the event id in ids
	drop, creator, currency uint32 // numbers in the processor's names
}

// queuedLess orders the conversion queue: by conversion time, then
// arrival.
func queuedLess(a, b *queued) bool {
	if a.t != b.t {
		return a.t < b.t
	}
	return a.seq < b.seq
}

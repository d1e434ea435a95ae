package loadgen

import (
	"time"

	"github.com/questline/questline/event"
)

// The edge-node sending mode (Config.EdgeEvents > 0). Devices send their
// batches to an edge node (a CDN point of presence or a server-side
// collector, one per network country), which forwards many devices'
// events to ingest in one request. SPEC §2 gives a request one sent_at and
// one clock_offset_ms, both about one clock, so the edge puts together
// only events whose timestamps need the same correction: a forwarded
// request holds the batches of devices in one edge country with the same
// clock skew (all synced devices share skew 0), and carries
//
//   - clock_offset_ms = −skew: the edge's measurement of those devices'
//     clock against its own (NTP-synced) one — what the device's own
//     NTP-style estimate or the edge's received_at − sent_at gives, to the
//     whole second, over the simulated device → edge hop — plus the edge's
//     own offset to ingest, 0;
//   - sent_at = the edge's wall clock + skew: the send time read on the
//     batch's clock, so sent_at + clock_offset_ms is the edge's send time.
//
// Ingest derives event_time = ts + clock_offset_ms = the true time for
// every event, whatever the device's clock mode (exact: skews are whole
// seconds). Server batches (trusted, event_time = ts) are merged the same
// way under the server key.
//
// With EdgeCorrect the edge node instead corrects the clock itself, as a
// collector that rewrites device timestamps does: a skewed device's events
// are forwarded with ts = the device's ts − skew (the true time, on the
// edge's clock) and the device's own reading kept in props.device_ts, in
// the requests of synced devices (clock_offset_ms 0). Event times are the
// same; what is lost is the ts column as the device's clock (the skew is
// then only in props), in exchange for merging every client batch of an
// edge country: otherwise a skewed device's batch nearly always travels
// alone (few devices share a skew), and those make most of the requests.
//
// The edge flushes a group when the next batch would take it over
// EdgeEvents events, or EdgeHold (simulated time) after the group's first
// batch reached it. Both rules are in simulated time, so which events
// share a request is a function of the seed and config, like everything
// else the model sends.

// edgeKey is what the events of one forwarded request share.
type edgeKey struct {
	server  bool
	country string
	skew    int64
}

type edgeGroup struct {
	key     edgeKey
	b       *Batch   // the request, without its events until it closes
	parts   []*Batch // the device batches it holds
	n       int      // their events
	flushAt int64    // simulated ms
	done    bool     // flushed (by size) while still in the queue
}

// edgeNode merges batches into forwarded requests (all edge nodes of the
// run in one: they are keyed by country).
type edgeNode struct {
	max     int
	hold    int64
	correct bool // correct skewed devices' ts at the edge (Config.EdgeCorrect)
	open    map[edgeKey]*edgeGroup
	queue   []*edgeGroup // open groups by flushAt (they open in send order)
	seq     uint64
}

func newEdgeNode(maxEvents int, hold int64, correct bool) *edgeNode {
	return &edgeNode{max: maxEvents, hold: hold, correct: correct, open: map[edgeKey]*edgeGroup{}}
}

// corrected returns b with its device clock corrected at the edge: ts −
// skew, and the device's reading in props.device_ts.
func corrected(b *Batch) *Batch {
	c := *b
	c.Skew = 0
	c.Events = make([]event.Event, len(b.Events))
	for i := range b.Events {
		e := b.Events[i]
		buf := make([]byte, 0, 48+len(e.Extra))
		buf = append(buf, `{"device_ts":"`...)
		buf = time.UnixMilli(e.TS).UTC().AppendFormat(buf, event.TimeLayout)
		buf = append(buf, '"')
		if len(e.Extra) > 2 {
			buf = append(buf, ',')
			buf = append(buf, e.Extra[1:]...)
		} else {
			buf = append(buf, '}')
		}
		e.Extra = string(buf)
		e.TS -= b.Skew
		c.Events[i] = e
	}
	return &c
}

// due returns the groups whose hold ends at or before t, in that order,
// and closes them. Their batches are sent at their flushAt.
func (n *edgeNode) due(t int64) []*Batch {
	var out []*Batch
	for len(n.queue) > 0 && (n.queue[0].done || n.queue[0].flushAt <= t) {
		gr := n.queue[0]
		n.queue[0] = nil
		n.queue = n.queue[1:]
		if gr.done {
			continue
		}
		gr.b.SendAt = gr.flushAt
		out = append(out, n.close(gr))
	}
	return out
}

// all closes every open group, at its flushAt.
func (n *edgeNode) all() []*Batch { return n.due(1<<63 - 1) }

// add takes device (or server) batch b, received at b.SendAt. It returns
// the group it closed to make room, if any: sent now, at b.SendAt.
func (n *edgeNode) add(b *Batch) *Batch {
	if n.correct && !b.Server && b.Skew != 0 {
		b = corrected(b)
	}
	k := edgeKey{server: b.Server, country: b.EdgeCountry, skew: b.Skew}
	var out *Batch
	gr := n.open[k]
	if gr != nil && gr.n+len(b.Events) > n.max {
		gr.b.SendAt = b.SendAt
		gr.done = true
		out = n.close(gr)
		gr = nil
	}
	if gr == nil {
		gr = &edgeGroup{key: k, flushAt: b.SendAt + n.hold, b: &Batch{
			Server: b.Server, EdgeCountry: b.EdgeCountry, Skew: b.Skew, Clock: ClockEdge,
		}}
		if b.Server {
			gr.b.Clock = ClockSynced
		}
		n.open[k] = gr
		n.queue = append(n.queue, gr)
	}
	gr.parts = append(gr.parts, b)
	gr.n += len(b.Events)
	return out
}

func (n *edgeNode) close(gr *edgeGroup) *Batch {
	delete(n.open, gr.key)
	if len(gr.parts) == 1 {
		gr.b.Events = gr.parts[0].Events
	} else {
		gr.b.Events = make([]event.Event, 0, gr.n)
		for _, p := range gr.parts {
			gr.b.Events = append(gr.b.Events, p.Events...)
		}
	}
	gr.b.Devices = len(gr.parts)
	gr.parts = nil
	gr.b.Seq = n.seq
	n.seq++
	return gr.b
}

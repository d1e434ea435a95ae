package loadgen

import (
	"strconv"
	"time"

	"github.com/questline/questline/event"
)

// ClockMode is how a device's clock relates to true time and how the
// client reports it (SPEC §2).
type ClockMode uint8

const (
	// ClockSynced: the device clock is right; the client sends sent_at.
	ClockSynced ClockMode = iota
	// ClockNTP: the device clock is off by whole seconds; the client
	// measures its offset from server_time in answers (NTP-style, rounded
	// to the second) and sends clock_offset_ms once it has a measurement,
	// sent_at before that.
	ClockNTP
	// ClockSentAt: the device clock is off by whole seconds; the client
	// only ever sends sent_at.
	ClockSentAt
	// ClockEdge: a request forwarded by an edge node (Config.EdgeEvents):
	// events of devices that share one clock skew, sent with
	// clock_offset_ms = −skew and sent_at on that clock (see edge.go).
	ClockEdge
)

// String returns "synced", "ntp" or "sent_at".
func (m ClockMode) String() string {
	switch m {
	case ClockNTP:
		return "ntp"
	case ClockSentAt:
		return "sent_at"
	case ClockEdge:
		return "edge"
	}
	return "synced"
}

// Batch is one request the model sends: a client batch of one device, or
// a server batch (catalog, drop lifecycle, auctions, conversions, payouts)
// sent with the server key. Event.TS is the device clock (true time +
// Skew); the true time of event i is Events[i].TS - Skew.
type Batch struct {
	Seq    uint64 // position in the run, from 0
	Server bool   // send with the server-scope key
	// DeviceID is the sending device ("" for server batches and for
	// requests forwarded by an edge node).
	DeviceID string
	// Devices is how many batches an edge node merged into this one (0
	// when it was not forwarded by an edge node).
	Devices int
	// EdgeCountry is the country the edge sees the device in (its network),
	// which geo-mismatch bots do not declare.
	EdgeCountry string
	Clock       ClockMode
	Skew        int64 // device clock − true time, ms (whole seconds)
	// SendAt is the true (simulated) time the batch is sent, Unix ms.
	SendAt int64
	Events []event.Event

	// prepared is the request body built ahead by a Preparer, or nil. Its
	// events are in the truth already and Events is nil (Run records them
	// and lets them go as it builds the body).
	prepared []byte
}

// TrueTime returns the true time of b.Events[i].
func (b *Batch) TrueTime(i int) int64 { return b.Events[i].TS - b.Skew }

// AppendJSON appends the request body of b as the client sends it, with
// sent_at on the device clock and, when hasOffset, clock_offset_ms.
func (b *Batch) AppendJSON(dst []byte, sentAt int64, offset int64, hasOffset bool) []byte {
	dst = append(dst, `{"sent_at":"`...)
	dst = time.UnixMilli(sentAt).UTC().AppendFormat(dst, event.TimeLayout)
	dst = append(dst, '"')
	if hasOffset {
		dst = append(dst, `,"clock_offset_ms":`...)
		dst = strconv.AppendInt(dst, offset, 10)
	}
	dst = append(dst, `,"events":[`...)
	for i := range b.Events {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = event.AppendClientJSON(dst, &b.Events[i])
	}
	return append(dst, "]}"...)
}

// AppendSimJSON appends the body as the model would send it at SendAt with
// a perfect network: sent_at = SendAt + Skew, and clock_offset_ms = -Skew
// for NTP devices and edge nodes. It is the reproducible form of a batch.
func (b *Batch) AppendSimJSON(dst []byte) []byte {
	return b.AppendJSON(dst, b.SendAt+b.Skew, -b.Skew, b.Clock == ClockNTP || b.Clock == ClockEdge)
}

// DeriveEventTime is SPEC §2's event time: ts + clock_offset_ms when the
// offset is given; else ts + (received_at − sent_at) when sent_at is given
// and the difference is at least 1 s; else ts. Server-scope input is
// trusted as it is.
func DeriveEventTime(ts int64, server bool, sentAt int64, hasSentAt bool, offset int64, hasOffset bool, receivedAt int64) int64 {
	switch {
	case server:
		return ts
	case hasOffset:
		return ts + offset
	case hasSentAt:
		d := receivedAt - sentAt
		if d >= 1000 || d <= -1000 {
			return ts + d
		}
	}
	return ts
}

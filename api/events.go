package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/event"
	"github.com/questline/questline/ingest"
	"github.com/questline/questline/kafka"
)

// IdempotencyHeader is the optional request header whose value (1–64
// characters of [A-Za-z0-9._:-], as an event_id) makes the event a request
// writes have the same event_id when the request is retried.
const IdempotencyHeader = "Idempotency-Key"

// eventID returns the event_id of the event written by request r for key:
// derived from its Idempotency-Key when it has one, else fresh. An
// Idempotency-Key names one request of one caller, so the id is derived
// from the key's id, the route, the Idempotency-Key and subject (the ids
// naming what the body acts on, e.g. a drop_id, a quest_id and user_id):
// two different requests that happen to share an Idempotency-Key must not
// share an event_id, or downstream would drop the second as a duplicate
// and the claims fold would skip the second drop's record.
func eventID(r *http.Request, key ingest.Key, subject ...string) string {
	idemKey := r.Header.Get(IdempotencyHeader)
	if idemKey == "" {
		b := make([]byte, 16)
		rand.Read(b)
		return "api-" + hex.EncodeToString(b)
	}
	return event.APIIDPrefix + "idem:" + hashID(append([]string{key.ID, r.Method, r.URL.Path, idemKey}, subject...)...)
}

// OutcomeEventID is the event_id of the outcome event (drop_claimed or
// claim_rejected) of claim claimID on drop dropID: the same for every
// writer (the answering instance, the outcome relay, any retry), so the
// outcome is one event downstream.
func OutcomeEventID(dropID, claimID string) string {
	return event.APIIDPrefix + "claim:" + hashID(dropID, claimID)
}

// hashID returns 40 hex digits of the SHA-256 of parts (length-prefixed,
// so that no two part lists collide by concatenation).
func hashID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		var n [4]byte
		n[0], n[1], n[2], n[3] = byte(len(p)>>24), byte(len(p)>>16), byte(len(p)>>8), byte(len(p))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))[:40]
}

// newEvent returns an event of type t written by the API at server time
// now (Unix ms) for key: ts, event time and receipt are all the server's
// time (SPEC §2: server-side sources are trusted as they are).
func newEvent(t event.Type, id string, now int64, key ingest.Key) *event.Event {
	return &event.Event{
		ID: id, Type: t, TS: now, EventTime: now, ReceivedAt: now,
		Source: event.SourceAPI, KeyID: key.ID,
	}
}

// outcomeEvent returns the outcome event of decision d: its time is the
// deciding record's server time, so every writer writes the same event.
func outcomeEvent(d *Decision) *event.Event {
	t := event.DropClaimed
	if !d.Granted {
		t = event.ClaimRejected
	}
	e := newEvent(t, OutcomeEventID(d.DropID, d.ClaimID), d.At, ingest.Key{ID: d.KeyID})
	e.UserID, e.DeviceID, e.DropID, e.ClaimID, e.Reason = d.UserID, d.DeviceID, d.DropID, d.ClaimID, d.Reason
	return e
}

// dropEvent returns the event of drop record r (a schedule, start or
// end): the answering instance and the outcome relay both build it from
// the record, so both write the same event.
func dropEvent(r *Record) *event.Event {
	t := map[string]event.Type{KindSchedule: event.DropScheduled, KindStart: event.DropStarted, KindEnd: event.DropEnded}[r.Kind]
	e := newEvent(t, r.EventID, r.At, ingest.Key{ID: r.KeyID})
	e.DropID, e.CreatorID, e.OfferID = r.DropID, r.CreatorID, r.OfferID
	switch {
	case r.Kind == KindSchedule:
		e.StartsAt, e.EndsAt, e.Has = r.StartsAt, r.EndsAt, e.Has|event.HasStartsAt|event.HasEndsAt
	case r.EndsAt > 0: // a start's ends_at (0: none)
		e.EndsAt, e.Has = r.EndsAt, e.Has|event.HasEndsAt
	}
	if r.Inventory != nil {
		e.Inventory, e.Has = *r.Inventory, e.Has|event.HasInventory
	}
	return e
}

// eventRecord returns e's record of questline.events, keyed as ingest
// keys it (user_id, else drop_id or quest_id).
func eventRecord(e *event.Event) *kgo.Record {
	return &kgo.Record{Topic: kafka.TopicEvents, Key: []byte(e.Key()), Value: event.AppendBinary(nil, e)}
}

// writeEvents produces es to questline.events and waits for every
// acknowledgement (acks=all). A catalog or lifecycle event is preceded by
// its copies to every partition, all acknowledged first, as ingest does
// (kafka.CopyMaker).
func (h *Handler) writeEvents(ctx context.Context, es ...*event.Event) error {
	recs := make([]*kgo.Record, len(es))
	var copies []*kgo.Record
	for i, e := range es {
		recs[i] = eventRecord(e)
		if e.Type.ServerOnly() {
			cs, err := h.copies.Copies(ctx, recs[i])
			if err != nil {
				return err
			}
			copies = append(copies, cs...)
		}
	}
	if len(copies) > 0 {
		if err := h.cl.ProduceSync(ctx, copies...).FirstErr(); err != nil {
			h.copies.Failed()
			return err
		}
	}
	return h.cl.ProduceSync(ctx, recs...).FirstErr()
}

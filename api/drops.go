package api

import (
	"context"
	"net/http"

	"github.com/questline/questline/event"
	"github.com/questline/questline/ingest"
)

// A drop's schedule, start and end go through the claims log first (the
// sequencer decides claims from them), then into questline.events as
// ordinary events with catalog copies. A request that fails after the
// first step answers 503; its retry (same Idempotency-Key, so the same
// event_id) appends the record again, which the fold skips, and writes the
// event; without a retry, the outcome relay writes it from the record.

type scheduleDropReq struct {
	DropID    string `json:"drop_id"`
	CreatorID string `json:"creator_id"`
	StartsAt  string `json:"starts_at"`
	EndsAt    string `json:"ends_at"`
	Inventory *int64 `json:"inventory"`
	OfferID   string `json:"offer_id"`
}

// scheduleDrop: POST /v1/drops → drop_scheduled (catalog).
func (h *Handler) scheduleDrop(ctx context.Context, w http.ResponseWriter, r *http.Request, key ingest.Key) {
	var q scheduleDropReq
	if !h.decode(w, r, &q) {
		return
	}
	if msg := required("drop_id", q.DropID, "creator_id", q.CreatorID, "starts_at", q.StartsAt, "ends_at", q.EndsAt); msg != "" {
		h.fail(w, http.StatusBadRequest, msg, 0)
		return
	}
	if q.Inventory == nil {
		h.fail(w, http.StatusBadRequest, "inventory: required", 0)
		return
	}
	starts, err := parseTime("starts_at", q.StartsAt)
	if err != nil {
		h.fail(w, http.StatusBadRequest, err.Error(), 0)
		return
	}
	ends, err := parseTime("ends_at", q.EndsAt)
	if err != nil {
		h.fail(w, http.StatusBadRequest, err.Error(), 0)
		return
	}
	h.lifecycle(ctx, w, &Record{Kind: KindSchedule, DropID: q.DropID, At: h.cfg.now().UnixMilli(), EventID: eventID(r, key, q.DropID),
		KeyID: key.ID, CreatorID: q.CreatorID, OfferID: q.OfferID, StartsAt: starts, EndsAt: ends, Inventory: q.Inventory})
}

type startDropReq struct {
	CreatorID string `json:"creator_id"`
	EndsAt    string `json:"ends_at"`
	Inventory *int64 `json:"inventory"`
}

// startDrop: POST /v1/drops/{drop_id}/start → drop_started. The drop is
// live from now until ends_at (this one's, else the schedule's), or until
// it is ended; inventory, when given, replaces the schedule's.
func (h *Handler) startDrop(ctx context.Context, w http.ResponseWriter, r *http.Request, key ingest.Key) {
	var q startDropReq
	if !h.decode(w, r, &q) {
		return
	}
	if msg := required("creator_id", q.CreatorID); msg != "" {
		h.fail(w, http.StatusBadRequest, msg, 0)
		return
	}
	now := h.cfg.now().UnixMilli()
	rec := &Record{Kind: KindStart, DropID: r.PathValue("drop_id"), At: now, EventID: eventID(r, key),
		KeyID: key.ID, CreatorID: q.CreatorID, Inventory: q.Inventory}
	if q.EndsAt != "" {
		ends, err := parseTime("ends_at", q.EndsAt)
		if err != nil {
			h.fail(w, http.StatusBadRequest, err.Error(), 0)
			return
		}
		rec.EndsAt = ends // in the future unless a retry: lifecycle checks
	}
	h.lifecycle(ctx, w, rec)
}

// endDrop: POST /v1/drops/{drop_id}/end → drop_ended. Ending is final.
func (h *Handler) endDrop(ctx context.Context, w http.ResponseWriter, r *http.Request, key ingest.Key) {
	var q struct{}
	if !h.decode(w, r, &q) {
		return
	}
	h.lifecycle(ctx, w, &Record{Kind: KindEnd, DropID: r.PathValue("drop_id"), At: h.cfg.now().UnixMilli(), EventID: eventID(r, key), KeyID: key.ID})
}

// lifecycle validates rec's event (dropEvent), appends rec to the claims
// log, waits until this instance's fold applied it (so that a read here
// sees it), writes the event and answers with the drop as folded. The
// outcome relay writes the same event from the record if this instance
// dies (or its client gives up) after the append.
func (h *Handler) lifecycle(ctx context.Context, w http.ResponseWriter, rec *Record) {
	e := dropEvent(rec)
	if err := event.Validate(e); err != nil {
		h.fail(w, http.StatusBadRequest, fieldName(err.Error()), 0)
		return
	}
	if !h.ready(ctx, w) {
		return
	}
	if closed, gone := h.seq.gone(rec.DropID); gone {
		h.answer(w, http.StatusGone, h.goneView(rec.DropID, closed))
		return
	}
	// A retry (same Idempotency-Key, its record applied) is answered as
	// below whatever happened since; the checks are for new requests.
	if !h.seq.appliedAnywhere(rec.EventID) {
		if (rec.Kind == KindSchedule || rec.Kind == KindStart && rec.EndsAt != 0) && rec.EndsAt <= h.cfg.now().UnixMilli() {
			// A drop scheduled or started to have ended would be closed
			// at once (a schedule's, and its drop_id retired a claims
			// retention later).
			h.fail(w, http.StatusBadRequest, "ends_at: must be in the future", 0)
			return
		}
		if d, ok := h.seq.drop(rec.DropID); ok && d.Ended && rec.Kind != KindEnd {
			// An end is final: the fold would not reopen the drop, so a
			// schedule or start is refused with nothing written. (One
			// appended by another instance before it folded this end
			// changes nothing either.)
			h.fail(w, http.StatusConflict, "drop_id: the drop has ended, and an end is final (a new drop needs a new drop_id)", 0)
			return
		}
	}
	p, ok := h.sequence(ctx, w, rec)
	if !ok {
		return
	}
	if first, _, ok := h.seq.applied(p, rec.EventID); ok {
		// A retry's record is skipped by the fold: write the event of
		// the record it applied, as the relay does (one content per id).
		e = dropEvent(&first)
	} else if closed, gone := h.seq.gone(rec.DropID); gone {
		// Forgotten at or after the record: the fold did not apply it
		// (or forgot it), and the relay writes nothing of it either.
		h.answer(w, http.StatusGone, h.goneView(rec.DropID, closed))
		return
	}
	d, _ := h.seq.drop(rec.DropID)
	h.write(ctx, w, e, map[string]any{"drop": h.dropView(&d)})
}

// getDrop: GET /v1/drops/{drop_id} → the drop as the claims fold knows it.
func (h *Handler) getDrop(ctx context.Context, w http.ResponseWriter, r *http.Request, _ ingest.Key) {
	if !h.ready(ctx, w) {
		return
	}
	d, ok := h.seq.drop(r.PathValue("drop_id"))
	if !ok {
		if closed, gone := h.seq.gone(r.PathValue("drop_id")); gone {
			h.answer(w, http.StatusGone, h.goneView(r.PathValue("drop_id"), closed))
			return
		}
		h.fail(w, http.StatusNotFound, "drop_id: no drop of this id was scheduled or started through the API", 0)
		return
	}
	h.answer(w, http.StatusOK, h.dropView(&d))
}

// dropView is a drop's JSON answer; "live" is at this server's time.
func (h *Handler) dropView(d *Drop) map[string]any {
	v := map[string]any{
		"drop_id": d.ID, "creator_id": d.CreatorID,
		"scheduled": d.Scheduled, "started": d.Started, "ended": d.Ended,
		"live": d.Live(h.cfg.now().UnixMilli()), "granted": d.Granted,
		"starts_at": nil, "ends_at": nil, "started_at": nil, "ended_at": nil,
		"inventory": nil, "remaining": nil,
	}
	if d.Scheduled {
		v["starts_at"] = formatTime(d.StartsAt)
	}
	if end := d.End(); end > 0 {
		v["ends_at"] = formatTime(end)
	}
	if d.Started {
		v["started_at"] = formatTime(d.StartedAt)
	}
	if d.Ended {
		v["ended_at"] = formatTime(d.EndedAt)
	}
	if n, ok := d.Remaining(); ok {
		v["inventory"], v["remaining"] = d.Inventory, n
	}
	return v
}

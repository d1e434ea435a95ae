package api

import (
	"context"
	"net/http"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/ingest"
)

type claimReq struct {
	ClaimID  string `json:"claim_id"`
	UserID   string `json:"user_id"`
	DeviceID string `json:"device_id"`
}

// claim: POST /v1/drops/{drop_id}/claims. The claim is appended to the
// drop's partition of questline.claims; once this instance's fold has
// applied the partition up to it, the fold's decision is the answer
// (every instance folds the same log, so every instance agrees). The
// outcome event is written before the answer: 200 granted, 409 rejected.
// A claim_id already decided is answered from the fold as it was first.
// A claim on a drop the fold forgot (closed more than the claims
// retention ago) is 410 and writes nothing: never decided again.
func (h *Handler) claim(ctx context.Context, w http.ResponseWriter, r *http.Request, key ingest.Key) {
	var q claimReq
	if !h.decode(w, r, &q) {
		return
	}
	dropID := r.PathValue("drop_id")
	if msg := required("claim_id", q.ClaimID, "user_id", q.UserID); msg != "" {
		h.fail(w, http.StatusBadRequest, msg, 0)
		return
	}
	// The outcome event's rules check the request's ids.
	probe := event.Event{ID: "probe", Type: event.DropClaimed, UserID: q.UserID, DeviceID: q.DeviceID, DropID: dropID, ClaimID: q.ClaimID}
	if err := event.Validate(&probe); err != nil {
		h.fail(w, http.StatusBadRequest, fieldName(err.Error()), 0)
		return
	}
	if !h.allowDevice(w, q.DeviceID) {
		return
	}
	if !h.ready(ctx, w) {
		return
	}
	d, known := h.seq.claimAnywhere(q.ClaimID)
	if !known {
		if closed, gone := h.seq.gone(dropID); gone {
			h.goneClaim(w, dropID, q.ClaimID, closed)
			return
		}
		rec := &Record{Kind: KindClaim, DropID: dropID, At: h.cfg.now().UnixMilli(),
			ClaimID: q.ClaimID, UserID: q.UserID, DeviceID: q.DeviceID, KeyID: key.ID}
		p, ok := h.sequence(ctx, w, rec)
		if !ok {
			return
		}
		if d, ok = h.seq.claim(p, q.ClaimID); !ok {
			// The fold forgot the drop at or after this record: the
			// claim decided nothing (or its decision is forgotten).
			closed, _ := h.seq.gone(dropID)
			h.goneClaim(w, dropID, q.ClaimID, closed)
			return
		}
	}
	if d.DropID != dropID || d.UserID != q.UserID {
		h.m.claims.WithLabelValues("conflict").Inc()
		h.answer(w, http.StatusConflict, map[string]any{
			"status": "conflict", "claim_id": q.ClaimID,
			"error": "claim_id: already used by another user or drop; a claim_id names one claim of one user on one drop (nothing was granted)",
		})
		return
	}
	if err := h.writeEvents(ctx, outcomeEvent(&d)); err != nil {
		h.unavailable(w, "writing the claim's outcome", err)
		return
	}
	v := map[string]any{
		"drop_id": d.DropID, "claim_id": d.ClaimID, "user_id": d.UserID,
		"event_id": OutcomeEventID(d.DropID, d.ClaimID), "decided_at": formatTime(d.At),
	}
	if d.Granted {
		h.m.claims.WithLabelValues("granted").Inc()
		v["status"] = "granted"
		h.answer(w, http.StatusOK, v)
		return
	}
	h.m.claims.WithLabelValues(d.Reason).Inc()
	v["status"], v["reason"] = "rejected", d.Reason
	v["error"] = "the drop is sold out"
	if d.Reason == ReasonNotLive {
		v["error"] = "the drop is not live (not started, ended, past its end, or never scheduled or started through the API)"
	}
	h.answer(w, http.StatusConflict, v)
}

// goneClaim answers 410 to a claim on a drop the claims fold forgot
// (closed more than the claims retention ago), writing no event.
func (h *Handler) goneClaim(w http.ResponseWriter, dropID, claimID string, closedAt int64) {
	h.m.claims.WithLabelValues("gone").Inc()
	v := h.goneView(dropID, closedAt)
	v["status"], v["claim_id"] = "gone", claimID
	h.answer(w, http.StatusGone, v)
}

// goneView is the body of a 410: the drop, when it closed, the retention.
func (h *Handler) goneView(dropID string, closedAt int64) map[string]any {
	v := map[string]any{
		"drop_id": dropID, "retention": h.cfg.claimsRetention.String(),
		"error": "drop_id: this drop closed more than the claims retention (" + h.cfg.claimsRetention.String() +
			", -api-claims-retention) ago and the API has forgotten its state and decisions: nothing is decided on it any more, a claim's first answer stands, and no event is written",
	}
	if closedAt > 0 {
		v["closed_at"] = formatTime(closedAt)
	}
	return v
}

// ready answers 503 and returns false while this instance has not caught
// up with the claims log.
func (h *Handler) ready(ctx context.Context, w http.ResponseWriter) bool {
	if err := h.seq.Ready(ctx); err != nil {
		h.fail(w, http.StatusServiceUnavailable, err.Error(), h.cfg.retryAfter)
		return false
	}
	return true
}

// sequence appends rec to its drop's partition of the claims log and
// waits until this instance's fold has applied it, returning the
// partition; on a failure it answers 503 and returns false. A claim's
// wait is its decision wait (questline_api_claim_decision_wait_seconds).
func (h *Handler) sequence(ctx context.Context, w http.ResponseWriter, rec *Record) (int32, bool) {
	p, off, err := h.seq.append(ctx, rec)
	if err != nil {
		h.unavailable(w, "appending to the claims log", err)
		return 0, false
	}
	t0 := time.Now()
	if err := h.seq.wait(ctx, p, off); err != nil {
		h.unavailable(w, "waiting for the claims log to apply the "+rec.Kind+" record", err)
		return 0, false
	}
	if rec.Kind == KindClaim {
		h.m.decisionWait.Observe(time.Since(t0).Seconds())
	}
	return p, true
}

package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/questline/questline/event"
	"github.com/questline/questline/ingest"
)

// register mounts every route on mux and returns their patterns.
func (h *Handler) register(mux *http.ServeMux) []string {
	routes := []struct {
		pattern string
		fn      route
	}{
		{"POST /v1/quests", h.defineQuest},
		{"POST /v1/quests/{quest_id}/start", h.startQuest},
		{"POST /v1/quests/{quest_id}/complete", h.completeQuest},
		{"POST /v1/drops", h.scheduleDrop},
		{"GET /v1/drops/{drop_id}", h.getDrop},
		{"POST /v1/drops/{drop_id}/start", h.startDrop},
		{"POST /v1/drops/{drop_id}/end", h.endDrop},
		{"POST /v1/drops/{drop_id}/claims", h.claim},
	}
	var patterns []string
	for _, rt := range routes {
		mux.Handle(rt.pattern, h.handle(rt.pattern, rt.fn))
		patterns = append(patterns, rt.pattern)
	}
	mux.HandleFunc(OpenAPIPattern, serveOpenAPI)
	mux.Handle(unroutedPattern, h.unrouted(mux))
	return append(patterns, OpenAPIPattern)
}

// unroutedPattern catches what no route of mux serves under /v1/, so that
// it is answered in the API's JSON error shape, not ServeMux's plain text.
const unroutedPattern = "/v1/"

// unrouted answers a request no route of mux serves: 405 with Allow when
// its path is routed for other methods (ingest's under questline run
// included), else 404.
func (h *Handler) unrouted(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			probe := *r
			probe.Method = m
			if _, p := mux.Handler(&probe); p != "" && p != unroutedPattern {
				allow = append(allow, m)
			}
		}
		if len(allow) == 0 {
			h.fail(w, http.StatusNotFound, "no such route (see /v1/openapi.json)", 0)
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		h.fail(w, http.StatusMethodNotAllowed, r.Method+" is not allowed here (Allow: "+strings.Join(allow, ", ")+")", 0)
	})
}

// write validates e, writes it (catalog copies first) and answers 200
// with the event id and extra fields; a validation failure is 400.
func (h *Handler) write(ctx context.Context, w http.ResponseWriter, e *event.Event, extra map[string]any) bool {
	if err := event.Validate(e); err != nil {
		h.fail(w, http.StatusBadRequest, fieldName(err.Error()), 0)
		return false
	}
	if err := h.writeEvents(ctx, e); err != nil {
		h.unavailable(w, "writing "+e.Type.String(), err)
		return false
	}
	if extra == nil {
		extra = map[string]any{}
	}
	extra["event_id"] = e.ID
	extra["type"] = e.Type.String()
	h.answer(w, http.StatusOK, extra)
	return true
}

type defineQuestReq struct {
	QuestID       string `json:"quest_id"`
	MinDurationMs *int64 `json:"min_duration_ms"`
	MaxDurationMs *int64 `json:"max_duration_ms"`
	Title         string `json:"title"`
}

// defineQuest: POST /v1/quests → quest_defined (catalog).
func (h *Handler) defineQuest(ctx context.Context, w http.ResponseWriter, r *http.Request, key ingest.Key) {
	var q defineQuestReq
	if !h.decode(w, r, &q) {
		return
	}
	if msg := required("quest_id", q.QuestID); msg != "" {
		h.fail(w, http.StatusBadRequest, msg, 0)
		return
	}
	if q.MinDurationMs == nil {
		h.fail(w, http.StatusBadRequest, "min_duration_ms: required", 0)
		return
	}
	e := newEvent(event.QuestDefined, eventID(r, key, q.QuestID), h.cfg.now().UnixMilli(), key)
	e.QuestID, e.Title = q.QuestID, q.Title
	e.MinDurationMs, e.Has = *q.MinDurationMs, event.HasMinDurationMs
	if q.MaxDurationMs != nil {
		e.MaxDurationMs, e.Has = *q.MaxDurationMs, e.Has|event.HasMaxDurationMs
	}
	h.write(ctx, w, e, map[string]any{"quest_id": q.QuestID})
}

type startQuestReq struct {
	UserID    string `json:"user_id"`
	DeviceID  string `json:"device_id"`
	SessionID string `json:"session_id"`
}

// startQuest: POST /v1/quests/{quest_id}/start → quest_started, answering
// the attempt token that completing it needs.
func (h *Handler) startQuest(ctx context.Context, w http.ResponseWriter, r *http.Request, key ingest.Key) {
	var q startQuestReq
	if !h.decode(w, r, &q) {
		return
	}
	if msg := required("user_id", q.UserID); msg != "" {
		h.fail(w, http.StatusBadRequest, msg, 0)
		return
	}
	if !h.allowDevice(w, q.DeviceID) {
		return
	}
	questID, now := r.PathValue("quest_id"), h.cfg.now().UnixMilli()
	token, attempt := h.tokens.issue(questID, q.UserID, now)
	id := event.APIIDPrefix + "qs:" + attempt
	if r.Header.Get(IdempotencyHeader) != "" {
		id = eventID(r, key, q.UserID)
	}
	e := newEvent(event.QuestStarted, id, now, key)
	e.QuestID, e.UserID, e.DeviceID, e.SessionID = questID, q.UserID, q.DeviceID, q.SessionID
	h.write(ctx, w, e, map[string]any{"quest_id": questID, "user_id": q.UserID, "attempt": token, "started_at": formatTime(now)})
}

type completeQuestReq struct {
	UserID    string `json:"user_id"`
	Attempt   string `json:"attempt"`
	DeviceID  string `json:"device_id"`
	SessionID string `json:"session_id"`
}

// completeQuest: POST /v1/quests/{quest_id}/complete → quest_completed,
// with duration_ms measured by the server: now − the attempt's start. Its
// event_id is derived from the attempt alone (an Idempotency-Key is
// ignored), so an attempt completes once downstream however often it is
// sent.
func (h *Handler) completeQuest(ctx context.Context, w http.ResponseWriter, r *http.Request, key ingest.Key) {
	var q completeQuestReq
	if !h.decode(w, r, &q) {
		return
	}
	if msg := required("user_id", q.UserID, "attempt", q.Attempt); msg != "" {
		h.fail(w, http.StatusBadRequest, msg, 0)
		return
	}
	if !h.allowDevice(w, q.DeviceID) {
		return
	}
	questID, now := r.PathValue("quest_id"), h.cfg.now().UnixMilli()
	started, attempt, err := h.tokens.check(questID, q.UserID, q.Attempt)
	if err != nil {
		h.fail(w, http.StatusBadRequest, err.Error(), 0)
		return
	}
	if now-started > h.cfg.attemptMaxAge.Milliseconds() {
		h.fail(w, http.StatusBadRequest, "attempt: expired (started more than "+h.cfg.attemptMaxAge.String()+" ago); start the quest again", 0)
		return
	}
	// The attempt, not the Idempotency-Key, names the completion: an
	// Idempotency-Key per send would count one attempt several times.
	e := newEvent(event.QuestCompleted, event.APIIDPrefix+"qc:"+attempt, now, key)
	e.QuestID, e.UserID, e.DeviceID, e.SessionID = questID, q.UserID, q.DeviceID, q.SessionID
	// Instances' clocks may differ a little: never a negative duration.
	e.DurationMs, e.Has = max(0, now-started), event.HasDurationMs
	h.write(ctx, w, e, map[string]any{"quest_id": questID, "user_id": q.UserID, "duration_ms": e.DurationMs})
}

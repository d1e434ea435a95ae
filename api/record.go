package api

import (
	"encoding/json"
	"errors"
)

// Kinds of the records of questline.claims.
const (
	KindSchedule = "schedule" // a drop_scheduled made through the API
	KindStart    = "start"    // a drop_started
	KindEnd      = "end"      // a drop_ended
	KindClaim    = "claim"    // a claim request
	// KindLayout, in partition 0, fixes the number of partitions drops are
	// placed among (the first one in log order counts): partitions added
	// to the topic later stay unused, so a drop never changes partition.
	KindLayout = "layout"
)

// Record is one record of questline.claims (JSON, keyed by drop_id). At
// is the server time (Unix ms) of the API instance that appended it: the
// fold decides with it, so every reader decides alike.
type Record struct {
	Kind   string `json:"kind"`
	DropID string `json:"drop_id"`
	At     int64  `json:"at"`

	// Drop records.
	EventID   string `json:"event_id,omitempty"` // of the drop event: a retried request's record applies once
	CreatorID string `json:"creator_id,omitempty"`
	StartsAt  int64  `json:"starts_at,omitempty"` // schedule
	EndsAt    int64  `json:"ends_at,omitempty"`   // schedule, start (0: none)
	Inventory *int64 `json:"inventory,omitempty"` // schedule, start (nil: unchanged)
	OfferID   string `json:"offer_id,omitempty"`  // schedule

	// Claim records.
	ClaimID  string `json:"claim_id,omitempty"`
	UserID   string `json:"user_id,omitempty"`
	DeviceID string `json:"device_id,omitempty"`
	KeyID    string `json:"key_id,omitempty"` // the API key's non-secret id (drop records too)

	// Layout records.
	Partitions int32 `json:"partitions,omitempty"`
}

// Marshal returns r's record value.
func (r *Record) Marshal() []byte {
	b, _ := json.Marshal(r)
	return b
}

var errBadRecord = errors.New("claims record: missing kind or drop_id, or a layout without partitions")

// ParseRecord decodes a record value. Unknown fields are ignored (records
// written by a newer questline).
func ParseRecord(b []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return r, err
	}
	if r.Kind == KindLayout {
		if r.Partitions <= 0 {
			return r, errBadRecord
		}
		return r, nil
	}
	if r.Kind == "" || r.DropID == "" {
		return r, errBadRecord
	}
	return r, nil
}

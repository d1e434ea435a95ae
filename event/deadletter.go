package event

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// DeadLetter is the record value of questline.events.dlq (SPEC §4): one
// rejected event, or one whole request that could not be parsed. It is
// JSON: dead letters are rare and read by people, so readability wins.
type DeadLetter struct {
	// Reason is the rejection, e.g. "props.quest_id: required for
	// quest_completed" or "body: malformed JSON".
	Reason string `json:"reason"`
	// Kind groups reasons for counting: "schema", "too_old", "in_future",
	// "duplicate_in_batch", "scope", "malformed_body", "too_large",
	// "sink_refused", "processor_refused".
	Kind string `json:"kind"`
	// EventID is the event's id when it could be read, else "".
	EventID string `json:"event_id,omitempty"`
	// Index is the event's position in its batch, or -1 for a whole request.
	Index int `json:"index"`
	// Raw is the rejected bytes as received (after gzip decoding), at most
	// MaxDeadLetterRaw bytes; RawTruncated says whether it was cut.
	// On the wire, bytes that are not valid UTF-8 (a corrupt gzip body,
	// binary junk) travel base64-encoded in raw_base64 instead of raw, so
	// that JSON does not replace them: Marshal and UnmarshalDeadLetter do
	// this, and Raw always holds the bytes exactly.
	Raw          string `json:"raw"`
	RawBase64    string `json:"raw_base64,omitempty"`
	RawTruncated bool   `json:"raw_truncated,omitempty"`
	// ReceivedAt is when ingest received the request (Unix ms).
	ReceivedAt int64 `json:"received_at"`
	// Source, KeyID say who sent it (never the key itself).
	Source string `json:"source,omitempty"`
	KeyID  string `json:"key_id,omitempty"`
}

// MaxDeadLetterRaw bounds the raw payload kept in one dead letter, so one
// hostile request cannot produce an oversized Kafka record.
const MaxDeadLetterRaw = 256 << 10

// maxDeadLetterReason bounds Reason in a record: reasons may quote client
// input (an unknown field's name), which must not make the record large.
const maxDeadLetterReason = 4 << 10

// maxDeadLetterText bounds a record whose raw payload travels as JSON
// text: JSON escapes some characters six-fold (<, >, &, control bytes),
// so a record over it carries its raw payload base64-encoded instead
// (at most 4/3 of MaxDeadLetterRaw). Every record stays far below the
// producer's 1 MiB batch limit, so a dead letter can always be written.
const maxDeadLetterText = 512 << 10

// Marshal returns the JSON record value of d, truncating Raw if needed.
// Reason and EventID are bounded too (they may quote client input).
func (d *DeadLetter) Marshal() []byte {
	if len(d.Raw) > MaxDeadLetterRaw {
		d.Raw, d.RawTruncated = d.Raw[:MaxDeadLetterRaw], true
	}
	w := *d
	w.Reason = BoundReason(w.Reason)
	w.EventID = truncateUTF8(w.EventID, MaxEventIDLen, "")
	if !utf8.ValidString(w.Raw) {
		w.RawBase64, w.Raw = base64.StdEncoding.EncodeToString([]byte(w.Raw)), ""
	}
	b, _ := json.Marshal(&w) // a struct of strings, ints and bools cannot fail
	if len(b) > maxDeadLetterText && w.Raw != "" {
		w.RawBase64, w.Raw = base64.StdEncoding.EncodeToString([]byte(w.Raw)), ""
		b, _ = json.Marshal(&w)
	}
	return b
}

// BoundReason returns reason cut to the length a dead letter keeps of it
// (reasons may quote client input: an unknown field's name), for the
// answers that quote it too.
func BoundReason(reason string) string {
	const mark = " …(truncated)"
	if len(reason) <= maxDeadLetterReason {
		return reason
	}
	// Cut so that the result, mark included, is within the bound: bounding
	// it again (the answer's copy, then the dead letter's) changes nothing.
	return truncateUTF8(reason, maxDeadLetterReason-len(mark), mark)
}

// truncateUTF8 cuts s to at most n bytes on a rune boundary, then appends
// mark when it cut.
func truncateUTF8(s string, n int, mark string) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + mark
}

// UnmarshalDeadLetter decodes a record value written by Marshal.
func UnmarshalDeadLetter(b []byte) (DeadLetter, error) {
	var d DeadLetter
	if err := json.Unmarshal(b, &d); err != nil {
		return d, err
	}
	if d.RawBase64 != "" {
		raw, err := base64.StdEncoding.DecodeString(d.RawBase64)
		if err != nil {
			return d, fmt.Errorf("dead letter raw_base64: %w", err)
		}
		d.Raw, d.RawBase64 = string(raw), ""
	}
	return d, nil
}

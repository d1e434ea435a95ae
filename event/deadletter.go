package event

import "encoding/json"

// DeadLetter is the record value of questline.events.dlq (SPEC §4): one
// rejected event, or one whole request that could not be parsed. It is
// JSON: dead letters are rare and read by people, so readability wins.
type DeadLetter struct {
	// Reason is the rejection, e.g. "props.quest_id: required for
	// quest_completed" or "body: malformed JSON".
	Reason string `json:"reason"`
	// Kind groups reasons for counting: "schema", "too_old", "in_future",
	// "duplicate_in_batch", "scope", "malformed_body", "sink_refused".
	Kind string `json:"kind"`
	// EventID is the event's id when it could be read, else "".
	EventID string `json:"event_id,omitempty"`
	// Index is the event's position in its batch, or -1 for a whole request.
	Index int `json:"index"`
	// Raw is the rejected bytes as received (after gzip decoding), at most
	// MaxDeadLetterRaw bytes; RawTruncated says whether it was cut.
	Raw          string `json:"raw"`
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

// Marshal returns the JSON record value of d, truncating Raw if needed.
func (d *DeadLetter) Marshal() []byte {
	if len(d.Raw) > MaxDeadLetterRaw {
		d.Raw, d.RawTruncated = d.Raw[:MaxDeadLetterRaw], true
	}
	b, _ := json.Marshal(d) // a struct of strings, ints and bools cannot fail
	return b
}

// UnmarshalDeadLetter decodes a record value written by Marshal.
func UnmarshalDeadLetter(b []byte) (DeadLetter, error) {
	var d DeadLetter
	err := json.Unmarshal(b, &d)
	return d, err
}

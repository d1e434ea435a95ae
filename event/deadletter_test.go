package event

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDeadLetterKeepsBytesExactly(t *testing.T) {
	for name, raw := range map[string]string{
		"json":        `{"event_id":"x","type":"nope"}`,
		"not utf-8":   "\x1f\x8b\x08\x00\xff\xfe junk \xc3",
		"empty":       "",
		"control+nul": "a\x00b\x01c",
	} {
		d := DeadLetter{Reason: "r", Kind: "schema", Index: 3, Raw: raw, ReceivedAt: 42}
		got, err := UnmarshalDeadLetter(d.Marshal())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Raw != raw || got.Reason != "r" || got.Index != 3 || got.ReceivedAt != 42 {
			t.Errorf("%s: round trip %+v", name, got)
		}
	}
}

func TestDeadLetterTruncates(t *testing.T) {
	d := DeadLetter{Raw: strings.Repeat("x", MaxDeadLetterRaw+10)}
	got, err := UnmarshalDeadLetter(d.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Raw) != MaxDeadLetterRaw || !got.RawTruncated {
		t.Fatalf("raw %d bytes, truncated %v", len(got.Raw), got.RawTruncated)
	}
}

// TestDeadLetterRecordStaysSmall: whatever a client sends, a dead letter's
// record stays well under the producer's 1 MiB limit (else the dead letter
// cannot be written and ingest answers 503 forever), and Raw still
// round-trips exactly.
func TestDeadLetterRecordStaysSmall(t *testing.T) {
	for name, d := range map[string]DeadLetter{
		"raw escaped six-fold": {Raw: strings.Repeat("<", MaxDeadLetterRaw)},
		"raw of control bytes": {Raw: strings.Repeat("\x01", MaxDeadLetterRaw+5)},
		"huge reason":          {Reason: "unknown event field " + strings.Repeat("é", 1<<20), Raw: "{}"},
		"huge event id":        {EventID: strings.Repeat("i", 2<<20)},
	} {
		raw := d.Raw
		if len(raw) > MaxDeadLetterRaw {
			raw = raw[:MaxDeadLetterRaw]
		}
		b := d.Marshal()
		if len(b) > 512<<10 {
			t.Errorf("%s: record of %d bytes", name, len(b))
		}
		got, err := UnmarshalDeadLetter(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Raw != raw {
			t.Errorf("%s: raw changed (%d bytes, want %d)", name, len(got.Raw), len(raw))
		}
		if !utf8.ValidString(got.Reason) || len(got.EventID) > MaxEventIDLen {
			t.Errorf("%s: reason valid %v, event_id %d bytes", name, utf8.ValidString(got.Reason), len(got.EventID))
		}
	}
}

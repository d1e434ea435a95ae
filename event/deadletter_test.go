package event

import (
	"strings"
	"testing"
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

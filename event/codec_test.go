package event

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

// sample returns a fully populated event: every field set, so a round trip
// that drops or swaps any field fails.
func sample() Event {
	return Event{
		ID: "evt-1", Type: Bid, UserID: "u-1", DeviceID: "d-1", SessionID: "s-1", Country: "DE",
		TS: 1764000000123, EventTime: 1764000000456, SentAt: 1764000001000, ReceivedAt: 1764000001500,
		ClockOffsetMs: -333, Source: SourceClient, KeyID: "k-abcd", EdgeCountry: "FR",
		QuestID: "q", DropID: "dr", CreatorID: "c", ClaimID: "cl", Reason: "sold_out",
		AuctionID: "a", Placement: "p", BidderID: "b", Outcome: "bid", OfferID: "o",
		OrderID: "or", PayoutID: "po", Currency: "EUR", Title: "Title \"quoted\" ünïcode",
		AmountMicros: 1, PriceMicros: 2, FloorMicros: 3, ClearingMicros: 4, LatencyMs: 5,
		DurationMs: 6, MinDurationMs: 7, MaxDurationMs: 8, Inventory: 9, StartsAt: 10, EndsAt: -11,
		Has:   1<<13 - 1,
		Extra: `{"k":[1,2,{"x":null}]}`,
	}
}

func TestBinaryRoundTripEveryField(t *testing.T) {
	e := sample()
	// Every field of Event must be non-zero in the sample, or the test
	// would not notice a field the codec forgets.
	v := reflect.ValueOf(e)
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).IsZero() {
			t.Fatalf("sample leaves %s zero", v.Type().Field(i).Name)
		}
	}
	b := AppendBinary(nil, &e)
	var got Event
	if err := DecodeBinary(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, e)
	}
	// The decoded strings must not alias the input buffer.
	for i := range b {
		b[i] = 0
	}
	if got.UserID != "u-1" {
		t.Fatal("decoded strings alias the record buffer")
	}
}

func TestBinaryRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	str := func() string {
		if r.IntN(3) == 0 {
			return ""
		}
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return string(b)
	}
	num := func() int64 {
		switch r.IntN(4) {
		case 0:
			return 0
		case 1:
			return -r.Int64()
		}
		return r.Int64()
	}
	for range 2000 {
		e := Event{ID: str(), Type: Type(1 + r.IntN(int(numTypes)-1)), UserID: str(), Country: str(),
			TS: num(), EventTime: num(), ClockOffsetMs: num(), Source: Source(r.IntN(4)), Has: r.Uint32(),
			QuestID: str(), Placement: str(), Extra: str(), AmountMicros: num(), EndsAt: num()}
		var got Event
		if err := DecodeBinary(AppendBinary(nil, &e), &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, e)
		}
		if scanned, err := scan(AppendBinary(nil, &e)); err != nil || !reflect.DeepEqual(scanned, e) {
			t.Fatalf("ScanBinary (err %v):\n got %+v\nwant %+v", err, scanned, e)
		}
	}
}

// scan rebuilds an Event from the fields ScanBinary hands its visitor.
func scan(b []byte) (Event, error) {
	var v scanVisitor
	err := ScanBinary(string(b), &v)
	return v.e, err
}

type scanVisitor struct{ e Event }

func (v *scanVisitor) Varint(num, x uint64) {
	if num == 1 {
		panic("ScanBinary handed over the schema version")
	}
	if !storeInt(&v.e, num, int64(x)) {
		var version uint64
		setNum(&v.e, num, x, &version)
	}
}

func (v *scanVisitor) Bytes(num uint64, s string) { storeStr(&v.e, num, s) }

func TestDecodeSkipsUnknownFields(t *testing.T) {
	e := sample()
	b := AppendBinary(nil, &e)
	// A newer writer adds field 99 (varint), 100 (bytes), 101 (fixed64), 102 (fixed32).
	b = appendUint(b, 99, 12345)
	b = appendStr(b, 100, "future")
	b = append(appendTag(b, 101, wireI64), 1, 2, 3, 4, 5, 6, 7, 8)
	b = append(appendTag(b, 102, wireI32), 1, 2, 3, 4)
	var got Event
	if err := DecodeBinary(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, e) {
		t.Fatal("unknown fields changed the decoded event")
	}
	if scanned, err := scan(b); err != nil || !reflect.DeepEqual(scanned, e) {
		t.Fatalf("unknown fields changed the scanned event (err %v)", err)
	}
}

func TestDecodeRejectsCorrupt(t *testing.T) {
	e := sample()
	good := AppendBinary(nil, &e)
	cases := map[string][]byte{
		"empty":            {},
		"truncated":        good[:len(good)-3],
		"bad wire type":    {0x0f},
		"length overflow":  {byte(3<<3 | wireBytes), 0xff, 0xff, 0xff, 0xff, 0x0f},
		"no version":       AppendBinary(nil, &e)[2:],
		"future version":   append(appendUint(nil, 1, 2), good[2:]...),
		"unknown type":     append(appendUint(appendUint(nil, 1, 1), 2, 200), good[4:]...),
		"varint too long":  bytes.Repeat([]byte{0xff}, 11),
		"json, not binary": []byte(`{"event_id":"x"}`),
	}
	for name, b := range cases {
		var got Event
		if err := DecodeBinary(b, &got); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
		if _, err := scan(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: ScanBinary err = %v, want ErrCorrupt", name, err)
		}
	}
}

func FuzzDecodeBinary(f *testing.F) {
	e := sample()
	f.Add(AppendBinary(nil, &e))
	f.Add([]byte{0x08, 0x01, 0x10, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		var got Event
		err := DecodeBinary(b, &got)
		// ScanBinary accepts exactly what DecodeBinary accepts, and hands
		// over the same fields.
		if scanned, serr := scan(b); (err == nil) != (serr == nil) || err == nil && !reflect.DeepEqual(scanned, got) {
			t.Fatalf("ScanBinary disagrees with DecodeBinary: %v / %v\n%+v\n%+v", serr, err, scanned, got)
		}
		if err != nil {
			return
		}
		// Whatever decodes must re-encode to something that decodes to
		// the same event.
		var again Event
		if err := DecodeBinary(AppendBinary(nil, &got), &again); err != nil {
			t.Fatalf("re-encoded event does not decode: %v", err)
		}
		if !reflect.DeepEqual(got, again) {
			t.Fatalf("re-encode changed the event:\n%+v\n%+v", got, again)
		}
	})
}

// TestUvarintFastPath: the 64-bit-load path of uvarint agrees with
// binary.Uvarint for every length and position, with and without bytes
// after the varint.
func TestUvarintFastPath(t *testing.T) {
	vals := []uint64{0, 1, 127, 128, 300, 1<<14 - 1, 1 << 14, 1<<21 + 5, 1<<28 - 1, 1 << 35, 1767225600123, 1<<49 - 1, 1 << 49, 1<<56 - 1, 1 << 56, 1<<63 + 12345, math.MaxUint64}
	for _, v := range vals {
		enc := binary.AppendUvarint(nil, v)
		for _, tail := range [][]byte{nil, {0x00}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}} {
			b := append(append([]byte{}, enc...), tail...)
			wantV, wantN := binary.Uvarint(b)
			if gotV, gotN := uvarint(string(b)); gotV != wantV || gotN != wantN {
				t.Fatalf("%x: uvarint %d, %d; want %d, %d", b, gotV, gotN, wantV, wantN)
			}
		}
	}
	// Truncated and overlong varints.
	for _, b := range [][]byte{{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, {0x80}} {
		wantV, wantN := binary.Uvarint(b)
		if gotV, gotN := uvarint(string(b)); gotV != wantV || gotN != wantN && !(wantN < 0 && gotN < 0) {
			t.Fatalf("%x: uvarint %d, %d; want %d, %d", b, gotV, gotN, wantV, wantN)
		}
	}
}

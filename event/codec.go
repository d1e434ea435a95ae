package event

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"unsafe"
)

// SchemaVersion is the version of the Kafka record encoding written by
// AppendBinary (field 1 of event.proto).
const SchemaVersion = 1

// ErrCorrupt is returned by DecodeBinary for bytes that are not a valid
// record of any supported schema version.
var ErrCorrupt = errors.New("event: corrupt record")

const (
	wireVarint = 0
	wireI64    = 1
	wireBytes  = 2
	wireI32    = 5
)

// AppendBinary appends the Kafka record encoding of e (protobuf wire format,
// see event.proto) to dst and returns the extended slice. Zero and empty
// fields are omitted.
func AppendBinary(dst []byte, e *Event) []byte {
	dst = appendUint(dst, 1, SchemaVersion)
	dst = appendUint(dst, 2, uint64(e.Type))
	dst = appendStr(dst, 3, e.ID)
	dst = appendStr(dst, 4, e.UserID)
	dst = appendStr(dst, 5, e.DeviceID)
	dst = appendStr(dst, 6, e.SessionID)
	dst = appendStr(dst, 7, e.Country)
	dst = appendInt(dst, 8, e.TS)
	dst = appendInt(dst, 9, e.EventTime)
	dst = appendInt(dst, 10, e.SentAt)
	dst = appendInt(dst, 11, e.ReceivedAt)
	dst = appendInt(dst, 12, e.ClockOffsetMs)
	dst = appendUint(dst, 13, uint64(e.Source))
	dst = appendStr(dst, 14, e.KeyID)
	dst = appendStr(dst, 15, e.EdgeCountry)
	dst = appendUint(dst, 16, uint64(e.Has))
	dst = appendStr(dst, 20, e.QuestID)
	dst = appendStr(dst, 21, e.DropID)
	dst = appendStr(dst, 22, e.CreatorID)
	dst = appendStr(dst, 23, e.ClaimID)
	dst = appendStr(dst, 24, e.Reason)
	dst = appendStr(dst, 25, e.AuctionID)
	dst = appendStr(dst, 26, e.Placement)
	dst = appendStr(dst, 27, e.BidderID)
	dst = appendStr(dst, 28, e.Outcome)
	dst = appendStr(dst, 29, e.OfferID)
	dst = appendStr(dst, 30, e.OrderID)
	dst = appendStr(dst, 31, e.PayoutID)
	dst = appendStr(dst, 32, e.Currency)
	dst = appendStr(dst, 33, e.Title)
	dst = appendInt(dst, 40, e.AmountMicros)
	dst = appendInt(dst, 41, e.PriceMicros)
	dst = appendInt(dst, 42, e.FloorMicros)
	dst = appendInt(dst, 43, e.ClearingMicros)
	dst = appendInt(dst, 44, e.LatencyMs)
	dst = appendInt(dst, 45, e.DurationMs)
	dst = appendInt(dst, 46, e.MinDurationMs)
	dst = appendInt(dst, 47, e.MaxDurationMs)
	dst = appendInt(dst, 48, e.Inventory)
	dst = appendInt(dst, 49, e.StartsAt)
	dst = appendInt(dst, 50, e.EndsAt)
	dst = appendStr(dst, 60, e.Extra)
	return dst
}

func appendTag(dst []byte, num, wire uint64) []byte {
	return binary.AppendUvarint(dst, num<<3|wire)
}

func appendUint(dst []byte, num, v uint64) []byte {
	if v == 0 {
		return dst
	}
	return binary.AppendUvarint(appendTag(dst, num, wireVarint), v)
}

func appendInt(dst []byte, num uint64, v int64) []byte {
	return appendUint(dst, num, uint64(v))
}

func appendStr(dst []byte, num uint64, s string) []byte {
	if s == "" {
		return dst
	}
	dst = binary.AppendUvarint(appendTag(dst, num, wireBytes), uint64(len(s)))
	return append(dst, s...)
}

// DecodeBinary decodes a record written by AppendBinary into e, which it
// resets first. The strings of e share one allocation (a copy of b), so b
// may be reused after the call. Unknown fields are skipped.
func DecodeBinary(b []byte, e *Event) error {
	*e = Event{}
	if len(b) == 0 {
		return ErrCorrupt
	}
	return decode(string(b), e) // one allocation backs every string field
}

// DecodeBinaryShared is DecodeBinary without the copy: the strings of e
// are b's bytes, so b must not change while they are in use (a Kafka
// record's value, which the client never reuses). It allocates nothing.
// A string kept past the record must be cloned, or it keeps all of b's
// allocation alive.
func DecodeBinaryShared(b []byte, e *Event) error {
	*e = Event{}
	if len(b) == 0 {
		return ErrCorrupt
	}
	return decode(unsafe.String(unsafe.SliceData(b), len(b)), e)
}

func decode(s string, e *Event) error {
	var version uint64
	for i := 0; i < len(s); {
		// One-byte varints (tags, lengths, small numbers) are most; the
		// tags of fields 16 and up take two bytes.
		key, n := uint64(s[i]), 1
		if key >= 0x80 {
			if i+1 < len(s) && s[i+1] < 0x80 {
				key, n = key&0x7f|uint64(s[i+1])<<7, 2
			} else if key, n = uvarint(s[i:]); n <= 0 {
				return ErrCorrupt
			}
		}
		i += n
		num, wire := key>>3, key&7
		switch wire {
		case wireVarint:
			if i == len(s) {
				return ErrCorrupt
			}
			v, n := uint64(s[i]), 1
			if v >= 0x80 {
				if v, n = uvarint(s[i:]); n <= 0 {
					return ErrCorrupt
				}
			}
			i += n
			if !storeInt(e, num, int64(v)) {
				setNum(e, num, v, &version)
			}
		case wireBytes:
			if i == len(s) {
				return ErrCorrupt
			}
			l, n := uint64(s[i]), 1
			if l >= 0x80 {
				if l, n = uvarint(s[i:]); n <= 0 {
					return ErrCorrupt
				}
			}
			if l > uint64(len(s)-i-n) {
				return ErrCorrupt
			}
			i += n
			storeStr(e, num, s[i:i+int(l)])
			i += int(l)
		default:
			if i = skipFixed(s, i, wire); i < 0 {
				return ErrCorrupt
			}
		}
	}
	if version != SchemaVersion {
		return fmt.Errorf("%w: schema version %d, want %d", ErrCorrupt, version, SchemaVersion)
	}
	if !e.Type.Valid() {
		return fmt.Errorf("%w: unknown type %d", ErrCorrupt, e.Type)
	}
	return nil
}

// FieldVisitor receives the fields of a record from ScanBinary: Varint
// the numeric ones (the type and source as their numbers, signed values
// as uint64 bit patterns), Bytes the strings, each with its field number
// in event.proto.
type FieldVisitor interface {
	Varint(num, v uint64)
	Bytes(num uint64, s string)
}

// ScanBinary walks a record written by AppendBinary, handing v every field
// but the schema version, in record order; s is the record (as a string,
// so the strings v gets are views of it: pass string(b) to copy, or
// unsafe.String over bytes that outlive their use). It checks what
// DecodeBinary checks: the wire format, the schema version and a valid
// type; on ErrCorrupt v may have seen part of the record. Unknown fields
// are skipped. (DecodeBinary has a loop of its own: calling a visitor
// per field would cost it about a quarter of its speed.)
func ScanBinary(s string, v FieldVisitor) error {
	if len(s) == 0 {
		return ErrCorrupt
	}
	var version, typ uint64
	for i := 0; i < len(s); {
		key, n := varint(s[i:])
		if n <= 0 {
			return ErrCorrupt
		}
		i += n
		switch num, wire := key>>3, key&7; wire {
		case wireVarint:
			x, n := varint(s[i:])
			if n <= 0 {
				return ErrCorrupt
			}
			i += n
			switch num {
			case 1:
				version = x
				continue
			case 2:
				typ = x
			}
			v.Varint(num, x)
		case wireBytes:
			l, n := varint(s[i:])
			if n <= 0 || l > uint64(len(s)-i-n) {
				return ErrCorrupt
			}
			i += n
			v.Bytes(num, s[i:i+int(l)])
			i += int(l)
		default:
			if i = skipFixed(s, i, wire); i < 0 {
				return ErrCorrupt
			}
		}
	}
	if version != SchemaVersion {
		return fmt.Errorf("%w: schema version %d, want %d", ErrCorrupt, version, SchemaVersion)
	}
	if typ == 0 || typ >= uint64(numTypes) {
		return fmt.Errorf("%w: unknown type %d", ErrCorrupt, typ)
	}
	return nil
}

// varint reads the varint at the start of s, a one-byte one without the
// loop; n <= 0 for a corrupt or missing one.
func varint(s string) (x uint64, n int) {
	if len(s) > 0 && s[0] < 0x80 {
		return uint64(s[0]), 1
	}
	return uvarint(s)
}

// skipFixed returns where the fixed-width field of wire type wire at s[i:]
// ends, or -1 for a wire type that is not fixed-width or a truncated
// field.
func skipFixed(s string, i int, wire uint64) int {
	switch {
	case wire == wireI64 && len(s)-i >= 8:
		return i + 8
	case wire == wireI32 && len(s)-i >= 4:
		return i + 4
	}
	return -1
}

// uvarint is binary.Uvarint over a string, so decoding needs no []byte.
// A varint of at most 8 bytes with 8 bytes to read (two-byte tags,
// timestamps) is decoded from one 64-bit load without the loop.
func uvarint(s string) (uint64, int) {
	if len(s) >= 8 {
		w := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		if m := ^w & 0x8080808080808080; m != 0 {
			// The lowest clear high bit ends the varint: keep its bytes,
			// then close the gaps of the continuation bits.
			w &= (m&-m)<<1 - 1
			x := w&0x7f | w>>1&(0x7f<<7) | w>>2&(0x7f<<14) | w>>3&(0x7f<<21) |
				w>>4&(0x7f<<28) | w>>5&(0x7f<<35) | w>>6&(0x7f<<42) | w>>7&(0x7f<<49)
			return x, (bits.TrailingZeros64(m) + 1) / 8
		}
	}
	var x uint64
	var shift uint
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		c := s[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				return 0, -1
			}
			return x | uint64(c)<<shift, i + 1
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	return 0, 0
}

// setNum sets the numeric fields that need more than a store (the
// version, the type, the source, the presence bits); storeInt does the
// int64 ones.
func setNum(e *Event, num, v uint64, version *uint64) {
	switch num {
	case 1:
		*version = v
	case 2:
		if v < uint64(numTypes) {
			e.Type = Type(v)
		} else {
			e.Type = TypeInvalid
		}
	case 13:
		e.Source = Source(v)
	case 16:
		e.Has = uint32(v)
	}
}

package processors

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/questline/questline/processors/latency"
	"github.com/questline/questline/processors/lift"
	"github.com/questline/questline/processors/quest"
	"github.com/questline/questline/processors/yield"
)

// partial is the value of a questline.window.partials record: one source
// partition's row of a window table, or (Table empty) a source's watermark
// marker. A row's key is table|identity|source, so compaction keeps the
// latest partial of every source; a marker's is wm|source. On the topic it
// is written by appendBinary and read by decodePartial (which also reads
// the JSON envelope written before the binary one).
type partial struct {
	Table    string          `json:"t,omitempty"`
	Identity string          `json:"i,omitempty"`
	Source   int32           `json:"s"`
	Version  uint64          `json:"v,omitempty"`
	Row      json.RawMessage `json:"r,omitempty"`
	// Until is the source's Done watermark (pipeline.Partition.Done)
	// from which the source never emits this identity again (the window
	// closed: end + lateness, plus the clean pass's lag in the clean
	// scope), so the merge stage may forget the identity once every
	// source's marker has passed it.
	Until int64 `json:"u,omitempty"`
	// Watermark is a marker's: the source's Done watermark (before
	// session 5 its event-time watermark, which the clean pass's rows
	// could follow; see docs/processors.md, "Merge stage").
	Watermark int64 `json:"w,omitempty"`

	// decoded is Row decoded by the table's merger (merger.decode), kept
	// by the merge stage so that a partial is decoded once, not at every
	// merge of its identity. Never on the topic.
	decoded any
}

// partialsV1 is the first byte of a binary partial (appendBinary). The
// envelope written before it was a JSON object, whose first byte is '{'.
const partialsV1 byte = 1

// appendBinary appends p's binary envelope to b: the version byte
// partialsV1, then Source, Version, Until and Watermark as varints, Table
// and Identity each as a uvarint length and the bytes, and the rest of the
// value is Row (the row's JSON, as before). Fields are only ever added
// after Identity with a new version byte.
func (p *partial) appendBinary(b []byte) []byte {
	b = append(b, partialsV1)
	b = binary.AppendVarint(b, int64(p.Source))
	b = binary.AppendUvarint(b, p.Version)
	b = binary.AppendVarint(b, p.Until)
	b = binary.AppendVarint(b, p.Watermark)
	b = binary.AppendUvarint(b, uint64(len(p.Table)))
	b = append(b, p.Table...)
	b = binary.AppendUvarint(b, uint64(len(p.Identity)))
	b = append(b, p.Identity...)
	return append(b, p.Row...)
}

var errPartialTruncated = errors.New("processors: truncated partial")

// decodePartial reads a partial written by appendBinary or, for records
// written before it, by encoding/json. A binary partial's Row aliases v.
func decodePartial(v []byte, p *partial) error {
	*p = partial{}
	if len(v) == 0 || v[0] != partialsV1 {
		return json.Unmarshal(v, p)
	}
	v = v[1:]
	uvarint := func() uint64 {
		x, n := binary.Uvarint(v)
		if n <= 0 {
			v = nil
			return 0
		}
		v = v[n:]
		return x
	}
	// binary.AppendVarint writes the zig-zag form as a uvarint.
	varint := func() int64 {
		u := uvarint()
		return int64(u>>1) ^ -int64(u&1)
	}
	str := func() (string, bool) {
		n := uvarint()
		if v == nil || n > uint64(len(v)) {
			return "", false
		}
		s := string(v[:n])
		v = v[n:]
		return s, true
	}
	source := varint()
	p.Version = uvarint()
	p.Until = varint()
	p.Watermark = varint()
	if v == nil || source < -1<<31 || source >= 1<<31 {
		return errPartialTruncated
	}
	p.Source = int32(source)
	n := uvarint()
	if v == nil || n > uint64(len(v)) {
		return errPartialTruncated
	}
	p.Table = tableName(v[:n])
	v = v[n:]
	var ok bool
	if p.Identity, ok = str(); !ok {
		return errPartialTruncated
	}
	if len(v) > 0 {
		p.Row = v
	}
	return nil
}

func (p *partial) key() string {
	if p.Table == "" {
		return "wm|" + strconv.Itoa(int(p.Source))
	}
	return p.Table + "|" + p.Identity + "|" + strconv.Itoa(int(p.Source))
}

func questIdentity(r *quest.Row) string {
	return fmt.Sprintf("%d|%s|%s", r.Start, r.Scope, r.QuestID)
}

func latencyIdentity(r *latency.Row) string {
	return fmt.Sprintf("%d|%s|%s", r.Start, r.Scope, r.QuestID)
}

func yieldIdentity(r *yield.Row) string {
	return fmt.Sprintf("%d|%s|%s|%s", r.Start, r.Scope, r.Placement, r.BidderID)
}

func integrityIdentity(r *yield.IntegrityRow) string {
	return fmt.Sprintf("%d|%s|%s|%s", r.Start, r.Scope, r.Placement, r.Kind)
}

func liftIdentity(r *lift.Row) string {
	return fmt.Sprintf("%s|%s|%d|%v", r.DropID, r.Scope, r.UpdatedAt, r.Final)
}

// tableName returns b as a string, without a copy for the known tables.
func tableName(b []byte) string {
	switch string(b) {
	case "":
		return ""
	case tQuest:
		return tQuest
	case tLatency:
		return tLatency
	case tYield:
		return tYield
	case tIntegrity:
		return tIntegrity
	case tLift:
		return tLift
	}
	return string(b)
}

// Table names of the partials.
const (
	tQuest     = "quest_completion"
	tLatency   = "conversion_latency"
	tYield     = "offer_yield"
	tIntegrity = "bidstream_integrity"
	tLift      = "creator_lift"
)

func newPartial[T any](table, identity string, source int32, version uint64, until int64, row *T) (partial, error) {
	b, err := json.Marshal(row)
	if err != nil {
		return partial{}, err
	}
	return partial{Table: table, Identity: identity, Source: source, Version: version, Until: until, Row: b}, nil
}

// addPartials passes a partial of every row, from source, to add; meta
// gives a row's identity, version and Until.
func addPartials[T any](rows []T, table string, source int32, add func(partial, error) error, meta func(*T) (string, uint64, int64)) error {
	for i := range rows {
		r := &rows[i]
		id, version, until := meta(r)
		if err := add(newPartial(table, id, source, version, until, r)); err != nil {
			return err
		}
	}
	return nil
}

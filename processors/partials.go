package processors

import (
	"encoding/json"
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
// latest partial of every source; a marker's is wm|source.
type partial struct {
	Table    string          `json:"t,omitempty"`
	Identity string          `json:"i,omitempty"`
	Source   int32           `json:"s"`
	Version  uint64          `json:"v,omitempty"`
	Row      json.RawMessage `json:"r,omitempty"`
	// Until is the source watermark from which the source never emits
	// this identity again (the window closed: end + lateness, plus the
	// clean pass's lag in the clean scope), so the merge stage may forget
	// the identity once every source's watermark has passed it.
	Until int64 `json:"u,omitempty"`
	// Watermark is a marker's: the source's event-time watermark.
	Watermark int64 `json:"w,omitempty"`
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

package processors

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/questline/questline/processors/latency"
	"github.com/questline/questline/processors/lift"
	"github.com/questline/questline/processors/quest"
	"github.com/questline/questline/processors/tables"
	"github.com/questline/questline/processors/window"
	"github.com/questline/questline/processors/yield"
	ch "github.com/questline/questline/sinks/clickhouse"
)

// merger merges the partials of one table and writes the merged rows.
type merger interface {
	// decode decodes a partial's row (partial.Row), once per partial.
	decode(row []byte) (any, error)
	// merge merges the decoded rows of the latest partial of every source
	// of one identity and buffers the merged row.
	merge(rows []any) error
	flush(ctx context.Context) error
}

type tableMerger[T any] struct {
	merge1 func([]T) []T
	rows   []T // merge's scratch
	w      *ch.Writer[T]
	name   string
	refs   *refusals
	seen   func(*T) // if set, sees every merged row
}

func (m *tableMerger[T]) decode(row []byte) (any, error) {
	r := new(T)
	if err := json.Unmarshal(row, r); err != nil {
		return nil, err
	}
	return r, nil
}

func (m *tableMerger[T]) merge(parts []any) error {
	rows := m.rows[:0]
	for _, p := range parts {
		r, ok := p.(*T)
		if !ok {
			return fmt.Errorf("processors: %s merger given a %T", m.name, p)
		}
		rows = append(rows, *r)
	}
	m.rows = rows
	merged := m.merge1(rows)
	if len(merged) != 1 {
		return fmt.Errorf("processors: %d merged rows for one identity", len(merged))
	}
	if m.seen != nil {
		m.seen(&merged[0])
	}
	m.w.Add(merged[0])
	return nil
}

func (m *tableMerger[T]) flush(ctx context.Context) error {
	return flushRefusing(ctx, m.w, m.name, m.refs)
}

func newMerger[T any](c *ch.Client, table ch.Table[T], merge func([]T) []T, refs *refusals, seen func(*T)) (merger, error) {
	w, err := ch.NewWriter(c, table)
	if err != nil {
		return nil, err
	}
	return &tableMerger[T]{merge1: merge, w: w, name: table.Name, refs: refs, seen: seen}, nil
}

// newMergers returns a merger per window table; g sees the merged yield
// and integrity rows.
func newMergers(c *ch.Client, refs *refusals, g *yieldGauges) (map[string]merger, error) {
	out := map[string]merger{}
	var err error
	add := func(name string, m merger, e error) {
		if e != nil && err == nil {
			err = e
		}
		out[name] = m
	}
	m, e := newMerger(c, tables.QuestCompletion, quest.Merge, refs, nil)
	add(tQuest, m, e)
	m, e = newMerger(c, tables.ConversionLatency, latency.Merge, refs, nil)
	add(tLatency, m, e)
	m, e = newMerger(c, tables.OfferYield, yield.Merge, refs, g.offer)
	add(tYield, m, e)
	m, e = newMerger(c, tables.BidstreamIntegrity, yield.MergeIntegrity, refs, g.integrityRow)
	add(tIntegrity, m, e)
	m, e = newMerger(c, tables.CreatorLift, lift.Merge, refs, nil)
	add(tLift, m, e)
	return out, err
}

// mergeState holds the latest partial of every (identity, source) of one
// partials partition, and every source's watermark.
type mergeState struct {
	sources int                          // partitions of questline.events
	latest  map[string]map[int32]partial // table|identity → source → partial
	until   map[string]int64             // table|identity → greatest Until
	dirty   map[string]bool
	srcWM   map[int32]int64
	next    int64 // the next offset of the partials partition to apply
	// snapAt is when the partition's last snapshot was taken (or it was
	// assigned): it is due for the next SnapshotInterval after.
	snapAt time.Time
}

func newMergeState(sources int) *mergeState {
	return &mergeState{sources: sources, latest: map[string]map[int32]partial{},
		until: map[string]int64{}, dirty: map[string]bool{}, srcWM: map[int32]int64{}}
}

// add keeps p if it is at least as informed as what the source sent before;
// a marker raises its source's watermark.
func (s *mergeState) add(p partial) {
	if p.Table == "" {
		s.srcWM[p.Source] = max(s.srcWM[p.Source], p.Watermark)
		return
	}
	id := p.Table + "|" + p.Identity
	bySource := s.latest[id]
	if bySource == nil {
		bySource = map[int32]partial{}
		s.latest[id] = bySource
	}
	if old, ok := bySource[p.Source]; ok && old.Version > p.Version {
		return
	}
	bySource[p.Source] = p
	s.until[id] = max(s.until[id], p.Until)
	s.dirty[id] = true
}

// emit merges every dirty identity into its table's writer. A partial's
// row is decoded the first time it is merged and kept decoded (its Row,
// which may alias a fetched record, is dropped).
func (s *mergeState) emit(ms map[string]merger) error {
	var parts []any
	for id := range s.dirty {
		bySource := s.latest[id]
		parts = parts[:0]
		var table string // every source's partial of an identity is of its table
		for src, p := range bySource {
			table = p.Table
			if p.decoded == nil {
				m := ms[p.Table]
				if m == nil {
					return fmt.Errorf("processors: partial of unknown table %q", p.Table)
				}
				d, err := m.decode(p.Row)
				if err != nil {
					return fmt.Errorf("processors: partial %s: %w", p.key(), err)
				}
				p.decoded, p.Row = d, nil
				bySource[src] = p
			}
			parts = append(parts, p.decoded)
		}
		if len(parts) == 0 {
			continue
		}
		if err := ms[table].merge(parts); err != nil {
			return err
		}
	}
	clear(s.dirty)
	return nil
}

// low returns the lowest of the sources' watermarks; window.None until
// every source has sent a marker.
func (s *mergeState) low() int64 {
	if len(s.srcWM) < s.sources {
		return window.None
	}
	low := int64(1<<63 - 1)
	for _, w := range s.srcWM {
		low = min(low, w)
	}
	return low
}

// evict forgets, once emitted, every identity that no source will send
// again — every source's watermark has passed its Until — and returns the
// keys of their partials, for tombstones. A source that never sent a
// marker keeps everything.
func (s *mergeState) evict() (keys []string) {
	low := s.low()
	if low == window.None {
		return nil
	}
	for id, u := range s.until {
		if u > low || s.dirty[id] {
			continue
		}
		for _, p := range s.latest[id] {
			keys = append(keys, p.key())
		}
		delete(s.latest, id)
		delete(s.until, id)
	}
	return keys
}

package processors

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/questline/questline/processors/latency"
	"github.com/questline/questline/processors/lift"
	"github.com/questline/questline/processors/quest"
	"github.com/questline/questline/processors/tables"
	"github.com/questline/questline/processors/yield"
	ch "github.com/questline/questline/sinks/clickhouse"
)

// merger merges the partials of one table and writes the merged rows.
type merger interface {
	// merge decodes the latest partial of every source of one identity
	// and buffers the merged row.
	merge(parts []json.RawMessage) error
	flush(ctx context.Context) error
}

type tableMerger[T any] struct {
	merge1 func([]T) []T
	w      *ch.Writer[T]
}

func (m *tableMerger[T]) merge(parts []json.RawMessage) error {
	rows := make([]T, len(parts))
	for i, p := range parts {
		if err := json.Unmarshal(p, &rows[i]); err != nil {
			return err
		}
	}
	merged := m.merge1(rows)
	if len(merged) != 1 {
		return fmt.Errorf("processors: %d merged rows for one identity", len(merged))
	}
	m.w.Add(merged[0])
	return nil
}

func (m *tableMerger[T]) flush(ctx context.Context) error {
	refused, err := m.w.Flush(ctx)
	if err != nil {
		return err
	}
	if len(refused) > 0 {
		return fmt.Errorf("processors: ClickHouse refused %d merged rows: %v", len(refused), refused[0].Err)
	}
	return nil
}

func newMerger[T any](c *ch.Client, table ch.Table[T], merge func([]T) []T) (merger, error) {
	w, err := ch.NewWriter(c, table)
	if err != nil {
		return nil, err
	}
	return &tableMerger[T]{merge1: merge, w: w}, nil
}

func newMergers(c *ch.Client) (map[string]merger, error) {
	out := map[string]merger{}
	var err error
	add := func(name string, m merger, e error) {
		if e != nil && err == nil {
			err = e
		}
		out[name] = m
	}
	m, e := newMerger(c, tables.QuestCompletion, quest.Merge)
	add(tQuest, m, e)
	m, e = newMerger(c, tables.ConversionLatency, latency.Merge)
	add(tLatency, m, e)
	m, e = newMerger(c, tables.OfferYield, yield.Merge)
	add(tYield, m, e)
	m, e = newMerger(c, tables.BidstreamIntegrity, yield.MergeIntegrity)
	add(tIntegrity, m, e)
	m, e = newMerger(c, tables.CreatorLift, lift.Merge)
	add(tLift, m, e)
	return out, err
}

// mergeState holds the latest partial of every (identity, source).
type mergeState struct {
	latest map[string]map[int32]partial // table|identity → source → partial
	dirty  map[string]bool
}

func newMergeState() *mergeState {
	return &mergeState{latest: map[string]map[int32]partial{}, dirty: map[string]bool{}}
}

// add keeps p if it is at least as informed as what the source sent before.
func (s *mergeState) add(p partial) {
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
	s.dirty[id] = true
}

// emit merges every dirty identity into its table's writer.
func (s *mergeState) emit(ms map[string]merger) error {
	for id := range s.dirty {
		bySource := s.latest[id]
		var table string
		parts := make([]json.RawMessage, 0, len(bySource))
		for _, p := range bySource {
			table = p.Table
			parts = append(parts, p.Row)
		}
		m := ms[table]
		if m == nil {
			return fmt.Errorf("processors: partial of unknown table %q", table)
		}
		if err := m.merge(parts); err != nil {
			return err
		}
	}
	clear(s.dirty)
	return nil
}

package pipeline

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/internal/streamgen"
)

// TestRowDump is a tool, not a check: with QUESTLINE_DUMP=file it writes
// every row of every flush (sorted within a flush) for six streams (four
// random, one with 15 minutes of disorder, one with retried copies), both
// scopes, 1 and 4 partitions, and with QUESTLINE_SNAPDIR=dir the rows after
// restoring, halfway through each, a snapshot read from dir (written there
// first when QUESTLINE_WRITESNAP is set). Run it in two trees and compare
// the files to show that a change of layout or encoding changes no row,
// and that snapshots of the old tree restore in the new one
// (docs/benchmarks/processors.md, session 5).
func TestRowDump(t *testing.T) {
	out := os.Getenv("QUESTLINE_DUMP")
	if out == "" {
		t.Skip("a tool: set QUESTLINE_DUMP to the file to write")
	}
	snapdir := os.Getenv("QUESTLINE_SNAPDIR")
	writeSnap := os.Getenv("QUESTLINE_WRITESNAP") != ""
	// QUESTLINE_DUMP_LOG=1: the clean pass reads its events again from
	// the records (ReadCleanFrom, as the source stage does) instead of
	// holding them.
	fromLog := os.Getenv("QUESTLINE_DUMP_LOG") != ""
	var buf bytes.Buffer
	streams := map[string][]event.Event{}
	for s := uint64(1); s <= 4; s++ {
		streams[fmt.Sprintf("rand%d", s)] = streamgen.Generate(streamgen.Config{Seed: s, Events: 30000, Users: 400, Gap: 40, Disorder: 5000, Quests: 20, Drops: 3})
	}
	streams["late"] = streamgen.Generate(streamgen.Config{Seed: 7, Events: 30000, Users: 300, Gap: 300, Disorder: 15 * 60 * 1000, Quests: 10, Drops: 3})
	rt := streamgen.Generate(streamgen.Config{Seed: 9, Events: 50000, Users: 2000, Gap: 20, Disorder: 5000, Quests: 20, Drops: 3})
	var retried []event.Event
	for i, e := range rt {
		if e.ID == "" {
			e.ID = fmt.Sprintf("id%d", i)
		}
		retried = append(retried, e)
		if i%7 == 0 {
			c := e
			c.EventTime += 3000
			retried = append(retried, c)
		}
	}
	streams["retried"] = retried
	names := []string{"rand1", "rand2", "rand3", "rand4", "late", "retried"}
	for _, name := range names {
		evs := streams[name]
		for _, nparts := range []int{1, 4} {
			parts := streamgen.Partition(evs, nparts)
			for pi, part := range parts {
				cfg := DefaultConfig()
				p, err := New(cfg, benchCatalog())
				if err != nil {
					t.Fatal(err)
				}
				tag := fmt.Sprintf("%s/%d/%d", name, nparts, pi)
				feed := &logFeed{read: fromLog}
				feed.use(p)
				for i := range part {
					feed.add(&part[i])
					if i%97 == 0 {
						dumpOut(&buf, tag, i, p.Flush(p.Watermark()))
						p.Reset()
					}
					if i == len(part)/2 && snapdir != "" {
						f := fmt.Sprintf("%s/%s-%d-%d.snap", snapdir, name, nparts, pi)
						if writeSnap {
							var sb bytes.Buffer
							if err := p.Snapshot(&sb); err != nil {
								t.Fatal(err)
							}
							os.WriteFile(f, sb.Bytes(), 0o644)
						}
						sb, err := os.ReadFile(f)
						if err != nil {
							t.Fatal(err)
						}
						q, err := Restore(cfg, benchCatalog(), bytes.NewReader(sb))
						if err != nil {
							t.Fatal(err)
						}
						p = q
						feed.use(p)
						fmt.Fprintf(&buf, "restored %s at %d\n", tag, i)
					}
				}
				dumpOut(&buf, tag, -1, p.Flush(p.Watermark()+3_600_000*30))
			}
		}
	}
	os.WriteFile(out, buf.Bytes(), 0o644)
}

func dumpOut(buf *bytes.Buffer, tag string, i int, o *Output) {
	var lines []string
	lines = dumpRows(lines, "quest", o.Quest)
	lines = dumpRows(lines, "latency", o.Latency)
	lines = dumpRows(lines, "conv", o.Conversions)
	lines = dumpRows(lines, "yield", o.Yield)
	lines = dumpRows(lines, "integ", o.Integrity)
	lines = dumpRows(lines, "lift", o.Lift)
	lines = dumpRows(lines, "bots", o.Bots)
	lines = dumpRows(lines, "late", o.Late)
	slices.Sort(lines)
	fmt.Fprintf(buf, "== %s %d (%d rows)\n", tag, i, len(lines))
	for _, l := range lines {
		buf.WriteString(l)
		buf.WriteByte('\n')
	}
}

// dumpRows appends a line per row, the kind and the row's fields.
func dumpRows[T any](lines []string, kind string, rows []T) []string {
	for _, r := range rows {
		lines = append(lines, fmt.Sprintf("%s %+v", kind, r))
	}
	return lines
}

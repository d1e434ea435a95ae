package processors

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// runMergeStage runs the merge stage alone (runStageAlone).
func runMergeStage(ctx context.Context, cfg Config, sources int32, reg prometheus.Registerer) error {
	return runStageAlone(ctx, cfg, sources, reg, newMergeStage)
}

// mergedRows returns the tables the merge stage writes (dumpQueries').
func (f *fixture) mergedRows(t *testing.T, db string) string {
	var b strings.Builder
	for _, q := range dumpQueries {
		if !strings.Contains(q, "bot_signals") && !strings.Contains(q, "quest_conversions") && !strings.Contains(q, "window_late_events") {
			out, err := f.query(fmt.Sprintf(q, db))
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString(out + "--\n")
		}
	}
	return b.String()
}

// TestMergeStageRestoresItsSnapshot: the merge stage stopped after the
// first half of every partition of the partials topic and restarted once
// the second half is there restores its snapshots and reads only the
// second half (questline_processor_merge_records_total), and the merged
// tables end identical to an uninterrupted run's; with snapshots damaged
// or missing, those partitions are re-read from their start, with the
// same rows (restartHalfway).
func TestMergeStageRestoresItsSnapshot(t *testing.T) {
	f := newFixture(t, 6000, true)
	ref := f.newDB(t)
	f.runUntilStable(t, f.config(t, ref, "mrgref", t.TempDir()), 1)
	want := f.mergedRows(t, ref)
	if strings.Count(want, "\n") < 100 {
		t.Fatalf("the reference has few merged rows:\n%s", want)
	}
	f.restartHalfway(t, stageRestart{
		topic: TopicPartials, group: "-merge", path: mergeSnapshotPath,
		records: "questline_processor_merge_records_total",
		counts:  func(r *kgo.Record) bool { return len(r.Value) > 0 }, // the reference's tombstones
		run: func(ctx context.Context, cfg Config, reg prometheus.Registerer) error {
			return runMergeStage(ctx, cfg, partitions, reg)
		},
		next: func(_ Config, dir string, p int32) (int64, bool, error) {
			ms, err := newMergers(nil, nil, newYieldGauges())
			if err != nil {
				return 0, false, err
			}
			st, ok, err := readMergeSnapshot(dir, p, ms, partitions)
			if !ok {
				return 0, ok, err
			}
			return st.next, ok, err
		},
		rows: f.mergedRows, want: want,
	})
}

package tables

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/questline/questline/event"
	"github.com/questline/questline/internal/chtest"
	"github.com/questline/questline/processors/bots"
	"github.com/questline/questline/processors/catalog"
	"github.com/questline/questline/processors/internal/streamgen"
	"github.com/questline/questline/processors/latency"
	"github.com/questline/questline/processors/lift"
	"github.com/questline/questline/processors/pipeline"
	"github.com/questline/questline/processors/quest"
	"github.com/questline/questline/processors/yield"
	ch "github.com/questline/questline/sinks/clickhouse"
)

var chs chtest.Shared

func TestMain(m *testing.M) { os.Exit(chs.Run(m)) }

const t0 = int64(1767225600000)

// emitted collects every row a pipeline emitted, all versions.
type emitted struct {
	quest   []quest.Row
	latency []latency.Row
	convs   []latency.Conversion
	lift    []lift.Row
	yield   []yield.Row
	integ   []yield.IntegrityRow
	bots    []bots.Row
	late    []pipeline.Late
}

func runPipeline(t *testing.T) *emitted {
	cat := catalog.New()
	for _, e := range []event.Event{
		{ID: "c1", Type: event.DropStarted, DropID: "drop0", CreatorID: "cr0", EventTime: t0 + 2*60_000},
		{ID: "c2", Type: event.DropEnded, DropID: "drop0", EventTime: t0 + 12*60_000},
	} {
		cat.Apply(&e)
	}
	cfg := pipeline.DefaultConfig()
	cfg.Bots.Velocity, cfg.Bots.ClaimBurst = 8, 2
	p, err := pipeline.New(cfg, cat)
	if err != nil {
		t.Fatal(err)
	}
	events := streamgen.Generate(streamgen.Config{Seed: 3, Events: 5000, Users: 30, Gap: 500, Disorder: 20_000})
	// A few events far behind the watermark: late.
	for i := 1000; i < 5000; i += 1000 {
		events[i].EventTime -= 40 * 60_000
	}
	var out emitted
	keep := func(o *pipeline.Output) {
		out.quest = append(out.quest, o.Quest...)
		for _, r := range o.Latency {
			r.Hist = r.Hist.Clone()
			out.latency = append(out.latency, r)
		}
		out.convs = append(out.convs, o.Conversions...)
		out.lift = append(out.lift, o.Lift...)
		for _, r := range o.Yield {
			r.Hist = r.Hist.Clone()
			out.yield = append(out.yield, r)
		}
		out.integ = append(out.integ, o.Integrity...)
		out.bots = append(out.bots, o.Bots...)
		out.late = append(out.late, o.Late...)
		p.Reset()
	}
	for i := range events {
		p.Add(&events[i])
		if i%250 == 0 {
			keep(p.Flush(p.Watermark()))
		}
	}
	p.Advance(p.Watermark() + 1e9)
	keep(p.Flush(p.Watermark()))
	if len(out.late) == 0 || len(out.lift) == 0 || len(out.convs) == 0 {
		t.Fatalf("weak stream: %d late, %d lift, %d conversions", len(out.late), len(out.lift), len(out.convs))
	}
	return &out
}

func write[T any](t *testing.T, c *ch.Client, table ch.Table[T], rows []T) {
	t.Helper()
	// Every row twice (a retried batch), in a shuffled order: FINAL must
	// still show the latest version of each identity.
	all := append(append([]T{}, rows...), rows...)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	w, err := ch.NewWriter(c, table)
	if err != nil {
		t.Fatal(err)
	}
	if refused, err := w.Write(context.Background(), all...); err != nil || len(refused) > 0 {
		t.Fatalf("%s: %v, %d refused", table.Name, err, len(refused))
	}
}

func TestWriteAndReadFinal(t *testing.T) {
	srv := chs.Server(t)
	ctx := context.Background()
	db := srv.NewDatabase(t)
	if err := ch.Migrate(ctx, srv.DSN(db), nil); err != nil {
		t.Fatal(err)
	}
	c, err := ch.Open(ctx, srv.DSN(db), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out := runPipeline(t)
	write(t, c, QuestCompletion, out.quest)
	write(t, c, ConversionLatency, out.latency)
	write(t, c, QuestConversions, out.convs)
	write(t, c, CreatorLift, out.lift)
	write(t, c, OfferYield, out.yield)
	write(t, c, BidstreamIntegrity, out.integ)
	write(t, c, BotSignals, out.bots)
	write(t, c, LateEvents, out.late)

	query := func(q string) string {
		t.Helper()
		s, err := srv.Query(ctx, strings.ReplaceAll(q, "DB.", db+"."))
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return strings.TrimSpace(s)
	}

	// quest_completion: the latest row per identity, as in Go.
	latestQ := map[string]quest.Row{}
	for _, r := range out.quest {
		latestQ[fmt.Sprint(r.Start, r.QuestID, r.Scope)] = r
	}
	var starts, nulls uint64
	for _, r := range latestQ {
		starts += r.Starts
		if r.CompletionRate() == nil {
			nulls++
		}
	}
	want := fmt.Sprintf("%d\t%d\t%d", len(latestQ), starts, nulls)
	if got := query("SELECT count(), sum(starts), countIf(completion_rate IS NULL) FROM DB.quest_completion FINAL"); got != want {
		t.Fatalf("quest_completion: %s, want %s", got, want)
	}
	if got := query("SELECT countIf(isNaN(completion_rate) OR isInfinite(completion_rate)) FROM DB.quest_completion FINAL WHERE completion_rate IS NOT NULL"); got != "0" {
		t.Fatalf("non-finite rates: %s", got)
	}

	// creator_lift: the ALIAS statistics equal Go's on the final rows.
	for _, r := range out.lift {
		if !r.Final {
			continue
		}
		s := r.Counts.Compute()
		got := query(fmt.Sprintf("SELECT lift, lift_ci_low, lift_ci_high, chance_to_win FROM DB.creator_lift FINAL WHERE drop_id = '%s' AND scope = '%s' AND final = 1", r.DropID, r.Scope))
		fields := strings.Split(got, "\t")
		for i, v := range []*float64{s.Lift, s.CILow, s.CIHigh, s.ChanceToWin} {
			if v == nil {
				if fields[i] != `\N` {
					t.Fatalf("lift %s %s field %d = %s, want NULL (%+v)", r.DropID, r.Scope, i, fields[i], r.Counts)
				}
				continue
			}
			f, err := strconv.ParseFloat(fields[i], 64)
			if err != nil || math.Abs(f-*v) > 1e-9 {
				t.Fatalf("lift %s %s field %d = %s, want %v (%+v)", r.DropID, r.Scope, i, fields[i], *v, r.Counts)
			}
		}
	}

	// offer_yield: ratios and the latency percentiles as in Go.
	latestY := map[string]yield.Row{}
	for _, r := range out.yield {
		latestY[fmt.Sprint(r.Start, r.Placement, r.BidderID, r.Scope)] = r
	}
	var sumFill, sumECPM, sumWin float64
	var sumP99 int64
	for _, r := range latestY {
		if v := r.FillRate(); v != nil {
			sumFill += *v
		}
		if v := r.ECPM(); v != nil {
			sumECPM += *v
		}
		if v := r.WinRate(); v != nil {
			sumWin += *v
		}
		p, _ := r.LatencyQuantile(99)
		sumP99 += p
	}
	got := strings.Split(query("SELECT count(), sum(fill_rate), sum(ecpm), sum(win_rate), sum(ifNull(bid_latency_p99_ms, 0)) FROM DB.offer_yield FINAL"), "\t")
	if got[0] != strconv.Itoa(len(latestY)) || got[4] != strconv.FormatInt(sumP99, 10) {
		t.Fatalf("offer_yield: %v, want %d rows, p99 sum %d", got, len(latestY), sumP99)
	}
	for i, w := range []float64{sumFill, sumECPM, sumWin} {
		f, _ := strconv.ParseFloat(got[1+i], 64)
		if math.Abs(f-w) > 1e-6*math.Max(1, math.Abs(w)) {
			t.Fatalf("offer_yield ratio %d: %v, want %v", i, f, w)
		}
	}

	// The other tables: one row per identity.
	for table, n := range map[string]int{
		"conversion_latency":  distinct(out.latency, func(r latency.Row) string { return fmt.Sprint(r.Start, r.QuestID, r.Scope) }),
		"quest_conversions":   distinct(out.convs, func(c latency.Conversion) string { return c.EventID }),
		"bidstream_integrity": distinct(out.integ, func(r yield.IntegrityRow) string { return fmt.Sprint(r.Start, r.Placement, r.Kind, r.Scope) }),
		"bot_signals":         distinct(out.bots, func(r bots.Row) string { return fmt.Sprint(r.Start, r.EntityType, r.EntityID) }),
		"window_late_events":  distinct(out.late, func(l pipeline.Late) string { return l.Processor + l.EventID }),
	} {
		if got := query("SELECT count() FROM DB." + table + " FINAL"); got != strconv.Itoa(n) {
			t.Fatalf("%s: %s rows, want %d", table, got, n)
		}
	}
}

func distinct[T any](rows []T, key func(T) string) int {
	m := map[string]bool{}
	for _, r := range rows {
		m[key(r)] = true
	}
	return len(m)
}

// TestDocumentedQueries runs the queries of docs/processors.md
// ("Querying the window tables") on the test server.
func TestDocumentedQueries(t *testing.T) {
	srv := chs.Server(t)
	ctx := context.Background()
	db := srv.NewDatabase(t)
	if err := ch.Migrate(ctx, srv.DSN(db), nil); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/processors.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	start := strings.Index(text, "## Querying the window tables")
	block := text[start:]
	block = block[strings.Index(block, "```sql")+len("```sql"):]
	block = block[:strings.Index(block, "```")]
	n := 0
	for _, q := range strings.Split(block, ";") {
		var lines []string
		for _, l := range strings.Split(q, "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "--") {
				lines = append(lines, l)
			}
		}
		if len(lines) == 0 {
			continue
		}
		sql := strings.ReplaceAll(strings.Join(lines, " "), "questline.", db+".")
		if _, err := srv.Query(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		n++
	}
	if n < 5 {
		t.Fatalf("found %d queries", n)
	}
}

// TestReattributedConversion: a conversion re-attributed by a late
// completion (new quest, higher version) is one row, the new one.
func TestReattributedConversion(t *testing.T) {
	srv := chs.Server(t)
	ctx := context.Background()
	db := srv.NewDatabase(t)
	if err := ch.Migrate(ctx, srv.DSN(db), nil); err != nil {
		t.Fatal(err)
	}
	c, err := ch.Open(ctx, srv.DSN(db), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first := latency.Conversion{EventID: "e1", OrderID: "o1", UserID: "u", QuestID: "qa", ConversionTime: t0 + 60_000, CompletionTime: t0, LatencyMs: 60_000, Version: 1}
	second := first
	second.QuestID, second.CompletionTime, second.LatencyMs, second.Version = "qb", t0+30_000, 30_000, 2
	// The newer row first, then a replayed older one.
	write(t, c, QuestConversions, []latency.Conversion{second, first})
	got, err := srv.Query(ctx, "SELECT count(), any(quest_id), any(latency_ms) FROM "+db+".quest_conversions FINAL")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(got) != "1\tqb\t30000" {
		t.Fatalf("got %q", got)
	}
}

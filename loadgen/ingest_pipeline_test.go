package loadgen

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/event"
	"github.com/questline/questline/ingest"
	"github.com/questline/questline/kafka"
	"github.com/questline/questline/kafka/kafkatest"
	"github.com/questline/questline/loadgen/truthtest"
	"github.com/questline/questline/processors/catalog"
	"github.com/questline/questline/processors/pipeline"
	"github.com/questline/questline/processors/window"
)

// TestGroundTruthThroughIngest is the ground-truth test up to the
// processors' rows: loadgen → the real HTTP ingest (keys, gzip, skew
// correction, dedup) → Kafka (embedded broker, 4 partitions) → one
// processors/pipeline per partition, rows merged across partitions →
// compared with the truth. Only the ClickHouse sink is not in the loop.
func TestGroundTruthThroughIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("long: a full run through ingest and Kafka")
	}
	br := kafkatest.New(t, kafkatest.Partitions(4))
	cl, err := kafka.NewClient(br.Addrs(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	keys, err := ingest.NewKeyring([]string{"server-key-0001"}, []string{"client-key-0001"})
	if err != nil {
		t.Fatal(err)
	}
	lim, err := ingest.NewLimiter(ingest.KeyRate(1e7, 1e7))
	if err != nil {
		t.Fatal(err)
	}
	h, err := ingest.New(cl, ingest.Keys(keys), ingest.RateLimits(lim), ingest.Registerer(prometheus.NewRegistry()),
		ingest.TrustedProxies(netip.MustParsePrefix("127.0.0.0/8")))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	cfg := testConfig(45000)
	cfg.Seed = 11
	cfg.Rate = 60
	cfg.DropLength, cfg.Windows.AttributionWindow = 3*time.Minute, 5*time.Minute
	cfg.Concurrency = 4
	cfg.Origin = time.Now().Add(-40 * time.Minute)
	out := &tee{s: NewHTTPSender(srv.URL, "client-key-0001", "server-key-0001")}
	tr, err := Run(context.Background(), cfg, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Run.SendErrors != 0 || tr.Run.Rejected != 0 {
		t.Fatalf("%d send errors, %d rejected events", tr.Run.SendErrors, tr.Run.Rejected)
	}
	trueTime := map[string]int64{}
	ss := out.cs.sorted()
	for _, s := range ss {
		for i := range s.b.Events {
			trueTime[s.b.Events[i].ID] = s.b.TrueTime(i)
		}
	}

	// Read the topic back: every event once, at (about) its true time.
	cons, err := kafka.NewClient(br.Addrs(), nil, kgo.ConsumeTopics(kafka.TopicEvents), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	byPart := map[int32][]event.Event{}
	var ids []string
	slow := 0
	for len(ids) < len(trueTime) {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records", len(ids), len(trueTime))
		}
		fs.EachRecord(func(r *kgo.Record) {
			if kafka.IsCatalogCopy(r) {
				return // the original is the event
			}
			var e event.Event
			if err := event.DecodeBinary(r.Value, &e); err != nil {
				t.Fatal(err)
			}
			tt, ok := trueTime[e.ID]
			if !ok {
				t.Fatalf("record %s was never sent", e.ID)
			}
			if d := e.EventTime - tt; d < 0 || d >= 1000 {
				t.Fatalf("event %s: event_time %d, true %d", e.ID, e.EventTime, tt)
			} else if d >= 250 {
				slow++
			}
			ids = append(ids, e.ID)
			byPart[r.Partition] = append(byPart[r.Partition], e)
		})
	}
	if got := IDsDigest(ids); got != tr.Expected.Events.IDsSHA256 {
		t.Fatalf("the topic's ids digest %s, truth %s (%d records)", got, tr.Expected.Events.IDsSHA256, len(ids))
	}
	if slow > 0 {
		t.Logf("%d events derived 250 ms or more after their true time (delivery delay)", slow)
	}

	// One pipeline per partition over a shared catalog (filled first: the
	// harness does not model the order in which partitions are read).
	w := cfg.Windows
	pc := pipeline.DefaultConfig()
	pc.Quest.Window = window.Spec{Size: w.QuestSize, Slide: w.QuestSlide, Lateness: w.AllowedLateness}
	pc.Latency.Window = pc.Quest.Window
	pc.Latency.Attribution = w.AttributionWindow
	pc.Yield.Window = window.Spec{Size: w.YieldSize, Slide: w.YieldSlide, Lateness: w.AllowedLateness}
	pc.Lift.Attribution, pc.Lift.Lateness = w.AttributionWindow, w.AllowedLateness
	cat := catalog.New()
	for _, evs := range byPart {
		for i := range evs {
			if evs[i].Type.ServerOnly() {
				cat.Apply(&evs[i])
			}
		}
	}
	type row struct {
		part    int32
		version uint64
		value   [8]int64
	}
	latest := map[string]map[int32]row{} // identity → partition → latest row
	keep := func(part int32, k string, version uint64, v [8]int64) {
		m := latest[k]
		if m == nil {
			m = map[int32]row{}
			latest[k] = m
		}
		if old, ok := m[part]; !ok || old.version <= version {
			m[part] = row{part, version, v}
		}
	}
	pipeConv := map[string]string{}
	end := int64(tr.Run.End) + 24*3600*1000
	for part, evs := range byPart {
		p, err := pipeline.New(pc, cat)
		if err != nil {
			t.Fatal(err)
		}
		collect := func(o *pipeline.Output) {
			for _, r := range o.Quest {
				if r.Scope == "all" {
					keep(part, fmt.Sprintf("q/%s/%s", ms2s(r.Start), r.QuestID), r.Version, [8]int64{int64(r.Starts), int64(r.Completions), int64(r.Abandons)})
				}
			}
			for _, r := range o.Latency {
				if r.Scope == "all" {
					keep(part, fmt.Sprintf("l/%s/%s", ms2s(r.Start), r.QuestID), r.Version, [8]int64{r.Conversions, r.SumMs, r.MaxMs})
				}
			}
			for _, c := range o.Conversions {
				pipeConv[c.OrderID] = c.QuestID
			}
			for _, r := range o.Yield {
				if r.Scope == "all" {
					keep(part, fmt.Sprintf("y/%s/%s/%s", ms2s(r.Start), r.Placement, r.BidderID), r.Version,
						[8]int64{r.Auctions, r.Bids, r.NoBids, r.Timeouts, r.Wins, r.Impressions, r.Clicks, r.RevenueMicros})
				}
			}
			for _, r := range o.Integrity {
				if r.Scope == "all" {
					keep(part, fmt.Sprintf("i/%s/%s/%s", ms2s(r.Start), r.Placement, r.Kind), r.Version, [8]int64{r.Violations})
				}
			}
			for _, r := range o.Lift {
				if r.Scope == "all" && r.Final {
					keep(part, "d/"+r.DropID, r.Version, [8]int64{r.ExposedUsers, r.ExposedConverters, r.ControlUsers, r.ControlConverters})
				}
			}
			p.Reset()
		}
		for i := range evs {
			p.Add(&evs[i])
			if i%2000 == 0 {
				collect(p.Flush(p.Watermark()))
			}
		}
		p.Advance(end)
		collect(p.Flush(end))
	}
	got := map[string][8]int64{}
	for k, parts := range latest {
		var sum [8]int64
		for _, r := range parts {
			for i := range sum {
				if k[0] == 'l' && i == 2 {
					sum[i] = max(sum[i], r.value[i]) // max_ms
				} else {
					sum[i] += r.value[i]
				}
			}
		}
		if sum != [8]int64{} {
			got[k] = sum
		}
	}
	want := map[string][8]int64{}
	for _, r := range tr.Expected.QuestCompletion {
		want[fmt.Sprintf("q/%s/%s", ms2s(int64(r.WindowStart)), r.QuestID)] = [8]int64{int64(r.Starts), int64(r.Completions), int64(r.Abandons)}
	}
	for _, r := range tr.Expected.OfferYield {
		want[fmt.Sprintf("y/%s/%s/%s", ms2s(int64(r.WindowStart)), r.Placement, r.BidderID)] = [8]int64{int64(r.Auctions), int64(r.Bids),
			int64(r.NoBids), int64(r.Timeouts), int64(r.Wins), int64(r.Impressions), int64(r.Clicks), r.RevenueMicros}
	}
	for _, r := range tr.Expected.Integrity {
		want[fmt.Sprintf("i/%s/%s/%s", ms2s(int64(r.WindowStart)), r.Placement, r.Kind)] = [8]int64{int64(r.Violations)}
	}
	complete := 0
	for _, r := range tr.Expected.CreatorLift {
		if r.Scope != "all" {
			continue
		}
		if !r.Complete {
			delete(got, "d/"+r.DropID) // the end of the input, not of the drop
			continue
		}
		complete++
		want["d/"+r.DropID] = [8]int64{int64(r.ExposedUsers), int64(r.ExposedConverters), int64(r.ControlUsers), int64(r.ControlConverters)}
	}
	if complete == 0 {
		t.Fatal("no complete drop in the run")
	}
	for _, r := range tr.Expected.ConversionLatency {
		k := fmt.Sprintf("l/%s/%s", ms2s(int64(r.WindowStart)), r.QuestID)
		want[k] = [8]int64{int64(r.Conversions), int64(r.MeanMs*float64(r.Conversions) + 0.5), r.MaxMs}
	}
	// Latencies shift by the delivery delay of skewed sent_at devices; the
	// sums are compared within 1 s per conversion.
	for k, g := range got {
		if k[0] == 'l' {
			if x, ok := want[k]; ok && g[0] == x[0] && g[2]/1000 == x[2]/1000 && abs(g[1]-x[1]) < 1000*x[0] {
				got[k] = x
			}
		}
	}
	truthtest.CompareMaps(t, got, want)
	if n := len(pipeConv); n != tr.Expected.QuestConversions.Attributed {
		t.Errorf("%d conversions attributed (quest_conversions rows), truth %d", n, tr.Expected.QuestConversions.Attributed)
	}
	t.Logf("%d events, %d partitions, %d rows compared", len(ids), len(byPart), len(want))
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

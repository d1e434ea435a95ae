package clickhouse

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/questline/questline/event"
)

var docQueryRE = regexp.MustCompile("(?s)<!-- query: ([a-z-]+) -->\\s*```sql\\n(.*?)```")

// documentedQueries returns the named example queries of docs/analysts.md.
func documentedQueries(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../../docs/analysts.md")
	if err != nil {
		t.Fatal(err)
	}
	qs := map[string]string{}
	for _, m := range docQueryRE.FindAllStringSubmatch(string(b), -1) {
		qs[m[1]] = m[2]
	}
	return qs
}

// TestDocumentedQueries runs every example query of docs/analysts.md on a
// database where each event was inserted twice, some were resent by a
// client (same id, later received_at), and each dead letter was delivered
// twice; the answers must equal those computed from the original events.
func TestDocumentedQueries(t *testing.T) {
	srv := chs.Server(t)
	db, c := migrated(t, srv)
	ctx := context.Background()

	evs := testEvents("doc", 600)
	for i := range evs {
		if i%10 == 0 { // late: received 10 to 20 minutes after it happened
			evs[i].ReceivedAt = evs[i].EventTime + 600_001 + int64(i)*1000
		}
	}
	var resent []event.Event
	for i := range evs {
		if i%7 == 0 && i%10 != 0 {
			e := evs[i]
			e.ReceivedAt += 5000
			e.KeyID = "k-retry"
			resent = append(resent, e)
		}
	}
	w, err := NewWriter(c, EventsTable)
	if err != nil {
		t.Fatal(err)
	}
	for _, batch := range [][]event.Event{evs, resent, evs} {
		if _, err := w.Write(ctx, batch...); err != nil {
			t.Fatal(err)
		}
	}
	dls := testDeadLetters("docdl", 40)
	rows := make([]Rejected, len(dls))
	for i := range dls {
		rows[i] = Rejected{ID: RejectedID(dls[i].Marshal()), DeadLetter: dls[i]}
	}
	rw, err := NewWriter(c, RejectedTable)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := rw.Write(ctx, rows...); err != nil {
			t.Fatal(err)
		}
	}

	want := map[string]string{
		"events-per-type-per-minute":      perMinute(evs),
		"events-per-type-per-minute-uniq": perMinute(evs),
		"user-timeline":                   timeline(evs, "u5"),
		"rejected-by-reason":              byReason(dls),
		"late-events":                     late(evs),
		"conversions-per-currency":        perCurrency(evs),
	}
	qs := documentedQueries(t)
	for name := range qs {
		if _, ok := want[name]; !ok {
			t.Errorf("documented query %q has no expectation in this test", name)
		}
	}
	for name, w := range want {
		q, ok := qs[name]
		if !ok {
			t.Errorf("query %q missing from docs/analysts.md", name)
			continue
		}
		got := query(t, srv, strings.ReplaceAll(q, "questline.", db+"."))
		if w = strings.TrimSpace(w); got != w {
			t.Errorf("%s:\n got %q\nwant %q", name, clip(got), clip(w))
		}
	}
}

func clip(s string) string {
	if len(s) > 600 {
		return s[:600] + "…"
	}
	return s
}

func dt(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05") }

func perMinute(evs []event.Event) string {
	counts := map[[2]string]int{}
	for i := range evs {
		minute := time.UnixMilli(evs[i].EventTime).UTC().Truncate(time.Minute).UnixMilli()
		counts[[2]string{dt(minute), evs[i].Type.String()}]++
	}
	var lines []string
	for k, n := range counts {
		lines = append(lines, k[0]+"\t"+k[1]+"\t"+strconv.Itoa(n))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func nullableText(e *event.Event, bit uint32, v int64) string {
	if e.Has&bit == 0 {
		return `\N`
	}
	return strconv.FormatInt(v, 10)
}

func timeline(evs []event.Event, user string) string {
	var sel []event.Event
	for _, e := range evs {
		if e.UserID == user {
			sel = append(sel, e)
		}
	}
	sort.Slice(sel, func(i, j int) bool {
		if sel[i].EventTime != sel[j].EventTime {
			return sel[i].EventTime < sel[j].EventTime
		}
		return sel[i].ID < sel[j].ID
	})
	var lines []string
	for i := range sel {
		e := &sel[i]
		lines = append(lines, strings.Join([]string{strconv.FormatInt(e.EventTime, 10), e.Type.String(), e.ID, e.QuestID, e.DropID, e.AuctionID, e.OrderID,
			nullableText(e, event.HasAmountMicros, e.AmountMicros), e.Currency}, "\t"))
	}
	return strings.Join(lines, "\n")
}

func byReason(dls []event.DeadLetter) string {
	type agg struct {
		n    int
		last int64
	}
	m := map[[2]string]*agg{}
	for _, d := range dls {
		k := [2]string{d.Kind, d.Reason}
		if m[k] == nil {
			m[k] = &agg{}
		}
		m[k].n++
		m[k].last = max(m[k].last, d.ReceivedAt)
	}
	keys := make([][2]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]].n != m[keys[j]].n {
			return m[keys[i]].n > m[keys[j]].n
		}
		return keys[i][0] < keys[j][0] || keys[i][0] == keys[j][0] && keys[i][1] < keys[j][1]
	})
	var lines []string
	for _, k := range keys {
		lines = append(lines, fmt.Sprintf("%s\t%s\t%d\t%s", k[0], k[1], m[k].n, dt(m[k].last/1000*1000)))
	}
	return strings.Join(lines, "\n")
}

func late(evs []event.Event) string {
	delays := map[string][]int64{}
	for i := range evs {
		if d := evs[i].ReceivedAt - evs[i].EventTime; d > 600000 {
			delays[evs[i].Type.String()] = append(delays[evs[i].Type.String()], d)
		}
	}
	types := make([]string, 0, len(delays))
	for ty := range delays {
		types = append(types, ty)
	}
	sort.Slice(types, func(i, j int) bool {
		if len(delays[types[i]]) != len(delays[types[j]]) {
			return len(delays[types[i]]) > len(delays[types[j]])
		}
		return types[i] < types[j]
	})
	var lines []string
	for _, ty := range types {
		d := delays[ty]
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		// quantileExact(0.5) is the element at index floor(0.5 * n).
		lines = append(lines, fmt.Sprintf("%s\t%d\t%d\t%d", ty, len(d), d[len(d)/2], d[len(d)-1]))
	}
	return strings.Join(lines, "\n")
}

func perCurrency(evs []event.Event) string {
	type agg struct{ n, sum int64 }
	m := map[string]*agg{}
	for i := range evs {
		if evs[i].Type != event.Conversion {
			continue
		}
		if m[evs[i].Currency] == nil {
			m[evs[i].Currency] = &agg{}
		}
		m[evs[i].Currency].n++
		m[evs[i].Currency].sum += evs[i].AmountMicros
	}
	var lines []string
	for cur, a := range m {
		lines = append(lines, fmt.Sprintf("%s\t%d\t%d\t%s", cur, a.n, a.sum, strconv.FormatFloat(float64(a.sum)/1e6, 'f', -1, 64)))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

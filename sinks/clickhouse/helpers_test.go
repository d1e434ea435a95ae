package clickhouse

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/internal/chtest"
)

// testEvents returns n valid events of varied types with ids prefix-0..n-1,
// spread over the last hour.
func testEvents(prefix string, n int) []event.Event {
	now := time.Now().UnixMilli()
	out := make([]event.Event, n)
	for i := range out {
		e := &out[i]
		e.ID = prefix + "-" + strconv.Itoa(i)
		e.UserID = "u" + strconv.Itoa(i%97)
		e.DeviceID = "d" + strconv.Itoa(i%89)
		e.SessionID = "s" + strconv.Itoa(i%13)
		e.Country = "DE"
		e.TS = now - int64(i%3600)*1000
		e.ReceivedAt = e.TS + 250
		e.EventTime = e.TS + 120
		e.SentAt = e.TS + 100
		e.Has = event.HasSentAt
		e.Source = event.SourceClient
		e.KeyID = "k1"
		switch i % 4 {
		case 0:
			e.Type, e.QuestID = event.QuestStarted, "q"+strconv.Itoa(i%7)
		case 1:
			e.Type, e.QuestID, e.DurationMs = event.QuestCompleted, "q"+strconv.Itoa(i%7), int64(60000+i)
			e.Has |= event.HasDurationMs
		case 2:
			e.Type, e.AuctionID, e.Placement = event.BidRequest, "a"+strconv.Itoa(i), "feed"
			e.FloorMicros, e.Has = 1500000, e.Has|event.HasFloorMicros
		case 3:
			e.Type, e.OrderID, e.AmountMicros, e.Currency = event.Conversion, "o"+strconv.Itoa(i), int64(1000000+i), "EUR"
			e.Has |= event.HasAmountMicros
			e.Extra = `{"coupon":"X` + strconv.Itoa(i) + `"}`
		}
	}
	return out
}

// query runs q on srv and returns its trimmed TSV output.
func query(t *testing.T, srv *chtest.Server, q string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := srv.Query(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return strings.TrimSpace(out)
}

// migrated returns a fresh migrated database on the shared server and an
// open Client on it.
func migrated(t *testing.T, srv *chtest.Server) (db string, c *Client) {
	t.Helper()
	db = srv.NewDatabase(t)
	ctx := context.Background()
	if err := Migrate(ctx, srv.DSN(db), nil); err != nil {
		t.Fatal(err)
	}
	c, err := Open(ctx, srv.DSN(db), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return db, c
}

func itoa(n int) string { return fmt.Sprint(n) }

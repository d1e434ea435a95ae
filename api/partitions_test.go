package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/kafka"
)

// keyPartition is where Kafka's murmur2 places key among n partitions.
func keyPartition(key string, n int) int {
	return kgo.StickyKeyPartitioner(nil).ForTopic(kafka.TopicClaims).Partition(&kgo.Record{Key: []byte(key)}, n)
}

// TestClaimsSurvivePartitionsAdded: partitions added to questline.claims
// (kafka-topics --alter) do not move a drop's records to another
// partition. If they did, a drop started again after the change would
// begin a second state (granted 0) in the new partition: its inventory
// granted twice.
func TestClaimsSurvivePartitionsAdded(t *testing.T) {
	brokers := newBroker(t) // 4 partitions
	drop := ""
	for i := 0; drop == ""; i++ {
		if id := fmt.Sprintf("drop-%d", i); keyPartition(id, 4) != keyPartition(id, 6) {
			drop = id
		}
	}
	a := startInstance(t, brokers)
	scheduleLive(t, a.srv.URL, drop, 2)
	for _, c := range []string{"c1", "c2"} {
		if r := call(t, a.srv.URL, "POST", "/v1/drops/"+drop+"/claims", serverKey, map[string]any{"claim_id": c, "user_id": "u-" + c}); r.str("status") != "granted" {
			t.Fatalf("claim %s: %d %v", c, r.code, r.body)
		}
	}
	a.stop()

	adm, err := kafka.NewClient(brokers, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(adm).CreatePartitions(ctx, 2, kafka.TopicClaims); err != nil {
		t.Fatal(err)
	}

	b := startInstance(t, brokers).srv.URL
	if r := call(t, b, "POST", "/v1/drops/"+drop+"/start", serverKey, map[string]any{"creator_id": "cr1", "inventory": 2}); r.code != 200 {
		t.Fatalf("start again: %d %v", r.code, r.body)
	}
	r := call(t, b, "POST", "/v1/drops/"+drop+"/claims", serverKey, map[string]any{"claim_id": "c3", "user_id": "u-c3"})
	if r.code != 409 || r.str("reason") != ReasonSoldOut {
		t.Errorf("a third claim on an inventory of 2 after partitions were added: %d %v", r.code, r.body)
	}
	if g := call(t, b, "GET", "/v1/drops/"+drop, serverKey, nil); g.body["granted"] != float64(2) {
		t.Errorf("GET after partitions were added: %v", g.body)
	}
}

// TestClaimsLogLossStopsTheInstance: records deleted from the front of
// questline.claims (a retention set by hand, kafka-delete-records) are
// decisions and drop state lost; folding the rest would re-decide repeats
// differently and let a drop's inventory be granted again. An instance
// finding the log so refuses to start answering: Run returns the error.
func TestClaimsLogLossStopsTheInstance(t *testing.T) {
	brokers := newBroker(t)
	drop := ""
	for i := 0; drop == ""; i++ {
		if id := fmt.Sprintf("drop-%d", i); keyPartition(id, 4) != 0 {
			drop = id
		}
	}
	a := startInstance(t, brokers)
	scheduleLive(t, a.srv.URL, drop, 1)
	if r := call(t, a.srv.URL, "POST", "/v1/drops/"+drop+"/claims", serverKey, map[string]any{"claim_id": "c1", "user_id": "u1"}); r.str("status") != "granted" {
		t.Fatalf("claim: %d %v", r.code, r.body)
	}
	a.stop()

	cl, err := kafka.NewClient(brokers, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var del kadm.Offsets
	del.Add(kadm.Offset{Topic: kafka.TopicClaims, Partition: int32(keyPartition(drop, 4)), At: 1})
	if res, err := kadm.NewClient(cl).DeleteRecords(ctx, del); err != nil || res.Error() != nil {
		t.Fatalf("deleting the schedule record: %v %v", err, res.Error())
	}

	h, err := New(cl, brokers, Keys(keyring(t)), RateLimits(generous(t)), Secret(testSecret), Logger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "deleted") {
			t.Errorf("Run on a log missing its first record: %v", err)
		}
	case <-ctx.Done():
		t.Error("Run went on over a log missing its first record")
	}
	if h.Ready(ctx) == nil {
		t.Error("ready over a log missing its first record")
	}
}

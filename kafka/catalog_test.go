package kafka

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestPartitionerPlacesCopies: copies go where they say, every other
// keyed record where Kafka's murmur2 partitioner puts it.
func TestPartitionerPlacesCopies(t *testing.T) {
	const n = 8
	ours := Partitioner().ForTopic(TopicEvents)
	kafkas := kgo.StickyKeyPartitioner(nil).ForTopic(TopicEvents)
	for i := range 200 {
		r := &kgo.Record{Topic: TopicEvents, Key: []byte(fmt.Sprintf("user-%d", i))}
		if got, want := ours.Partition(r, n), kafkas.Partition(r, n); got != want {
			t.Fatalf("key %s: partition %d, murmur2 %d", r.Key, got, want)
		}
		if !ours.RequiresConsistency(r) {
			t.Fatal("a keyed record must keep its partition")
		}
	}
	orig := &kgo.Record{Topic: TopicEvents, Key: []byte("drop-1"), Value: []byte("v")}
	copies := ProducerCopies(orig, n)
	if len(copies) != n || !IsCatalogCopied(orig) || IsCatalogCopy(orig) {
		t.Fatalf("%d copies, original marked copied %v, as copy %v", len(copies), IsCatalogCopied(orig), IsCatalogCopy(orig))
	}
	for p, c := range copies {
		if got := ours.Partition(c, n); got != p || !IsCatalogCopy(c) || IsCatalogCopied(c) || !ours.RequiresConsistency(c) {
			t.Fatalf("copy for %d placed in %d (copy %v, copied %v)", p, got, IsCatalogCopy(c), IsCatalogCopied(c))
		}
	}
	// A copy for a partition the client does not know of (metadata older
	// than the partitions added) must fail, not land by its key elsewhere.
	for _, c := range ProducerCopies(&kgo.Record{Topic: TopicEvents, Key: []byte("drop-1")}, n+2)[n:] {
		if got := ours.Partition(c, n); got >= 0 && got < n {
			t.Fatalf("copy for partition %d of %d placed in %d", c.Partition, n, got)
		}
	}
}

// TestMissingCopies: the processors copy an original its producer did not
// copy to every partition, and one its producer copied only to the
// partitions there were when it counted them to those added since.
func TestMissingCopies(t *testing.T) {
	parts := func(rs []*kgo.Record) []int32 {
		var out []int32
		for _, r := range rs {
			out = append(out, r.Partition)
		}
		return out
	}
	plain := &kgo.Record{Topic: TopicEvents, Partition: 1, Key: []byte("drop-1")}
	if got := parts(MissingCopies(plain, 4)); fmt.Sprint(got) != "[0 2 3]" {
		t.Errorf("not copied: copies to %v", got)
	}
	copied := &kgo.Record{Topic: TopicEvents, Key: []byte("drop-1")}
	ProducerCopies(copied, 4)
	copied.Partition = 1
	if got := parts(MissingCopies(copied, 4)); len(got) != 0 {
		t.Errorf("copied to every partition: copies to %v", got)
	}
	if got := parts(MissingCopies(copied, 6)); fmt.Sprint(got) != "[4 5]" {
		t.Errorf("copied to 4 of 6 partitions: copies to %v", got)
	}
}

package ingest

import (
	"fmt"
	"runtime"
	"testing"
	"time"
	"unsafe"
)

func TestLimiterBuckets(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	l, err := NewLimiter(IPRate(1, 2), DeviceRate(2, 10), NewDeviceBurst(3), KeyRate(100, 100), LimiterClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	// IP: burst 2, then 1 per second.
	for i := range 2 {
		if d := l.AllowIP("198.51.100.1"); d != 0 {
			t.Fatalf("request %d refused", i)
		}
	}
	d := l.AllowIP("198.51.100.1")
	if d <= 0 || d > 2*time.Second {
		t.Fatalf("third request: wait %v, want (0, 2s]", d)
	}
	now = now.Add(1100 * time.Millisecond)
	if d := l.AllowIP("198.51.100.1"); d != 0 {
		t.Fatalf("after the refill: wait %v", d)
	}
	// Device: a new device starts with 3 tokens, not the burst of 10. A
	// batch larger than the tokens left passes once and leaves a debt.
	if d := l.AllowDevice("dev", 5); d != 0 {
		t.Fatalf("first batch refused: %v", d)
	}
	d = l.AllowDevice("dev", 1)
	if d < time.Second || d > 1500*time.Millisecond {
		t.Fatalf("in debt of 2 tokens at 2/s: wait %v, want about 1.5s", d)
	}
	now = now.Add(1600 * time.Millisecond)
	if d := l.AllowDevice("dev", 1); d != 0 {
		t.Fatalf("after repaying: %v", d)
	}
	// Refill never exceeds the burst.
	now = now.Add(time.Hour)
	if d := l.AllowDevice("dev", 10); d != 0 {
		t.Fatal(d)
	}
	if d := l.AllowDevice("dev", 1); d == 0 {
		t.Fatal("the bucket refilled beyond its burst")
	}
	if l.EventCost("DE", "DE") != 1 || l.EventCost("DE", "") != 1 || l.EventCost("US", "DE") != 4 {
		t.Fatal("event cost")
	}
}

func TestLimiterBoundedMemory(t *testing.T) {
	l, err := NewLimiter(MaxEntries(160))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100000 {
		l.AllowDevice(fmt.Sprintf("dev-%d", i), 1)
	}
	n := 0
	for i := range l.device.shards {
		n += len(l.device.shards[i].cur) + len(l.device.shards[i].prev)
	}
	if n > 2*160 {
		t.Fatalf("%d buckets kept, want at most 320", n)
	}
}

func TestLimiterValidates(t *testing.T) {
	for _, o := range []LimiterOpt{IPRate(0, 1), DeviceRate(1, 0), NewDeviceBurst(1000), MismatchCost(0.5), MaxEntries(0)} {
		if _, err := NewLimiter(o); err == nil {
			t.Error("want an error")
		}
	}
}

// TestTableKeepsNoCallerBytes: a bucket's key is a copy, so an id that is
// a view of a request body (a device_id decoded from it) does not keep the
// body alive while the bucket lives (helper-37: each device's bucket kept
// its whole last request, up to 8 MiB).
func TestTableKeepsNoCallerBytes(t *testing.T) {
	tb := newTable(1, 10, 10, 1000)
	collected := make(chan struct{})
	func() {
		body := make([]byte, 1<<20)
		copy(body[100:], "device-1")
		runtime.SetFinalizer(&body[0], func(*byte) { close(collected) })
		id := unsafe.String(&body[100], len("device-1")) // as the parser's views are
		tb.take(id, 1, time.Now())
		tb.take(id, 1, time.Now()) // found: no second key
	}()
	for range 10 {
		runtime.GC()
		select {
		case <-collected:
			if tb.take("device-1", 1, time.Now()) != 0 {
				t.Fatal("the bucket is gone")
			}
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("the body is still reachable after the request: the table keeps it")
}

// TestTableKeysBounded: a 64 KiB id (a device_id validation refuses after
// the batch was charged) is keyed by its hash, not held whole; the bucket
// is still the id's own (charged and refunded as one).
func TestTableKeysBounded(t *testing.T) {
	tb := newTable(0.001, 2, 2, 1000)
	long := string(make([]byte, 64<<10))
	now := time.Now()
	if tb.take(long, 1, now) != 0 || tb.take(long, 1, now) != 0 || tb.take(long, 1, now) == 0 {
		t.Fatal("the long id's bucket is not one bucket of 2 tokens")
	}
	tb.give(long, 1)
	if tb.take(long, 1, now) != 0 {
		t.Fatal("the refund did not reach the long id's bucket")
	}
	for i := range tb.shards {
		for k := range tb.shards[i].cur {
			if len(k) > maxKeyBytes {
				t.Fatalf("a key of %d bytes", len(k))
			}
		}
	}
}

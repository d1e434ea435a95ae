package clickhouse

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/questline/questline/internal/testtool"
	"github.com/questline/questline/kafka/kafkatest"
)

// benchRows is the number of events per measured insert.
const benchRows = 200_000

// warmCopies is how many copies of the events a running sink writes after
// its first, over which its sustained rate is measured. One more copy
// follows them, so that the measured span ends, as it starts, with
// batches in flight: a pipelined sink has the next batches partly done
// when one is acknowledged, at the end as at the start.
const warmCopies = 2

// BenchmarkEventsInsert measures, in one run and on the same 200k event
// rows (44 columns), four ways into the events table of a local
// clickhouse-server:
//
//   - client: clickhouse-client inserting the rows from a Native file (the
//     practical limit of the server; Native is the fastest input format);
//   - client_tsv: clickhouse-client inserting them from a TSV file (text
//     to parse);
//   - writer: the Writer, from []event.Event;
//   - sink: the questline binary's sink role in its own process, reading
//     the same events as Kafka records from the benchmark's broker
//     (fetch, decode, batch, insert, commit), then warmCopies+1 more
//     copies under other ids: the first benchRows rows give the cold
//     figure (a new process), the next warmCopies*benchRows the warm one
//     (a running sink).
//
// It reports rows/s of each (totals), the medians of the per-iteration
// ratios writer/client, sink/client, sink_warm/client and the sink's
// against client_tsv, and the CPU time per row of each process during
// each way.
// See docs/benchmarks/sink.md.
func BenchmarkEventsInsert(b *testing.B) {
	client, err := exec.LookPath("clickhouse-client")
	if err != nil {
		b.Skip("clickhouse-client not installed")
	}
	srv := chs.Server(b)
	ctx := context.Background()
	src := srv.NewDatabase(b)
	if err := Migrate(ctx, srv.DSN(src), nil); err != nil {
		b.Fatal(err)
	}
	c, err := Open(ctx, srv.DSN(src), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	evs := testEvents("bench", benchRows)
	w, err := NewWriter(c, EventsTable)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := w.Write(ctx, evs...); err != nil {
		b.Fatal(err)
	}
	cols := make([]string, len(EventsTable.Columns))
	for i, col := range EventsTable.Columns {
		cols[i] = col.Name
	}
	colList := strings.Join(cols, ", ")
	_, port, _ := strings.Cut(srv.Addr(), ":")
	// The client's inputs: the same rows dumped as Native (the cheapest
	// input) and as TSV (text to parse).
	dumps := map[string][]byte{}
	for _, format := range []string{"Native", "TSV"} {
		dump := exec.Command(client, "--port", port, "--query", "SELECT "+colList+" FROM "+src+".events FORMAT "+format)
		var stderr bytes.Buffer
		dump.Stderr = &stderr
		out, err := dump.Output()
		if err != nil {
			b.Fatalf("dump: %v: %s", err, stderr.Bytes())
		}
		dumps[format] = out
	}

	brk := kafkatest.New(b)
	cl := producer(b, brk)
	// The sink reads warmCopies+1 more copies of the events under other
	// ids after the first: its first benchRows rows measure a fresh
	// process, the next warmCopies*benchRows a running one.
	recs := eventRecords(evs)
	for k := range warmCopies + 1 {
		recs = append(recs, eventRecords(testEvents("warm"+strconv.Itoa(k), benchRows))...)
	}
	for i := 0; i < len(recs); i += 10_000 {
		if err := cl.ProduceSync(ctx, recs[i:min(i+10_000, len(recs))]...).FirstErr(); err != nil {
			b.Fatal(err)
		}
	}

	// The client and the writer insert into tables truncated before each
	// round, so both run in steady state (warm connections and buffers).
	dbc, dbw := srv.NewDatabase(b), srv.NewDatabase(b)
	for _, db := range []string{dbc, dbw} {
		if err := Migrate(ctx, srv.DSN(db), nil); err != nil {
			b.Fatal(err)
		}
	}
	cw, err := Open(ctx, srv.DSN(dbw), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer cw.Close()
	ww, err := NewWriter(cw, EventsTable)
	if err != nil {
		b.Fatal(err)
	}

	// CPU time spent inside the timed part of each way, by process.
	serverPID := srv.PID()
	var cpu [4]cpuMeter // client Native, writer, sink, client TSV
	for j := range cpu {
		cpu[j].serverPID = serverPID
	}

	measureClient := func(format string, m *cpuMeter) time.Duration {
		if err := srv.Exec(ctx, "TRUNCATE TABLE "+dbc+".events"); err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(client, "--port", port, "--query", "INSERT INTO "+dbc+".events ("+colList+") FORMAT "+format)
		cmd.Stdin = bytes.NewReader(dumps[format])
		m.start(0)
		t0 := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("clickhouse-client: %v: %s", err, out)
		}
		d := time.Since(t0)
		m.stop()
		m.child += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		return d
	}
	measureWriter := func() time.Duration {
		if err := srv.Exec(ctx, "TRUNCATE TABLE "+dbw+".events"); err != nil {
			b.Fatal(err)
		}
		cpu[1].start(0)
		t0 := time.Now()
		if _, err := ww.Write(ctx, evs...); err != nil {
			b.Fatal(err)
		}
		d := time.Since(t0)
		cpu[1].stop()
		return d
	}
	// The sink is the questline binary's sink role in its own process (as
	// deployed: its heap holds no broker data), reading the records from
	// the broker with a new consumer group. It is timed from its first
	// consumed record (the group join is a one-off at start; read from its
	// /metrics) until the first benchRows rows are in the table (cold: a
	// fresh process, first touch of its buffers), and from there until the
	// warm copies are (warm: a running sink).
	bin := filepath.Join(b.TempDir(), "questline")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/questline").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	round := 0
	var warm time.Duration // of the last measureSink, for benchRows rows
	measureSink := func() time.Duration {
		round++
		dbs := srv.NewDatabase(b)
		if err := Migrate(ctx, srv.DSN(dbs), nil); err != nil {
			b.Fatal(err)
		}
		metricsAddr := testtool.FreeAddr(b)
		cmd := exec.Command(bin, "sink", "-metrics-addr", metricsAddr, "-sink-group", "bench-"+strconv.Itoa(round), "-log-level", "debug", "-log-format", "json")
		cmd.Env = append(os.Environ(), "QUESTLINE_KAFKA_BROKERS="+strings.Join(brk.Addrs(), ","), "QUESTLINE_CLICKHOUSE_DSN="+srv.DSN(dbs))
		logs, err := cmd.StderrPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		// The sink logs each batch of events ClickHouse acknowledged (at
		// debug level): reading its log costs the sink and the server
		// nothing, where polling the table (a query every 10 ms, 0.6 –
		// 0.9 ms of server CPU each) took about 7 % of a core from the
		// path being measured.
		written := make(chan int, 64)
		go func() {
			defer close(written)
			lines := bufio.NewScanner(logs)
			for lines.Scan() {
				var l struct {
					Level, Msg string
					Rows       int
				}
				switch err := json.Unmarshal(lines.Bytes(), &l); {
				case err == nil && l.Msg == "events written":
					written <- l.Rows
				case err != nil || l.Level == "WARN" || l.Level == "ERROR":
					os.Stderr.Write(append(lines.Bytes(), '\n'))
				}
			}
		}()
		for scrape(metricsAddr, `questline_sink_records_total{topic="questline.events"}`) == 0 {
			time.Sleep(time.Millisecond)
		}
		cpu[2].start(cmd.Process.Pid)
		t0 := time.Now()
		var t1, t2 time.Time
		var n, n1, n2 int
		for rows := range written {
			n += rows
			switch {
			case n >= (2+warmCopies)*benchRows:
				cpu[2].stop()
				if t1.IsZero() || t2.IsZero() || n2 == n1 {
					b.Fatal("the warm span fell within one batch: -sink-batch-rows is too large for the benchmark")
				}
				warm = time.Duration(float64(t2.Sub(t1)) * float64(benchRows) / float64(n2-n1))
				return t1.Sub(t0)
			case n >= (1+warmCopies)*benchRows && t2.IsZero():
				t2, n2 = time.Now(), n
			case n >= benchRows && t1.IsZero():
				t1, n1 = time.Now(), n
			}
		}
		b.Fatalf("the sink exited after %d rows", n)
		return 0
	}

	// The machine is shared: each iteration measures the four back to
	// back, in rotating order, and the ratios reported are the medians of
	// the per-iteration ratios, which drift in load affects least.
	const ways = 4
	var total [ways]time.Duration
	var writerRatios, sinkRatios, warmRatios, sinkTSVRatios, warmTSVRatios []float64
	var totalWarm time.Duration
	measures := [ways]func() time.Duration{
		func() time.Duration { return measureClient("Native", &cpu[0]) },
		measureWriter,
		measureSink,
		func() time.Duration { return measureClient("TSV", &cpu[3]) },
	}
	b.ResetTimer()
	for i := range b.N {
		var d [ways]time.Duration
		for k := range ways {
			j := (i + k) % ways
			d[j] = measures[j]()
			total[j] += d[j]
		}
		writerRatios = append(writerRatios, d[0].Seconds()/d[1].Seconds())
		sinkRatios = append(sinkRatios, d[0].Seconds()/d[2].Seconds())
		warmRatios = append(warmRatios, d[0].Seconds()/warm.Seconds())
		sinkTSVRatios = append(sinkTSVRatios, d[3].Seconds()/d[2].Seconds())
		warmTSVRatios = append(warmTSVRatios, d[3].Seconds()/warm.Seconds())
		totalWarm += warm
	}
	b.StopTimer()
	rate := func(d time.Duration) float64 { return float64(benchRows*b.N) / d.Seconds() }
	b.ReportMetric(rate(total[0]), "client_rows/s")
	b.ReportMetric(rate(total[3]), "client_tsv_rows/s")
	b.ReportMetric(rate(total[1]), "writer_rows/s")
	b.ReportMetric(rate(total[2]), "sink_rows/s")
	b.ReportMetric(median(writerRatios), "writer/client")
	b.ReportMetric(median(sinkRatios), "sink/client")
	b.ReportMetric(rate(totalWarm), "sink_warm_rows/s")
	b.ReportMetric(median(warmRatios), "sink_warm/client")
	b.ReportMetric(median(sinkTSVRatios), "sink/client_tsv")
	b.ReportMetric(median(warmTSVRatios), "sink_warm/client_tsv")
	// CPU per row of each way, by process (the child: clickhouse-client
	// or the sink; bench: this process, i.e. the Writer or the broker;
	// server: clickhouse-server): where the 2 cores went. The sink's are
	// over every copy of the events, cold and warm.
	for j, name := range []string{"client", "writer", "sink", "client_tsv"} {
		rows := float64(benchRows * b.N)
		if name == "sink" {
			rows *= 2 + warmCopies
		}
		perRow := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / rows }
		if name != "writer" {
			b.ReportMetric(perRow(cpu[j].child), name+"_cpu_ns/row")
		}
		b.ReportMetric(perRow(cpu[j].self), name+"_bench_cpu_ns/row")
		b.ReportMetric(perRow(cpu[j].server), name+"_server_cpu_ns/row")
	}
}

// cpuMeter adds up the CPU time of the benchmark process, the server and
// a child process between start and stop.
type cpuMeter struct {
	serverPID, childPID    int
	child, self, server    time.Duration
	child0, self0, server0 time.Duration
}

func (m *cpuMeter) start(childPID int) {
	m.childPID = childPID
	m.child0, m.self0, m.server0 = testtool.ProcessCPU(childPID), selfCPU(), testtool.ProcessCPU(m.serverPID)
}

func (m *cpuMeter) stop() {
	m.child += testtool.ProcessCPU(m.childPID) - m.child0
	m.self += selfCPU() - m.self0
	m.server += testtool.ProcessCPU(m.serverPID) - m.server0
}

// selfCPU returns the CPU time of this process so far (the benchmark, the
// Writer and the Kafka broker).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// BenchmarkWriterEvents measures the Writer alone, for profiling.
func BenchmarkWriterEvents(b *testing.B) {
	srv := chs.Server(b)
	ctx := context.Background()
	db := srv.NewDatabase(b)
	if err := Migrate(ctx, srv.DSN(db), nil); err != nil {
		b.Fatal(err)
	}
	c, err := Open(ctx, srv.DSN(db), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	evs := testEvents("bench", benchRows)
	w, err := NewWriter(c, EventsTable)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := w.Write(ctx, evs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchRows*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// freeAddr returns a free loopback address.

// scrape returns the value of one series from a /metrics endpoint, or 0.
func scrape(addr, series string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

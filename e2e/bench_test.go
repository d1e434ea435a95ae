package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/questline/questline/internal/testtool"
)

// BenchmarkEndToEnd measures the whole product as deployed on one machine:
// `questline run` (ingest, embedded Kafka, sink, processors) and
// `questline loadgen` as separate processes, and a clickhouse-server, all
// sharing the machine's cores. It reports
//
//   - e2e_events/s: a backlog of E2E_EVENTS events (default 1 000 000: on
//     a faster machine 300 000 drain in ~3 s, and the pipeline's fixed
//     delays, a second's flush and batch wait, weigh more than its rate) sent
//     as fast as the load generator goes, divided by the time from its
//     first send until every one is in the events table and through the
//     processors (read off the pipeline's counters; checked in the table
//     after, the clock running on while it is short). The load generator
//     builds every request before its first send (-pregenerate;
//     E2E_PREGENERATE=0 times the model too);
//   - raw_rows/s: the same rows exported from events (Native) and inserted
//     into a scratch copy of the table with clickhouse-client, in the same
//     run, the median of three — the baseline — and ratio = e2e / raw;
//     raw_json_rows/s: the same with the rows as JSON (JSONEachRow), the
//     form clients send;
//   - freshness: then E2E_FRESH_SECONDS (default 240) of real-time load at
//     the rate just measured (half of it with E2E_PREGENERATE=0; or
//     E2E_FRESH_RATE), and for each promptly sent event the time from its
//     event_time to the first version, appearing after ingest received the
//     event, of the earliest quest_completion row (scope all, all quests)
//     whose window holds it: fresh_p50_s, fresh_p99_s; and the part of it
//     after the window's end (end_to_row_p50_s, end_to_row_p99_s).
//
// The load generator sends through edge nodes: E2E_EDGE (default 1000)
// events of many devices per request at most, 0 for every device's own
// batches; E2E_EDGE_CORRECT=1 lets the edge nodes correct skewed devices'
// clocks themselves (docs/loadgen.md, "Edge nodes"). E2E_CONCURRENCY
// (default 8) requests in flight.
//
// E2E_OUT_OF_ORDER (a duration) sets the processors' out-of-order bound
// (-process-out-of-order; default the product's, 30 s): a window's first
// row is written that long after its end. E2E_RUN_FLAGS adds flags to
// `questline run` (e.g. "-process-flush-interval 500ms").
//
// go test ./e2e -run '^$' -bench EndToEnd -benchtime 1x -timeout 20m
func BenchmarkEndToEnd(b *testing.B) {
	events := envInt("E2E_EVENTS", 1_000_000)
	fresh := envInt("E2E_FRESH_SECONDS", 240)
	concurrency := strconv.Itoa(envInt("E2E_CONCURRENCY", 8))
	// The load generator sends through edge nodes (E2E_EDGE events per
	// request at most, default 1000; 0: every device its own batches).
	edgeEvents := 1000
	if v, err := strconv.Atoi(os.Getenv("E2E_EDGE")); err == nil && v >= 0 {
		edgeEvents = v
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "questline")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/questline/questline/cmd/questline").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	srv := chs.Server(b)
	db := srv.NewDatabase(b)
	httpAddr, metricsAddr, kafkaAddr := testtool.FreeAddr(b), testtool.FreeAddr(b), testtool.FreeAddr(b)
	env := append(os.Environ(),
		"QUESTLINE_DATA_DIR="+filepath.Join(dir, "data"),
		"QUESTLINE_HTTP_ADDR="+httpAddr,
		"QUESTLINE_METRICS_ADDR="+metricsAddr,
		"QUESTLINE_EMBEDDED_KAFKA_ADDR="+kafkaAddr,
		"QUESTLINE_CLICKHOUSE_DSN="+srv.DSN(db),
		"QUESTLINE_API_KEYS="+serverKey,
		"QUESTLINE_CLIENT_KEYS="+clientKey,
		"QUESTLINE_TRUSTED_PROXIES=127.0.0.1/32",
		"QUESTLINE_LOG_LEVEL=warn",
	)
	ooo := 30 * time.Second
	if v := os.Getenv("E2E_OUT_OF_ORDER"); v != "" {
		var err error
		if ooo, err = time.ParseDuration(v); err != nil {
			b.Fatalf("E2E_OUT_OF_ORDER: %v", err)
		}
	}
	args := []string{"run", "-process-idle-timeout", "5s", "-process-out-of-order", ooo.String()}
	// Phase 1 replays minutes of the platform in seconds, so each device
	// sends many times its real rate: the device limit would measure the
	// replay. An edge node's request carries many devices: its address
	// and the API key see far more than one client's traffic.
	args = append(args, "-rate-limit-device", "1000000")
	if edgeEvents > 0 {
		args = append(args, "-rate-limit-ip", "1000000", "-rate-limit-key", "10000000")
	}
	args = append(args, strings.Fields(os.Getenv("E2E_RUN_FLAGS"))...)
	run := exec.Command(bin, args...)
	run.Env = env
	logf, err := os.Create(filepath.Join(dir, "run.log"))
	if err != nil {
		b.Fatal(err)
	}
	run.Stdout, run.Stderr = logf, logf
	if err := run.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		run.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { run.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			run.Process.Kill()
			<-done
		}
	})
	waitUntil(b, time.Minute, "questline run ready", func() bool {
		r, err := http.Get("http://" + metricsAddr + "/readyz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == http.StatusOK
	})
	q := func(query string) string {
		out, err := srv.Query(context.Background(), strings.ReplaceAll(query, "{db}", db))
		if err != nil {
			b.Fatalf("%s: %v", query, err)
		}
		return strings.TrimSpace(out)
	}
	loadgen := func(args ...string) *exec.Cmd {
		args = append([]string{"loadgen", "-ingest-url", "http://" + httpAddr, "-skip-expected",
			"-truth", filepath.Join(dir, "truth.json"), "-edge-events", strconv.Itoa(edgeEvents),
			"-edge-correct=" + strconv.FormatBool(os.Getenv("E2E_EDGE_CORRECT") != "")}, args...)
		c := exec.Command(bin, args...)
		c.Env = append(env, "QUESTLINE_METRICS_ADDR=")
		return c
	}

	b.ResetTimer()
	// 1. Throughput: a backlog, sent as fast as possible (origin 8 h ago,
	// past every offline hold), until it is all in ClickHouse and through
	// the processors. With pregeneration (the default) the load generator
	// builds every request first and the clock starts at its first send,
	// as the baseline's clickhouse-client reads a file made beforehand.
	origin := time.Now().Add(-8 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	pregen := os.Getenv("E2E_PREGENERATE") != "0"
	chPid := srv.PID()
	lgArgs := []string{"-seed", "1", "-rate", "1000", "-count", strconv.Itoa(events), "-speed", "0", "-concurrency", concurrency,
		"-origin", origin, "-pregenerate=" + strconv.FormatBool(pregen)}
	lg1 := loadgen(lgArgs...)
	var lgOut1, lgStdout strings.Builder // the progress lines; the result line (read after Wait)
	lgPipe, err := lg1.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	lg1.Stdout = &lgStdout
	var runCPU0, chCPU0, lgCPU0, busy0, total0 time.Duration
	var start time.Time
	mark := func() {
		start = time.Now()
		runCPU0, chCPU0 = testtool.ProcessCPU(run.Process.Pid), testtool.ProcessCPU(chPid)
		busy0, total0 = testtool.MachineCPU()
	}
	if !pregen {
		mark()
	}
	if err := lg1.Start(); err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(lgPipe)
	for sc.Scan() {
		lgOut1.WriteString(sc.Text() + "\n")
		if pregen && start.IsZero() && strings.HasSuffix(sc.Text(), "; sending") {
			lgCPU0 = testtool.ProcessCPU(lg1.Process.Pid)
			mark()
			b.Logf("%s (load generator CPU so far %.1fs)", sc.Text(), lgCPU0.Seconds())
		}
	}
	if err := lg1.Wait(); err != nil {
		b.Fatalf("loadgen: %v\n%s", err, lgOut1.String())
	}
	if start.IsZero() {
		b.Fatalf("loadgen never said it was sending:\n%s", lgOut1.String())
	}
	lgCPU := lg1.ProcessState.UserTime() + lg1.ProcessState.SystemTime() - lgCPU0
	b.Logf("loadgen: %s; ingest: %.0f requests, %.0f rate-limited", lastLine(lgStdout.String()),
		metric(b, metricsAddr, "questline_ingest_requests_total"), metric(b, metricsAddr, "questline_ingest_rate_limited_requests_total"))
	sentIn := time.Since(start)
	// Polled from the pipeline's own counters: a query per poll would
	// take ClickHouse's CPU from the path being timed.
	waitUntil(b, 10*time.Minute, "the backlog to drain", func() bool {
		return metric(b, metricsAddr, `questline_clickhouse_rows_written_total{table="events"}`) >= float64(events) &&
			metric(b, metricsAddr, "questline_processor_events_total") >= float64(events)
	})
	// The end of phase 1: its time and each process's CPU time (all
	// threads), taken before any query of the table.
	var e2eSecs float64
	var runCPU, chCPU, busy1, total1 time.Duration
	phaseEnd := func() {
		e2eSecs = time.Since(start).Seconds()
		runCPU, chCPU = testtool.ProcessCPU(run.Process.Pid)-runCPU0, testtool.ProcessCPU(chPid)-chCPU0
		busy1, total1 = testtool.MachineCPU()
	}
	phaseEnd()
	// The sink's counter counts again the rows it re-inserts after a
	// transient error, so it can reach the count before the table does:
	// the table decides, and while it is short the clock runs on.
	distinct := func() int { n, _ := strconv.Atoi(q("SELECT uniqExact(event_id) FROM {db}.events")); return n }
	if n := distinct(); n < events {
		b.Logf("the counters said drained with %d of %d events in the table (rows re-inserted): timed until the table holds them", n, events)
		waitUntil(b, 10*time.Minute, "every event in the events table", func() bool { return distinct() >= events })
		phaseEnd()
	}
	e2eRate := float64(events) / e2eSecs
	b.StopTimer()
	if n := distinct(); n != events {
		b.Fatalf("events holds %d distinct events after the drain, want %d", n, events)
	}
	// Where phase 1's CPU went: each process's CPU time over the phase,
	// per event, and its share of the machine's busy time.
	busy, total := busy1-busy0, total1-total0
	perEvent := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(events) }
	share := func(d time.Duration) float64 { return 100 * d.Seconds() / max(busy.Seconds(), 1e-9) }
	other := busy - runCPU - chCPU - lgCPU
	b.Logf("phase 1 CPU: machine %.1f of %.1f core-s busy (%.0f%%, load average %s); loadgen %.1fs (%.1f µs/event, %.0f%%), questline run %.1fs (%.1f µs/event, %.0f%%), clickhouse-server %.1fs (%.1f µs/event, %.0f%%), other %.1fs (%.0f%%)",
		busy.Seconds(), total.Seconds(), 100*busy.Seconds()/max(total.Seconds(), 1e-9), loadAvg(),
		lgCPU.Seconds(), perEvent(lgCPU), share(lgCPU), runCPU.Seconds(), perEvent(runCPU), share(runCPU),
		chCPU.Seconds(), perEvent(chCPU), share(chCPU), other.Seconds(), share(other))
	b.ReportMetric(perEvent(lgCPU), "loadgen_cpu_µs/event")
	b.ReportMetric(perEvent(runCPU), "run_cpu_µs/event")
	b.ReportMetric(perEvent(chCPU), "clickhouse_cpu_µs/event")
	b.Logf("questline run after phase 1: resident %s, Go heap in use %.0f MB, Go heap released to the OS %.0f MB",
		vmRSS(run.Process.Pid), metric(b, metricsAddr, "go_memstats_heap_inuse_bytes")/1e6, metric(b, metricsAddr, "go_memstats_heap_released_bytes")/1e6)

	// 2. The baseline: the same rows, inserted by clickhouse-client.
	native := filepath.Join(dir, "events.native")
	chClient := func(stdin, stdout string, query string) time.Duration {
		host, port, _ := net.SplitHostPort(srv.Addr())
		c := exec.Command("clickhouse-client", "--host", host, "--port", port, "--query", strings.ReplaceAll(query, "{db}", db))
		if stdin != "" {
			f, err := os.Open(stdin)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			c.Stdin = f
		}
		if stdout != "" {
			f, err := os.Create(stdout)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			c.Stdout = f
		}
		var stderr strings.Builder
		c.Stderr = &stderr
		t0 := time.Now()
		if err := c.Run(); err != nil {
			b.Fatalf("clickhouse-client %s: %v\n%s", query, err, stderr.String())
		}
		return time.Since(t0)
	}
	// rawInsert inserts file (in format) into a new scratch copy of events
	// three times, alternating with nothing else, and returns the median
	// rate: single runs moved by up to 2× on this shared machine.
	jsonRows := filepath.Join(dir, "events.jsonl")
	chClient("", native, "SELECT * FROM {db}.events FINAL FORMAT Native")
	chClient("", jsonRows, "SELECT * FROM {db}.events FINAL FORMAT JSONEachRow")
	rawInsert := func(file, format string) (rate float64, secs []float64) {
		var rates []float64
		for i := range 3 {
			t := fmt.Sprintf("events_raw_%s_%d", strings.ToLower(format), i)
			q("CREATE TABLE {db}." + t + " AS {db}.events")
			d := chClient(file, "", "INSERT INTO {db}."+t+" FORMAT "+format).Seconds()
			n, _ := strconv.Atoi(q("SELECT count() FROM {db}." + t))
			if n != events {
				b.Fatalf("raw %s insert: %d rows, want %d", format, n, events)
			}
			q("DROP TABLE {db}." + t)
			rates, secs = append(rates, float64(n)/d), append(secs, d)
		}
		return quantile(rates, 0.5), secs
	}
	rawRate, rawSecs := rawInsert(native, "Native")
	rawJSONRate, rawJSONSecs := rawInsert(jsonRows, "JSONEachRow")
	rows := events
	b.Logf("raw insert (median of 3): Native %.0f rows/s (%.2f, %.2f, %.2f s), ratio %.3f; JSONEachRow %.0f rows/s (%.2f, %.2f, %.2f s), ratio %.3f",
		rawRate, rawSecs[0], rawSecs[1], rawSecs[2], e2eRate/rawRate, rawJSONRate, rawJSONSecs[0], rawJSONSecs[1], rawJSONSecs[2], e2eRate/rawJSONRate)
	b.ReportMetric(rawJSONRate, "raw_json_rows/s")

	if os.Getenv("E2E_SKIP_FRESHNESS") != "" {
		b.ReportMetric(e2eRate, "e2e_events/s")
		b.ReportMetric(rawRate, "raw_rows/s")
		b.ReportMetric(e2eRate/rawRate, "ratio")
		b.Logf("backlog %d events (concurrency %s): sent in %.1fs, drained in %.1fs (%.0f events/s); raw insert %d rows at %.0f rows/s; ratio %.3f",
			events, concurrency, sentIn.Seconds(), e2eSecs, e2eRate, rows, rawRate, e2eRate/rawRate)
		return
	}

	// 3. Freshness in real time. With pregeneration (the default) the load
	// generator builds the whole phase first, for an origin far enough
	// ahead (E2E_FRESH_LEAD, default 15 s + 4 µs per simulated event of
	// the phase and of the model's 10-minute warm-up), then sends each
	// batch at its time: the model's CPU is not in the measured span, as
	// in phase 1, and the rate defaults to phase 1's. Without it the model
	// generates as it sends, on the same two cores, and the rate defaults
	// to half of phase 1's: at the full rate the generator would fall
	// behind its schedule and measure itself.
	rate := float64(int(e2eRate/200) * 100)
	if pregen {
		rate = float64(int(e2eRate/100) * 100)
	}
	if r := envInt("E2E_FRESH_RATE", 0); r > 0 {
		rate = float64(r)
	} else if pregen {
		// The pregenerated phase is held in memory: about 1 GB for the
		// model's world and 300 bytes per event of the model's rate
		// (1.34 GB for 30 s at 50,000 events/s, 1.75 GB for 60 s, peak
		// RSS; 600 bytes per event before the load generator let the
		// events of a built request go and kept GOGC at 100 while
		// pregenerating). Keep it within a third of what the machine has
		// free.
		// (A machine with less than 3 GB free gets no room for events at
		// all, not no cap; an unknown MemAvailable, 0, leaves the rate.)
		const base, perEvent = 1e9, 300
		if avail := memAvailable(); avail > 0 {
			if budget := float64(avail/3) - base; rate*float64(fresh)*perEvent > budget {
				capped := float64(int(max(budget, 0)/perEvent/float64(fresh)/100) * 100)
				if capped < 100 {
					b.Fatalf("real time: %.1f GB available is too little to pregenerate in a third of it (about 1 GB + 300 B per event); set E2E_FRESH_RATE or E2E_PREGENERATE=0",
						float64(avail)/1e9)
				}
				b.Logf("real time: %.0f events/s for %ds would take about %.1f GB to pregenerate; capped at %.0f events/s (a third of the %.1f GB available)",
					rate, fresh, (base+rate*float64(fresh)*perEvent)/1e9, capped, float64(avail)/1e9)
				rate = capped
			}
		}
	}
	lgArgs = []string{"-seed", "2", "-rate", strconv.FormatFloat(rate, 'f', 0, 64), "-duration", fmt.Sprintf("%ds", fresh), "-speed", "1", "-concurrency", concurrency}
	var freshOrigin time.Time
	if pregen {
		lead := 15*time.Second + time.Duration(4e3*rate*float64(600+fresh))*time.Nanosecond
		if v := os.Getenv("E2E_FRESH_LEAD"); v != "" {
			if lead, err = time.ParseDuration(v); err != nil {
				b.Fatalf("E2E_FRESH_LEAD: %v", err)
			}
		}
		freshOrigin = time.Now().Add(lead).Truncate(time.Second)
		lgArgs = append(lgArgs, "-pregenerate", "-origin", freshOrigin.UTC().Format(time.RFC3339))
		b.Logf("real time: pregenerating %ds at %.0f events/s for an origin %v ahead", fresh, rate, lead.Round(time.Second))
	}
	lg := loadgen(lgArgs...)
	lgOut, err := os.Create(filepath.Join(dir, "loadgen.log"))
	if err != nil {
		b.Fatal(err)
	}
	lg.Stdout, lg.Stderr = lgOut, lgOut
	if err := lg.Start(); err != nil {
		b.Fatal(err)
	}
	if pregen {
		waitUntil(b, time.Until(freshOrigin)+10*time.Minute, "the load generator to pregenerate", func() bool {
			log, _ := os.ReadFile(lgOut.Name())
			return strings.Contains(string(log), "; sending")
		})
		// The load generator paces from the end of its generation
		// (Config.Pregenerate): an overrun sends every batch that late,
		// and the prepared requests' sent_at (their due time) would put
		// it in the freshness. Seen here up to one poll (250 ms) late.
		if late := time.Since(freshOrigin); late > time.Second {
			b.Fatalf("real time: the generation overran the lead by about %v: every batch would be sent that late; raise E2E_FRESH_LEAD", late.Round(time.Millisecond))
		} else if late > 0 {
			b.Logf("real time: the generation ended at most %v after the origin: every batch is sent up to that late", late.Round(time.Millisecond))
		}
		time.Sleep(time.Until(freshOrigin))
	}
	freshStart := time.Now()
	// Each process's CPU over the real-time load (from the origin to the
	// load generator's exit; its generation before the origin left out).
	rtRun0, rtCH0, rtLG0 := testtool.ProcessCPU(run.Process.Pid), testtool.ProcessCPU(chPid), testtool.ProcessCPU(lg.Process.Pid)
	rtBusy0, rtTotal0 := testtool.MachineCPU()
	var rtRun, rtCH, rtLG, rtBusy, rtTotal time.Duration
	// seen: window end (ms) → when each version of its row first appeared
	// (wall ms, ascending). An event counts at the first version that
	// appeared after ingest received it: a version written before that
	// cannot hold it (an event a little late for the out-of-order bound
	// reaches its window through an update).
	seen := map[int64][]int64{}
	versions := map[[2]int64]bool{}
	poll := func() {
		out := q(fmt.Sprintf("SELECT DISTINCT toUnixTimestamp(window_end), version FROM {db}.quest_completion WHERE scope = 'all' AND quest_id = '' AND window_end > toDateTime(%d)", freshStart.Unix()))
		now := time.Now().UnixMilli()
		eachIntRow(out, 2, func(r []int64) {
			end, v := r[0], r[1]
			if versions[[2]int64{end, v}] {
				return
			}
			versions[[2]int64{end, v}] = true
			seen[end*1000] = append(seen[end*1000], now)
		})
	}
	done := make(chan error, 1)
	go func() { done <- lg.Wait() }()
	const slide = 60_000
	lgEnd := time.Time{}
	closable := int64(0) // the last window end the event-time watermark passed during the load
	for lgEnd.IsZero() || time.Since(lgEnd) < 2*time.Minute {
		select {
		case err := <-done:
			if err != nil {
				b.Fatalf("loadgen (real time): %v; see %s", err, lgOut.Name())
			}
			lgEnd = time.Now()
			rtRun, rtCH = testtool.ProcessCPU(run.Process.Pid)-rtRun0, testtool.ProcessCPU(chPid)-rtCH0
			rtLG = lg.ProcessState.UserTime() + lg.ProcessState.SystemTime() - rtLG0
			rtBusy, rtTotal = testtool.MachineCPU()
			rtBusy, rtTotal = rtBusy-rtBusy0, rtTotal-rtTotal0
			maxET, _ := strconv.ParseInt(q(fmt.Sprintf("SELECT max(event_time_ms) FROM {db}.events WHERE received_at_ms >= %d", freshStart.UnixMilli())), 10, 64)
			wm := maxET - ooo.Milliseconds()
			closable = wm - wm%slide
		case <-time.After(200 * time.Millisecond):
		}
		poll()
		if closable > 0 {
			// 5 s more for the updates of the last windows.
			if v := seen[closable]; len(v) > 0 && time.Now().UnixMilli()-v[0] > 5000 {
				break
			}
		}
	}
	var fr, endToRow []float64
	total, unseen, tail, slow, updated := 0, 0, 0, 0, 0
	// held: how long the client kept the event before sending it, on the
	// device's own clock (sent_at − ts: both on it), or the whole delay to
	// ingest when there is no sent_at. Without pregeneration sent_at is the
	// actual send, so a generator behind its schedule counts as held; with
	// it, sent_at is the time the request was due, so a send held up by a
	// slow ingest counts as the pipeline's delay.
	out := q(fmt.Sprintf(`SELECT event_time_ms, received_at_ms, ifNull(sent_at_ms - ts_ms, received_at_ms - event_time_ms) FROM {db}.events
		WHERE received_at_ms >= %d AND received_at_ms <= %d`, freshStart.UnixMilli(), lgEnd.UnixMilli()))
	eachIntRow(out, 3, func(r []int64) {
		et, rt, held := r[0], r[1], r[2]
		total++
		if held > 2000 {
			slow++ // held by an offline device or an edge node, or the generator behind real time: not the pipeline's delay
			return
		}
		end := et - et%slide + slide
		if end > closable {
			tail++ // the run's last windows close only by idleness
			return
		}
		i, _ := slices.BinarySearch(seen[end], rt)
		if i == len(seen[end]) {
			unseen++ // no row written after it within 2 minutes of the end of the load
			return
		}
		at := seen[end][i]
		if i > 0 {
			updated++
		}
		fr = append(fr, float64(at-et)/1000)
		endToRow = append(endToRow, float64(at-end)/1000)
	})
	b.ReportMetric(e2eRate, "e2e_events/s")
	b.ReportMetric(rawRate, "raw_rows/s")
	b.ReportMetric(e2eRate/rawRate, "ratio")
	sentRate := float64(total) / lgEnd.Sub(freshStart).Seconds()
	b.ReportMetric(sentRate, "fresh_rate_events/s")
	if len(fr) > 0 {
		b.ReportMetric(quantile(fr, 0.5), "fresh_p50_s")
		b.ReportMetric(quantile(fr, 0.99), "fresh_p99_s")
		b.ReportMetric(quantile(endToRow, 0.5), "end_to_row_p50_s")
		b.ReportMetric(quantile(endToRow, 0.99), "end_to_row_p99_s")
	} else {
		b.Errorf("no freshness sample: no quest_completion row of the real-time load appeared (%d windows seen)", len(seen))
	}
	b.ReportMetric(float64(len(seen)), "windows_seen")
	b.Logf("backlog %d events: sent in %.1fs, drained in %.1fs (%.0f events/s); raw insert %d rows at %.0f rows/s (JSONEachRow %.0f); ratio %.3f (JSONEachRow %.3f)",
		events, sentIn.Seconds(), e2eSecs, e2eRate, rows, rawRate, rawJSONRate, e2eRate/rawRate, e2eRate/rawJSONRate)
	b.Logf("real-time rate received / raw insert: %.3f (JSONEachRow %.3f)", sentRate/rawRate, sentRate/rawJSONRate)
	rtPer := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(max(total, 1)) }
	b.Logf("real-time CPU: machine %.1f of %.1f core-s busy (%.0f%%); loadgen %.1fs (%.1f µs/event), questline run %.1fs (%.1f µs/event), clickhouse-server %.1fs (%.1f µs/event), other %.1fs",
		rtBusy.Seconds(), rtTotal.Seconds(), 100*rtBusy.Seconds()/max(rtTotal.Seconds(), 1e-9), rtLG.Seconds(), rtPer(rtLG),
		rtRun.Seconds(), rtPer(rtRun), rtCH.Seconds(), rtPer(rtCH), (rtBusy - rtRun - rtCH - rtLG).Seconds())
	b.ReportMetric(rtPer(rtRun), "fresh_run_cpu_µs/event")
	b.Logf("processors over the whole run: %.0f snapshots taking %.1f s in all, of which processing paused %.1f s (freezing the state; the rest is written in the background); %.0f events waiting for the clean pass at the end; the clean pass's fetches %.0f, %.1f s in all",
		metric(b, metricsAddr, "questline_processor_snapshot_duration_seconds_count"), metric(b, metricsAddr, "questline_processor_snapshot_duration_seconds_sum"),
		metric(b, metricsAddr, "questline_processor_snapshot_pause_seconds_sum"), metric(b, metricsAddr, "questline_processor_clean_pending_events"),
		metric(b, metricsAddr, "questline_processor_clean_fetch_duration_seconds_count"), metric(b, metricsAddr, "questline_processor_clean_fetch_duration_seconds_sum"))
	b.Logf("questline run at the end: resident %s (peak %s), Go heap in use %.0f MB; snapshot directory %.0f MB",
		vmRSS(run.Process.Pid), vmHWM(run.Process.Pid), metric(b, metricsAddr, "go_memstats_heap_inuse_bytes")/1e6, float64(dirBytes(filepath.Join(dir, "data", "snapshots")))/1e6)
	b.Logf("real time, target %.0f events/s for %ds: %d events received (%.0f events/s); %d freshness samples; left out: %d sent > 2 s after their event time (offline devices, edge holds, or a generator behind real time), %d in windows ending after the last event time − %v (closed by idleness), %d whose window row had not appeared 2 min after the load ended; %d samples counted at an update of their window's row (received after its first version)",
		rate, fresh, total, sentRate, len(fr), slow, tail, ooo, unseen, updated)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}

func quantile(v []float64, q float64) float64 {
	slices.Sort(v)
	return v[min(len(v)-1, int(q*float64(len(v))))]
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func waitUntil(b *testing.B, d time.Duration, what string, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// metric returns the sum of a counter's samples on the /metrics page.
func metric(b *testing.B, addr, name string) float64 {
	r, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer r.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(r.Body)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, name+" ") || strings.HasPrefix(l, name+"{") {
			f := strings.Fields(l)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return sum
}

// eachIntRow calls fn with every row of a TSV query answer that has width
// integer fields; other rows are skipped.
func eachIntRow(out string, width int, fn func([]int64)) {
	r := make([]int64, width)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != width {
			continue
		}
		ok := true
		for i := range f {
			var err error
			if r[i], err = strconv.ParseInt(f[i], 10, 64); err != nil {
				ok = false
			}
		}
		if ok {
			fn(r)
		}
	}
}

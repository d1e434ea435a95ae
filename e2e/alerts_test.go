package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/questline/questline/internal/testtool"
	"github.com/questline/questline/loadgen"
)

// namesRegisterer records the name of every metric registered through it
// (a vector without series yet included), for checking that the alert
// rules read metrics the pipeline has.
type namesRegisterer struct {
	prometheus.Registerer
	mu    sync.Mutex
	names map[string]bool
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *namesRegisterer) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	r.mu.Lock()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	r.mu.Unlock()
	return r.Registerer.Register(c)
}

func (r *namesRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func (r *namesRegisterer) has(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.names[name]
}

// webhook receives Alertmanager's notifications.
type webhook struct {
	mu    sync.Mutex
	posts []amPost
}

type amPost struct {
	Receiver string
	Path     string
	Status   string `json:"status"`
	Alerts   []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"alerts"`
}

func (w *webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	var p amPost
	if err := json.NewDecoder(r.Body).Decode(&p); err == nil {
		p.Path = r.URL.Path
		w.mu.Lock()
		w.posts = append(w.posts, p)
		w.mu.Unlock()
	}
}

// firing returns the labels and annotations of the firing alerts named
// name that reached path.
func (w *webhook) firing(path, name string) (out []map[string]string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.posts {
		for _, a := range p.Alerts {
			if p.Path == path && a.Status == "firing" && a.Labels["alertname"] == name {
				m := map[string]string{}
				for k, v := range a.Labels {
					m[k] = v
				}
				for k, v := range a.Annotations {
					m["annotation:"+k] = v
				}
				out = append(out, m)
			}
		}
	}
	return out
}

// startProcess starts a long-running tool and stops it at t's cleanup.
func startProcess(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(testtool.Require(t, name), args...)
	log, err := os.Create(filepath.Join(dir, filepath.Base(name)+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("%s's log (last 3 KB):\n%s", name, tail(string(b), 3000))
		}
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// promQuery runs an instant query on the Prometheus at addr and returns
// each series' labels (without __name__) and value.
func promQuery(t *testing.T, addr, q string) (out []struct {
	Labels map[string]string
	Value  float64
}) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/api/v1/query?" + url.Values{"query": {q}}.Encode())
	if err != nil {
		return nil // not up yet
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	for _, s := range r.Data.Result {
		v, _ := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
		delete(s.Metric, "__name__")
		out = append(out, struct {
			Labels map[string]string
			Value  float64
		}{s.Metric, v})
	}
	return out
}

// TestAlertsEndToEnd runs the pipeline under a load with one auction in six
// carrying an integrity violation, a real Prometheus scraping it with
// alerts/questline.rules.yml (each alert's `for` shortened to 5 s), and a
// real Alertmanager with alerts/alertmanager.yml sending to a webhook. It
// checks that the rules read metrics the pipeline registers, that the
// yield gauges equal the rows in ClickHouse and the recording rules equal
// the gauges, and that QuestlineIntegrityRatioLow reaches the on-call
// receiver, with the placement and its runbook, while QuestlinePipelineDown
// does not fire. (QuestlineYieldDrop needs an hour of history: its
// promtool tests cover it.)
func TestAlertsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pipeline, Prometheus and Alertmanager for minutes")
	}
	dir := t.TempDir()
	cfg := loadgen.DefaultConfig()
	cfg.Seed = 11
	// 100 s of event time, dense enough that the last window (which holds
	// at most its first minute of it) has more auctions per placement than
	// the alerts' minimum of 100.
	cfg.Rate = 400
	cfg.Count = 40_000
	cfg.Speed = 0
	cfg.Concurrency = 4
	cfg.ViolationRate = 0.02 // per kind: about 18 % of auctions have one
	cfg.Origin = time.Now().Add(-12 * time.Minute).Truncate(time.Minute)
	s := newStack(t, cfg.Windows, 1)

	metricsSrv := httptest.NewServer(promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	t.Cleanup(metricsSrv.Close)
	hook := &webhook{}
	hookSrv := httptest.NewServer(hook)
	t.Cleanup(hookSrv.Close)

	// Alertmanager with the repository's routing, its receivers pointed at
	// the webhook.
	am, err := os.ReadFile("../alerts/alertmanager.yml")
	if err != nil {
		t.Fatal(err)
	}
	amCfg := strings.ReplaceAll(string(am), "http://127.0.0.1:9099", hookSrv.URL)
	if amCfg == string(am) {
		t.Fatal("alertmanager.yml's receivers are not at http://127.0.0.1:9099: update this test")
	}
	writeFile(t, filepath.Join(dir, "alertmanager.yml"), amCfg)
	amAddr := testtool.FreeAddr(t)
	startProcess(t, dir, "prometheus-alertmanager", "--config.file="+filepath.Join(dir, "alertmanager.yml"),
		"--storage.path="+filepath.Join(dir, "am"), "--web.listen-address="+amAddr, "--cluster.listen-address=")

	// Prometheus with the repository's rules, `for` shortened.
	rules, err := os.ReadFile("../alerts/questline.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	short := regexp.MustCompile(`(?m)^(\s+for:) \d+[smh]$`).ReplaceAllString(string(rules), "$1 5s")
	writeFile(t, filepath.Join(dir, "questline.rules.yml"), short)
	target := strings.TrimPrefix(metricsSrv.URL, "http://")
	writeFile(t, filepath.Join(dir, "prometheus.yml"), fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
alerting:
  alertmanagers:
    - static_configs:
        - targets: [%q]
scrape_configs:
  - job_name: questline
    static_configs:
      - targets: [%q]
`, filepath.Join(dir, "questline.rules.yml"), amAddr, target))
	promAddr := testtool.FreeAddr(t)
	startProcess(t, dir, "prometheus", "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "prom"), "--web.listen-address="+promAddr)

	tr, err := loadgen.Run(t.Context(), cfg, loadgen.NewHTTPSender(s.url, clientKey, serverKey), nil)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Run.SendErrors != 0 || tr.Run.Rejected != 0 {
		t.Fatalf("%d send errors, %d rejected events", tr.Run.SendErrors, tr.Run.Rejected)
	}

	// Every questline metric a rule reads is registered by the pipeline.
	for _, name := range slices.Compact(slices.Sorted(slices.Values(regexp.MustCompile(`\bquestline_[a-z_]+\b`).FindAllString(string(rules), -1)))) {
		if !s.names.has(name) {
			t.Errorf("the rules read %s, which the pipeline does not register", name)
		}
	}

	// The processors' clock runs fast: idle partitions' watermark records
	// close every window and let the clean pass catch up, as minutes of
	// traffic would. Until the clean pass has its first events (its lag
	// is 11 minutes of event time), sources send no watermark the merge
	// stage can use, and the yield gauges show nothing.
	s.clock.fast()

	// The integrity alert reaches the on-call receiver.
	deadline := time.Now().Add(4 * time.Minute)
	var pages []map[string]string
	if !s.waitFor(deadline, "QuestlineIntegrityRatioLow at the on-call webhook", func() bool {
		pages = hook.firing("/oncall", "QuestlineIntegrityRatioLow")
		return len(pages) > 0
	}) {
		for _, q := range []string{"questline:yield_integrity_ratio:latest", "questline:yield_auctions:latest", "ALERTS", "up"} {
			t.Logf("%s: %v", q, promQuery(t, promAddr, q))
		}
		t.Logf("gauges: %v", gatheredGauges(t, s.reg))
	}
	for _, p := range pages {
		if p["severity"] != "page" || p["placement"] == "" || p["annotation:runbook_url"] != "docs/runbook.md#questlineintegrityratiolow" {
			t.Errorf("QuestlineIntegrityRatioLow arrived as %v", p)
		}
	}

	// Every window closed: the gauges show each placement's last window,
	// as written to ClickHouse, and Prometheus's recording rules the same.
	var placements []string
	s.waitFor(time.Now().Add(2*time.Minute), "the yield gauges to match offer_yield", func() bool {
		placements = placements[:0]
		g := gatheredGauges(t, s.reg)
		ok := true
		for key, end := range g {
			pl, found := strings.CutPrefix(key, `questline_yield_window_end_timestamp_seconds{placement=`)
			if !found {
				continue
			}
			pl = strings.Trim(strings.TrimSuffix(pl, "}"), `"`)
			placements = append(placements, pl)
			rows := s.query(fmt.Sprintf(`SELECT auctions, impressions, revenue_micros FROM {db}.offer_yield FINAL
				WHERE placement = '%s' AND bidder_id = '' AND scope = 'all' AND window_end = toDateTime(%d)`, pl, int64(end)))
			var want []string
			for _, what := range []string{"auctions", "impressions", "revenue_micros"} {
				want = append(want, strconv.FormatFloat(g[gaugeKey(what, pl)], 'f', -1, 64))
			}
			if len(rows) != 1 || !slices.Equal(rows[0], want) {
				ok = false
			}
			irows := s.query(fmt.Sprintf(`SELECT DISTINCT integrity_ratio FROM {db}.bidstream_integrity FINAL
				WHERE placement = '%s' AND scope = 'all' AND window_end = toDateTime(%d)`, pl, int64(end)))
			if len(irows) != 1 {
				ok = false
			} else if r, err := strconv.ParseFloat(irows[0][0], 64); err != nil || math.Abs(r-g[gaugeKey("integrity_ratio", pl)]) > 1e-9 {
				ok = false
			}
		}
		return ok && len(placements) > 0 && s.mergeCaughtUp()
	})
	if len(placements) < 2 {
		t.Errorf("yield gauges for %d placements, want every placement of the load (%v)", len(placements), placements)
	}
	s.waitFor(time.Now().Add(30*time.Second), "the recording rules to show the gauges", func() bool {
		g := gatheredGauges(t, s.reg)
		got := promQuery(t, promAddr, "questline:yield_integrity_ratio:latest")
		if len(got) != len(placements) {
			return false
		}
		for _, r := range got {
			if r.Value != g[gaugeKey("integrity_ratio", r.Labels["placement"])] {
				return false
			}
		}
		return true
	})
	for _, name := range []string{"QuestlinePipelineDown"} {
		if a := promQuery(t, promAddr, fmt.Sprintf(`ALERTS{alertname=%q}`, name)); len(a) > 0 {
			t.Errorf("%s is %v", name, a)
		}
	}
}

func gaugeKey(what, placement string) string {
	return fmt.Sprintf(`questline_yield_window_%s{placement=%q}`, what, placement)
}

// gatheredGauges returns reg's gauges as name{labels} → value.
func gatheredGauges(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if m.GetGauge() == nil {
				continue
			}
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			out[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = m.GetGauge().GetValue()
		}
	}
	return out
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

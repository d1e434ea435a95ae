package dashboards

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/questline/questline/internal/testtool"
)

// promPanels returns every Prometheus expression of the dashboards, by
// "board / panel / refId".
func promPanels() map[string]string {
	out := map[string]string{}
	for _, b := range boards() {
		for _, r := range b.rows {
			for _, p := range r.panels {
				for i, q := range p.prom {
					out[fmt.Sprintf("%s / %s / %s", b.uid, p.title, refID(i))] = q.expr
				}
			}
		}
	}
	return out
}

// grafanaVariables are the Grafana variables the expressions may use,
// with a value for checking them.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "5m")

// TestPromQLParses writes every expression, Grafana variables replaced,
// into a rules file as a recording rule and has promtool check it.
func TestPromQLParses(t *testing.T) {
	promtool := testtool.Require(t, "promtool")
	exprs := promPanels()
	keys := sortedKeys(exprs)
	type rule struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	var rules []rule
	for i, k := range keys {
		e := grafanaVariables.Replace(exprs[k])
		if strings.Contains(e, "$") {
			t.Errorf("%s: unknown Grafana variable in %s", k, exprs[k])
		}
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard:panel_query_%d", i), Expr: e})
	}
	// JSON is YAML: the expressions need no YAML quoting of their own.
	doc, err := json.MarshalIndent(map[string]any{
		"groups": []any{map[string]any{"name": "dashboards", "rules": rules}},
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dashboards.rules.yml")
	if err := os.WriteFile(file, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s\nrules:\n%s", err, out, doc)
	}
	if !strings.Contains(string(out), fmt.Sprintf("%d rules found", len(rules))) {
		t.Fatalf("promtool found other rules than the %d written:\n%s", len(rules), out)
	}
}

// metricKinds are the client_golang option types and the kind of metric
// each declares.
var metricKinds = map[string]string{
	"CounterOpts":   "counter",
	"GaugeOpts":     "gauge",
	"HistogramOpts": "histogram",
	"SummaryOpts":   "summary",
}

// registeredMetrics returns the metrics the module's code declares (name
// to kind), read from its source: every prometheus.XxxOpts literal with a
// Name outside tests. Reading the source, not a list, keeps one place
// where a metric is named: the code that registers it.
func registeredMetrics(t *testing.T, root string) map[string]string {
	t.Helper()
	metrics := map[string]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			sel, ok := lit.Type.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "prometheus" || metricKinds[sel.Sel.Name] == "" {
				return true
			}
			for _, el := range lit.Elts {
				kv, ok := el.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				key, ok := kv.Key.(*ast.Ident)
				if ok && (key.Name == "Namespace" || key.Name == "Subsystem") {
					t.Errorf("%s: metric with %s: extend this scan", fset.Position(kv.Pos()), key.Name)
				}
				if !ok || key.Name != "Name" {
					continue
				}
				val, ok := kv.Value.(*ast.BasicLit)
				if !ok || val.Kind != token.STRING {
					t.Errorf("%s: metric name is not a string literal: extend this scan", fset.Position(kv.Pos()))
					continue
				}
				name, err := strconv.Unquote(val.Value)
				if err != nil {
					t.Fatal(err)
				}
				metrics[name] = metricKinds[sel.Sel.Name]
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return metrics
}

// metricName finds the metric names of questline in an expression.
var metricName = regexp.MustCompile(`\bquestline_[a-z0-9_]+\b`)

// recordedName is a recording rule's name (level:metric:operations).
var recordedName = regexp.MustCompile(`\bquestline:[a-z0-9_:]+\b`)

// TestPromQLUsesRecordedSeries: a recording rule an expression reads is
// one alerts/questline.rules.yml records.
func TestPromQLUsesRecordedSeries(t *testing.T) {
	rules, err := os.ReadFile("../alerts/questline.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s*- record: (\S+)$`).FindAllStringSubmatch(string(rules), -1) {
		recorded[m[1]] = true
	}
	n := 0
	exprs := promPanels()
	for _, k := range sortedKeys(exprs) {
		for _, m := range recordedName.FindAllString(exprs[k], -1) {
			n++
			if !recorded[m] {
				t.Errorf("%s: %s is not recorded by alerts/questline.rules.yml", k, m)
			}
		}
	}
	if n == 0 {
		t.Error("no panel reads a recording rule: the yield alerts' inputs are not shown")
	}
}

// TestPromQLUsesRegisteredMetrics checks that every metric an expression
// names is registered by questline's code, with a suffix its kind has
// (_bucket, _sum, _count of histograms), that counters and histograms are
// read through rate(), and that the dashboard covers the metrics on-call
// needs.
func TestPromQLUsesRegisteredMetrics(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found: %v", err)
	}
	registered := registeredMetrics(t, root)
	if len(registered) < 20 {
		t.Fatalf("found only %d registered metrics in %s: %v", len(registered), root, registered)
	}
	used := map[string]bool{}
	exprs := promPanels()
	for _, k := range sortedKeys(exprs) {
		e := exprs[k]
		for _, m := range metricName.FindAllString(e, -1) {
			base, kind := m, registered[m]
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(m, suffix); kind == "" && ok && (registered[b] == "histogram" || registered[b] == "summary") {
					base, kind = b, registered[b]
				}
			}
			if kind == "" {
				t.Errorf("%s: %s is not a metric questline registers", k, m)
				continue
			}
			used[base] = true
			if (kind == "counter" || kind == "histogram") && !strings.Contains(e, "rate("+m+"[") {
				t.Errorf("%s: %s %s is read without rate()", k, kind, m)
			}
			if kind == "histogram" && !strings.HasSuffix(m, "_bucket") {
				t.Errorf("%s: histogram %s is read without its buckets", k, m)
			}
		}
	}
	for _, need := range []string{
		"questline_ingest_events_accepted_total", "questline_ingest_events_rejected_total", "questline_ingest_dead_letters_total",
		"questline_sink_consumer_lag_records", "questline_processor_watermark_lag_seconds", "questline_processor_clean_lag_seconds", "questline_processor_clean_stuck_seconds", "questline_processor_late_events_total",
		"questline_processor_rows_emitted_total", "questline_processor_rows_refused_total",
		"questline_clickhouse_insert_errors_total", "questline_clickhouse_insert_duration_seconds",
		"questline_processor_restore_duration_seconds", "questline_processor_snapshot_duration_seconds",
	} {
		if !used[need] {
			t.Errorf("the operations dashboard does not show %s", need)
		}
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Package alerts_test checks questline's Prometheus rules and Alertmanager
// routing with the real tools that read them (promtool, amtool), and that
// every alert is complete: routed by its severity, described, tested, and
// pointing at a runbook section whose queries run on ClickHouse. e2e's
// TestAlertsEndToEnd runs them in a real Prometheus against the pipeline.
package alerts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/questline/questline/internal/chtest"
	"github.com/questline/questline/internal/testtool"
	ch "github.com/questline/questline/sinks/clickhouse"
)

var chs chtest.Shared

func TestMain(m *testing.M) { os.Exit(chs.Run(m)) }

// tool runs a tool and returns its standard output.
func tool(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(testtool.Require(t, name), args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

func TestRulesAreValid(t *testing.T) {
	tool(t, "promtool", "check", "rules", "questline.rules.yml")
}

// TestRulesUnitTests runs questline.rules.test.yml: every alert fires on
// the series that should fire it, and not beside them.
func TestRulesUnitTests(t *testing.T) {
	tool(t, "promtool", "test", "rules", "questline.rules.test.yml")
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type ruleTests struct {
	Tests []struct {
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// runbookAnchors returns the anchors of docs/runbook.md's "## " headings
// (as GitHub makes them: lower case, spaces to dashes).
func runbookAnchors(t *testing.T) map[string]bool {
	b, err := os.ReadFile("../docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			out[strings.ReplaceAll(strings.ToLower(strings.TrimSpace(h)), " ", "-")] = true
		}
	}
	return out
}

// TestEveryAlertIsComplete: each alert has a severity that Alertmanager
// routes to a receiver of its own, a summary, a description, a runbook
// section that exists, and a unit test in which it fires.
func TestEveryAlertIsComplete(t *testing.T) {
	var rf ruleFile
	readYAML(t, "questline.rules.yml", &rf)
	var rt ruleTests
	readYAML(t, "questline.rules.test.yml", &rt)
	fired := map[string]bool{}
	for _, tc := range rt.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fired[a.Alertname] = true
			}
		}
	}
	anchors := runbookAnchors(t)
	receivers := map[string]string{
		"page":   "oncall",
		"ticket": "ticket",
	}
	alerts := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			sev := r.Labels["severity"]
			want, ok := receivers[sev]
			if !ok {
				t.Errorf("%s: severity %q, want page or ticket", r.Alert, sev)
				continue
			}
			got := strings.TrimSpace(tool(t, "amtool", "config", "routes", "test", "--config.file", "alertmanager.yml",
				"alertname="+r.Alert, "severity="+sev))
			if got != want {
				t.Errorf("%s (severity %s) is routed to %q, want %q", r.Alert, sev, got, want)
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s has no %s", r.Alert, a)
				}
			}
			if want := "docs/runbook.md#" + strings.ToLower(r.Alert); r.Annotations["runbook_url"] != want {
				t.Errorf("%s: runbook_url %q, want %q", r.Alert, r.Annotations["runbook_url"], want)
			}
			if !anchors[strings.ToLower(r.Alert)] {
				t.Errorf("%s: docs/runbook.md has no section ## %s", r.Alert, r.Alert)
			}
			if !fired[r.Alert] {
				t.Errorf("%s: no test in questline.rules.test.yml fires it", r.Alert)
			}
		}
	}
	if alerts == 0 {
		t.Fatal("no alerts read")
	}
	// The inhibition in alertmanager.yml names this alert.
	if !fired["QuestlinePipelineDown"] {
		t.Error("QuestlinePipelineDown, which alertmanager.yml's inhibition names, is gone")
	}
}

// TestRunbookQueries runs every SQL block of docs/runbook.md on a
// migrated schema: the runbook's queries name real tables and columns and
// run on this ClickHouse.
func TestRunbookQueries(t *testing.T) {
	b, err := os.ReadFile("../docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(string(b), -1)
	if len(blocks) == 0 {
		t.Fatal("no ```sql blocks in docs/runbook.md")
	}
	srv := chs.Server(t)
	db := srv.NewDatabase(t)
	ctx := context.Background()
	if err := ch.Migrate(ctx, srv.DSN(db), nil); err != nil {
		t.Fatal(err)
	}
	for _, m := range blocks {
		q := strings.TrimSuffix(strings.TrimSpace(m[1]), ";")
		if _, err := srv.QueryIn(ctx, db, q); err != nil {
			t.Errorf("runbook query\n%s\n%v", q, err)
		}
	}
}

// TestRulesReadOnlyKnownLabels: the rules group and match by labels the
// metrics have (a typo in on(...) or by(...) makes an alert silently
// never fire).
func TestRulesReadOnlyKnownLabels(t *testing.T) {
	var rf ruleFile
	readYAML(t, "questline.rules.yml", &rf)
	known := []string{"instance", "job", "placement", "table", "topic", "partition", "kind", "reason", "source", "stage"}
	re := regexp.MustCompile(`\b(?:by|on)\s*\(([^)]*)\)`)
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			for _, m := range re.FindAllStringSubmatch(r.Expr, -1) {
				for _, l := range strings.Split(m[1], ",") {
					if l = strings.TrimSpace(l); l != "" && !slices.Contains(known, l) {
						t.Errorf("%s%s: unknown label %q in %s", r.Alert, r.Record, l, m[0])
					}
				}
			}
		}
	}
}

// TestInhibition posts alerts to a real Alertmanager running
// alertmanager.yml: QuestlinePipelineDown of one process holds that
// process's other pages, not another process's, not a yield page (by
// placement, no instance), and not itself.
func TestInhibition(t *testing.T) {
	dir := t.TempDir()
	addr := testtool.FreeAddr(t)
	cmd := exec.Command(testtool.Require(t, "prometheus-alertmanager"), "--config.file=alertmanager.yml",
		"--storage.path="+dir, "--web.listen-address="+addr, "--cluster.listen-address=")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager:\n%s", logs.String())
		}
	})
	type alert struct {
		Labels map[string]string `json:"labels"`
	}
	sent := []alert{
		{map[string]string{"alertname": "QuestlinePipelineDown", "severity": "page", "instance": "q1", "job": "questline"}},
		{map[string]string{"alertname": "QuestlineWatermarkLagHigh", "severity": "page", "instance": "q1"}},
		{map[string]string{"alertname": "QuestlineWatermarkLagHigh", "severity": "page", "instance": "q2"}},
		{map[string]string{"alertname": "QuestlineYieldDrop", "severity": "page", "placement": "home"}},
		{map[string]string{"alertname": "QuestlineSinkLagging", "severity": "ticket", "instance": "q1"}},
	}
	body, _ := json.Marshal(sent)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Post("http://"+addr+"/api/v2/alerts", "application/json", bytes.NewReader(body))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager did not take the alerts: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	want := map[string]bool{ // alertname/instance-or-placement → inhibited
		"QuestlinePipelineDown/q1":     false,
		"QuestlineWatermarkLagHigh/q1": true,
		"QuestlineWatermarkLagHigh/q2": false,
		"QuestlineYieldDrop/home":      false,
		"QuestlineSinkLagging/q1":      false, // a ticket
	}
	var got map[string]bool
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/api/v2/alerts")
		if err != nil {
			t.Fatal(err)
		}
		var alerts []struct {
			Labels map[string]string `json:"labels"`
			Status struct {
				InhibitedBy []string `json:"inhibitedBy"`
			} `json:"status"`
		}
		err = json.NewDecoder(resp.Body).Decode(&alerts)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		got = map[string]bool{}
		for _, a := range alerts {
			got[a.Labels["alertname"]+"/"+a.Labels["instance"]+a.Labels["placement"]] = len(a.Status.InhibitedBy) > 0
		}
		if maps.Equal(got, want) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("inhibited: %v, want %v", got, want)
}

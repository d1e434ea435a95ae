package dashboards

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// committedDir is the generated JSON in the repository, relative to this
// package.
const committedDir = "json"

// wantUIDs are the dashboards' uids. They are part of the dashboards'
// URLs and of links people keep: never change one.
var wantUIDs = []string{"questline-quests", "questline-lift", "questline-yield", "questline-bots", "questline-operations"}

// TestCommittedJSONIsGenerated fails when dashboards/json differs from what
// the code generates: a changed dashboard needs `go run ./cmd/questline
// dashboards` and the regenerated files committed.
func TestCommittedJSONIsGenerated(t *testing.T) {
	files, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	committed, err := filepath.Glob(filepath.Join(committedDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, f := range files {
		want = append(want, f.Name)
	}
	for _, p := range committed {
		got = append(got, filepath.Base(p))
	}
	sort.Strings(want)
	sort.Strings(got)
	if !slices.Equal(want, got) {
		t.Fatalf("dashboards/json holds %v, the code generates %v: run `go run ./cmd/questline dashboards` and commit", got, want)
	}
	for _, f := range files {
		text, err := os.ReadFile(filepath.Join(committedDir, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(text, f.JSON) {
			t.Errorf("dashboards/json/%s is stale: run `go run ./cmd/questline dashboards` and commit", f.Name)
		}
	}
}

// TestGenerateIsDeterministic generates twice and compares, and checks the
// uids and file names.
func TestGenerateIsDeterministic(t *testing.T) {
	a, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != len(b) {
		t.Fatalf("%d then %d files", len(a), len(b))
	}
	var uids []string
	for i := range a {
		if a[i].Name != b[i].Name || !bytes.Equal(a[i].JSON, b[i].JSON) {
			t.Errorf("%s: two runs differ", a[i].Name)
		}
		var d struct{ UID string }
		if err := json.Unmarshal(a[i].JSON, &d); err != nil {
			t.Fatal(err)
		}
		if a[i].Name != d.UID+".json" {
			t.Errorf("file %s holds uid %q", a[i].Name, d.UID)
		}
		uids = append(uids, d.UID)
	}
	if !slices.Equal(uids, wantUIDs) {
		t.Errorf("uids %v, want %v (uids are stable: add, never rename)", uids, wantUIDs)
	}
}

// jsonPanel is what the tests read of a generated panel.
type jsonPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type, UID string
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		RefID      string `json:"refId"`
		Datasource *struct {
			Type, UID string
		} `json:"datasource"`
		RawSQL string `json:"rawSql"`
		Format *int   `json:"format"`
		Expr   string `json:"expr"`
	} `json:"targets"`
	Panels []jsonPanel `json:"panels"`
}

// jsonBoard is what the tests read of a generated dashboard.
type jsonBoard struct {
	UID        string      `json:"uid"`
	Title      string      `json:"title"`
	Panels     []jsonPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name    string `json:"name"`
			Query   string `json:"query"`
			Options []struct {
				Value string `json:"value"`
			} `json:"options"`
		} `json:"list"`
	} `json:"templating"`
}

// allowedPlaceholders are the Grafana placeholders a ClickHouse query may
// hold: the plugin's macros this package uses and the scope variable.
var allowedPlaceholders = regexp.MustCompile(`\$__timeFilter\(|\$__fromTime|\$__toTime|\$__interval_s|\$\{scope:sqlstring\}`)

// TestPanelsHaveDataSourceAndQuery reads the generated JSON: every panel
// has a provisioned data source and queries for it, matching the
// declarations that the ClickHouse and Prometheus tests run; ids are
// unique; the scope variable exists where queries use it.
func TestPanelsHaveDataSourceAndQuery(t *testing.T) {
	files, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	decls := boards()
	for i, f := range files {
		if !json.Valid(f.JSON) {
			t.Fatalf("%s: invalid JSON", f.Name)
		}
		var d jsonBoard
		if err := json.Unmarshal(f.JSON, &d); err != nil {
			t.Fatal(err)
		}
		var declared []panel
		for _, r := range decls[i].rows {
			declared = append(declared, r.panels...)
		}
		var panels []jsonPanel
		ids := map[int]bool{}
		for _, p := range d.Panels {
			if ids[p.ID] {
				t.Errorf("%s: panel id %d twice", f.Name, p.ID)
			}
			ids[p.ID] = true
			if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("%s: panel %q: grid position %+v", f.Name, p.Title, p.GridPos)
			}
			if p.Type == "row" {
				if len(p.Panels) != 0 {
					t.Errorf("%s: row %q nests panels; an expanded row's panels follow it", f.Name, p.Title)
				}
				continue
			}
			panels = append(panels, p)
		}
		if len(panels) != len(declared) {
			t.Fatalf("%s: %d panels, %d declared", f.Name, len(panels), len(declared))
		}
		usesScope := false
		for j, p := range panels {
			dp := declared[j]
			if p.Title != dp.title {
				t.Errorf("%s: panel %d is %q, declared %q", f.Name, j, p.Title, dp.title)
			}
			if p.Datasource == nil || (p.Datasource.UID != ClickHouseUID && p.Datasource.UID != PrometheusUID) {
				t.Errorf("%s: panel %q: data source %+v", f.Name, p.Title, p.Datasource)
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", f.Name, p.Title)
			}
			for k, q := range p.Targets {
				if q.Datasource == nil || *q.Datasource != *p.Datasource {
					t.Errorf("%s: panel %q query %s: data source %+v, panel's %+v", f.Name, p.Title, q.RefID, q.Datasource, p.Datasource)
				}
				switch p.Datasource.UID {
				case ClickHouseUID:
					if p.Datasource.Type != ClickHouseType || dp.sql == nil || q.RawSQL != dp.sql.text || q.Format == nil {
						t.Errorf("%s: panel %q: ClickHouse query %+v does not match its declaration", f.Name, p.Title, q)
						continue
					}
					if (*q.Format == int(formatTimeSeries)) != (p.Type == "timeseries") {
						t.Errorf("%s: panel %q (%s) has format %d", f.Name, p.Title, p.Type, *q.Format)
					}
					rest := allowedPlaceholders.ReplaceAllString(q.RawSQL, "")
					if strings.Contains(rest, "$") {
						t.Errorf("%s: panel %q: unknown placeholder in %s", f.Name, p.Title, q.RawSQL)
					}
					usesScope = usesScope || strings.Contains(q.RawSQL, "${scope")
				case PrometheusUID:
					if p.Datasource.Type != "prometheus" || k >= len(dp.prom) || q.Expr != dp.prom[k].expr {
						t.Errorf("%s: panel %q: PromQL %q does not match its declaration", f.Name, p.Title, q.Expr)
					}
				}
			}
		}
		var vars []string
		for _, v := range d.Templating.List {
			vars = append(vars, v.Name)
			if v.Name == "scope" {
				var opts []string
				for _, o := range v.Options {
					opts = append(opts, o.Value)
				}
				if v.Query != "all,clean" || !slices.Equal(opts, []string{"all", "clean"}) {
					t.Errorf("%s: scope variable %q %v, want all,clean", f.Name, v.Query, opts)
				}
			}
		}
		if usesScope != slices.Contains(vars, "scope") {
			t.Errorf("%s: queries use scope: %v; variables %v", f.Name, usesScope, vars)
		}
	}
}

// TestProvisionedDataSources checks that the provisioning file defines the
// data sources the panels name.
func TestProvisionedDataSources(t *testing.T) {
	text, err := os.ReadFile(filepath.Join("provisioning", "datasources", "clickhouse.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"uid: " + ClickHouseUID, "type: " + ClickHouseType, "uid: " + PrometheusUID, "type: prometheus"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("provisioning/datasources/clickhouse.yml lacks %q", want)
		}
	}
}

// TestWrite writes into a temporary directory, as the command does.
func TestWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	paths, err := Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := Generate()
	if len(paths) != len(files) {
		t.Fatalf("wrote %v", paths)
	}
	for i, p := range paths {
		text, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(text, files[i].JSON) {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// Package dashboards builds questline's Grafana dashboards (SPEC §7) with
// the Grafana Foundation SDK and renders them to the JSON files that
// Grafana's file provisioning loads (dashboards/json, mounted by
// docker-compose.yml; provisioning files in dashboards/provisioning).
//
// Each dashboard is declared as data (board, row, panel: quests.go,
// lift.go, yield.go, bots.go, operations.go) and turned into SDK builders
// by panels.go. ClickHouse panels are plain SQL over the tables of SPEC §6,
// read the latest version of each row (FINAL, docs/analysts.md) and use
// only the ClickHouse plugin's macros ($__timeFilter, $__fromTime,
// $__toTime, $__interval_s) and the dashboard's scope variable; the SQL
// runs on ClickHouse 18.16 and current releases. Operations panels are
// PromQL over the metrics the binary registers.
//
// Regenerate the committed JSON with `questline dashboards` (or
// `go run ./cmd/questline dashboards`); a test fails when the committed
// files differ from what the code generates.
package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Data source uids and plugin type, as provisioned by
// dashboards/provisioning/datasources/clickhouse.yml.
const (
	ClickHouseUID  = "questline-clickhouse"
	ClickHouseType = "grafana-clickhouse-datasource"
	PrometheusUID  = "questline-prometheus"
)

// DefaultDir is where `questline dashboards` writes by default, relative
// to the repository root.
const DefaultDir = "dashboards/json"

// File is one generated dashboard: its file name and JSON text.
type File struct {
	Name string // "<uid>.json"
	JSON []byte
}

// boards lists every dashboard, in file order.
func boards() []board {
	return []board{questsBoard(), liftBoard(), yieldBoard(), botsBoard(), operationsBoard()}
}

// Generate builds every dashboard and renders it as indented JSON with a
// trailing newline. The output depends only on the code: the same
// questline version always generates the same bytes.
func Generate() ([]File, error) {
	var files []File
	for _, b := range boards() {
		d, err := b.build()
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", b.uid, err)
		}
		text, err := render(d)
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", b.uid, err)
		}
		files = append(files, File{Name: b.uid + ".json", JSON: text})
	}
	return files, nil
}

// Write generates every dashboard into dir, creating it if needed, and
// returns the files written. Files of dir that are not generated dashboards
// are left alone.
func Write(dir string) ([]string, error) {
	files, err := Generate()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	for _, f := range files {
		p := filepath.Join(dir, f.Name)
		if err := os.WriteFile(p, f.JSON, 0o644); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// render encodes v as indented JSON with a trailing newline. The SDK's
// encoders escape <, > and & as \u003c…, which makes the SQL unreadable
// in review; so the JSON is decoded once more (numbers kept verbatim) and
// written again without that escaping. Object keys come out sorted.
func render(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(tree); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

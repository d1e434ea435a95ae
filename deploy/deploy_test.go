// Package deploy holds the configuration of the docker-compose stack. Its
// test checks every file with the real tool that will read it, since no
// Docker engine runs where the tests do.
package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/questline/questline/internal/testtool"
	"go.yaml.in/yaml/v3"
)

func check(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(testtool.Require(t, name), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestComposeFileIsValid(t *testing.T) {
	out := check(t, "..", "docker-compose", "config")
	for _, svc := range []string{"kafka:", "clickhouse:", "grafana:", "prometheus:", "alertmanager:", "questline:"} {
		if !strings.Contains(out, "  "+svc) {
			t.Errorf("docker-compose.yml has no %s service", strings.TrimSuffix(svc, ":"))
		}
	}
	if !strings.Contains(out, "KAFKA_PROCESS_ROLES") {
		t.Error("Kafka must run in KRaft mode")
	}
}

func TestPrometheusConfigIsValid(t *testing.T) {
	check(t, "..", "promtool", "check", "config", "deploy/prometheus.yml")
}

func TestAlertmanagerConfigIsValid(t *testing.T) {
	check(t, "..", "amtool", "check-config", "alerts/alertmanager.yml")
}

// The compose file mounts these; a rename that forgets it breaks the stack.
func TestMountedPathsExist(t *testing.T) {
	for _, p := range []string{"deploy/prometheus.yml", "alerts/alertmanager.yml", "dashboards/provisioning/datasources", "dashboards/provisioning/dashboards", "Dockerfile"} {
		if _, err := os.Stat(filepath.Join("..", p)); err != nil {
			t.Errorf("compose needs %s: %v", p, err)
		}
	}
}

// TestGrafanaReadsAsReader: Grafana's ClickHouse data source logs in as
// the user the clickhouse service creates on its first start, read-only
// and limited to questline, with the password both services are given
// (the plugin runs whatever SQL an editor types; the default user could
// drop the tables).
func TestGrafanaReadsAsReader(t *testing.T) {
	var compose struct {
		Services map[string]struct {
			Environment map[string]string
			Volumes     []string
		}
	}
	if err := yaml.Unmarshal([]byte(check(t, "..", "docker-compose", "config")), &compose); err != nil {
		t.Fatal(err)
	}
	const pwVar = "GRAFANA_CLICKHOUSE_PASSWORD"
	chPW, grafanaPW := compose.Services["clickhouse"].Environment[pwVar], compose.Services["grafana"].Environment[pwVar]
	if chPW == "" || chPW != grafanaPW {
		t.Errorf("%s: clickhouse has %q, grafana %q: both need the same", pwVar, chPW, grafanaPW)
	}
	initdb := filepath.Join("deploy", "clickhouse", "initdb")
	mounted := false
	for _, v := range compose.Services["clickhouse"].Volumes {
		if strings.HasSuffix(strings.Split(v, ":")[0], initdb) && strings.Contains(v, ":/docker-entrypoint-initdb.d") {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("clickhouse does not mount %s at /docker-entrypoint-initdb.d: %v", initdb, compose.Services["clickhouse"].Volumes)
	}

	script, err := os.ReadFile(filepath.Join("..", initdb, "10-grafana-reader.sh"))
	if err != nil {
		t.Fatal(err)
	}
	check(t, "..", "bash", "-n", filepath.Join(initdb, "10-grafana-reader.sh"))
	for _, want := range []string{
		`"${` + pwVar + `:?`,
		"CREATE USER OR REPLACE grafana IDENTIFIED WITH sha256_hash BY '$hash' SETTINGS readonly = 2;",
		"GRANT SELECT ON questline.* TO grafana;",
	} {
		if !strings.Contains(string(script), want) {
			t.Errorf("10-grafana-reader.sh lacks %q", want)
		}
	}
	if n := strings.Count(string(script), "GRANT "); n != 1 {
		t.Errorf("10-grafana-reader.sh grants %d times, want SELECT on questline only", n)
	}

	var ds struct {
		Datasources []struct {
			UID            string
			JSONData       map[string]any    `yaml:"jsonData"`
			SecureJSONData map[string]string `yaml:"secureJsonData"`
		}
	}
	text, err := os.ReadFile(filepath.Join("..", "dashboards", "provisioning", "datasources", "clickhouse.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(text, &ds); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range ds.Datasources {
		if d.UID != "questline-clickhouse" {
			continue
		}
		found = true
		if d.JSONData["username"] != "grafana" || d.SecureJSONData["password"] != "$"+pwVar {
			t.Errorf("the ClickHouse data source logs in as %v with %q, want grafana with $%s", d.JSONData["username"], d.SecureJSONData["password"], pwVar)
		}
	}
	if !found {
		t.Error("no data source questline-clickhouse")
	}
}

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

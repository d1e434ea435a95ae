// Package testtool finds the outside programs that tests drive (kcat,
// promtool, amtool, docker-compose): a missing one fails the test under CI,
// where scripts/deps.sh must have installed it, and skips it elsewhere with
// the command that installs it.
package testtool

import (
	"os"
	"os/exec"
	"testing"
)

// debianPackage names the package that provides each tool.
var debianPackage = map[string]string{
	"kcat":           "kcat",
	"promtool":       "prometheus",
	"amtool":         "prometheus-alertmanager",
	"docker-compose": "docker-compose",
}

// Require returns the path of the program name.
func Require(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	pkg := debianPackage[name]
	if pkg == "" {
		pkg = name
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed (apt-get install %s, or scripts/deps.sh): %v", name, pkg, err)
	}
	t.Skipf("%s is not installed (apt-get install %s, or scripts/deps.sh)", name, pkg)
	return ""
}

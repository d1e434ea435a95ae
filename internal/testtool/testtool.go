// Package testtool finds the outside programs that tests drive (kcat,
// promtool, amtool, docker-compose): a missing one fails the test under CI,
// where scripts/deps.sh must have installed it, and skips it elsewhere with
// the command that installs it. Benchmarks measure such processes'
// CPU time with ProcessCPU.
package testtool

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
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

// clkTck is USER_HZ, the unit of /proc/<pid>/stat's CPU times (100 on
// every Linux the project runs on).
const clkTck = 100

// ProcessCPU returns the CPU time (user + system, all threads) process pid
// has used so far, from /proc/<pid>/stat; 0 when it cannot be read. The
// resolution is 10 ms.
func ProcessCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if pid <= 0 || err != nil {
		return 0
	}
	// Fields after the command name (in parentheses, may hold spaces):
	// state is field 3, utime 14, stime 15.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clkTck
}

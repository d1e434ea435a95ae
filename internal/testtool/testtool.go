// Package testtool finds the outside programs that tests drive (kcat,
// promtool, amtool, docker-compose): a missing one fails the test under CI,
// where scripts/deps.sh must have installed it, and skips it elsewhere with
// the command that installs it. Benchmarks measure such processes'
// CPU time with ProcessCPU, and the machine's with MachineCPU.
package testtool

import (
	"net"
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

// FreeAddr returns a loopback address with a port free a moment ago, for
// a server a test starts (another process could take it first: rare).
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// clkTck is USER_HZ, the unit of the CPU times in /proc/stat and
// /proc/<pid>/stat (100 on every Linux the project runs on).
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

// MachineCPU returns the busy and total CPU time of the whole machine so
// far (all cores), from /proc/stat.
func MachineCPU() (busy, total time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)[1:] // user nice system idle iowait irq softirq steal ...
	var sum, idle int64
	for i, v := range f {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i >= 8 { // guest time is already counted in user
			break
		}
		sum += n
		if i == 3 || i == 4 {
			idle += n
		}
	}
	return time.Duration(sum-idle) * time.Second / clkTck, time.Duration(sum) * time.Second / clkTck
}

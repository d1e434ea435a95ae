package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clkTck is USER_HZ, the unit of /proc/<pid>/stat's CPU times (100 on
// every Linux the project runs on).
const clkTck = 100

// procCPU returns the CPU time (user + system, all threads) process pid
// has used so far, from /proc/<pid>/stat; 0 when it cannot be read.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
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

// machineCPU returns the busy and total CPU time of the whole machine so
// far (all cores), from /proc/stat.
func machineCPU() (busy, total time.Duration) {
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

// pidByCwd returns the pid of the process whose working directory is dir
// (chtest runs clickhouse-server in its directory), or 0.
func pidByCwd(dir string) int {
	ents, _ := os.ReadDir("/proc")
	want, _ := filepath.EvalSymlinks(dir)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd"); err == nil && (cwd == dir || cwd == want) {
			return pid
		}
	}
	return 0
}

// loadAvg returns the 1-minute load average, from /proc/loadavg.
func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

package e2e

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// clkTck is USER_HZ, the unit of /proc/stat's CPU times (100 on every
// Linux the project runs on).
const clkTck = 100

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

// loadAvg returns the 1-minute load average, from /proc/loadavg.
func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

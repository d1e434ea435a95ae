//go:build unix

package pipeline

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time (user + system) the process has used, all
// threads included (the garbage collector's too). On a machine shared with
// other work, CPU time per event is steadier than wall time per event.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sysTime returns the system part of cpuTime: mostly page faults when a
// growing state touches fresh memory.
func sysTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Stime.Nano())
}

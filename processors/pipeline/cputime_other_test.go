//go:build !unix

package pipeline

import "time"

// cpuTime is not measured here: the benchmarks report no cpu-ns/event.
func cpuTime() time.Duration { return 0 }

// sysTime is not measured here either.
func sysTime() time.Duration { return 0 }

//go:build !unix

package pipeline

import "time"

// cpuTime is not measured here: the benchmarks report no cpu-ns/event.
func cpuTime() time.Duration { return 0 }

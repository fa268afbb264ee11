//go:build !unix

package bench

import "time"

// processCPU: no getrusage here; the benchmarks then report no CPU time.
func processCPU() (time.Duration, bool) { return 0, false }

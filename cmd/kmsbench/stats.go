package main

import (
	"slices"
	"time"
)

// cellResult is what one operation at one concurrency measured.
type cellResult struct {
	operation   string
	concurrency int
	keys        int // distinct keys requests were spread over; 0 when not applicable
	elapsed     time.Duration
	ok          int             // successful requests completed inside the window
	errors      int             // failed requests completed inside the window
	firstError  string          // one example, so a failing cell explains itself
	latencies   []time.Duration // of successful requests only
	cpuSeconds  float64         // CPU of the measured process over the window; <0 when unknown
	// idleShare is the share of the machine's CPU time left idle (idle
	// and iowait) over the window, <0 when unknown: a server that waits
	// (for a disk, say) shows here, not in its own CPU seconds.
	idleShare float64
}

// rate is successful requests per second.
func (r cellResult) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ok) / r.elapsed.Seconds()
}

// cpuPer1k is CPU seconds per 1,000 successful requests, or -1 when the CPU
// was not measured or nothing succeeded.
func (r cellResult) cpuPer1k() float64 {
	if r.cpuSeconds < 0 || r.ok == 0 {
		return -1
	}
	return r.cpuSeconds / float64(r.ok) * 1000
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted, which must be in ascending order; 0 for an empty slice. Nearest
// rank always returns an observed latency, never an interpolation, which is
// what a tail latency should report.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(p / 100 * float64(n)) // 1-based rank = ceil(p/100*n)
	if float64(rank) < p/100*float64(n) {
		rank++
	}
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// latencyQuantiles sorts the latencies in place and returns p50 and p99.
func latencyQuantiles(latencies []time.Duration) (p50, p99 time.Duration) {
	slices.Sort(latencies)
	return percentile(latencies, 50), percentile(latencies, 99)
}

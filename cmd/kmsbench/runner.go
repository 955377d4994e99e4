package main

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// operation is one request of a benchmark. rng belongs to the calling worker
// (math/rand/v2 sources are not safe for concurrent use).
type operation func(ctx context.Context, rng *rand.Rand) error

// cellSpec describes one measured cell.
type cellSpec struct {
	name        string
	concurrency int
	keys        int
	warmup      time.Duration
	duration    time.Duration
	op          operation
	// cpu returns the cumulative CPU seconds of the measured process; nil
	// when no CPU is measured.
	cpu func() (float64, error)
}

// requestGrace bounds a single request beyond the end of its cell, so a hung
// server cannot hang the benchmark.
const requestGrace = 30 * time.Second

// runCell runs spec.concurrency workers in a closed loop for warmup plus
// duration. Only requests that complete inside the measurement window count,
// and the CPU is sampled at the window's edges, so rate, latencies and CPU
// per request all describe the same interval. Every loop ends at the
// window's end (or when ctx is cancelled).
func runCell(ctx context.Context, spec cellSpec) cellResult {
	start := time.Now()
	windowStart := start.Add(spec.warmup)
	windowEnd := windowStart.Add(spec.duration)
	reqCtx, cancel := context.WithDeadline(ctx, windowEnd.Add(requestGrace))
	defer cancel()

	type workerTally struct {
		ok, errors int
		firstError string
		latencies  []time.Duration
	}
	tallies := make([]workerTally, spec.concurrency)
	var wg sync.WaitGroup
	for w := range spec.concurrency {
		wg.Go(func() {
			t := &tallies[w]
			rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(w)))
			for reqCtx.Err() == nil {
				sent := time.Now()
				err := spec.op(reqCtx, rng)
				done := time.Now()
				if done.After(windowEnd) {
					return
				}
				if done.Before(windowStart) {
					continue // warm-up: connections, caches, session pool
				}
				if err != nil {
					t.errors++
					if t.firstError == "" {
						t.firstError = err.Error()
					}
					continue
				}
				t.ok++
				t.latencies = append(t.latencies, done.Sub(sent))
			}
		})
	}

	cpuSeconds := sampleCPU(ctx, spec.cpu, windowStart, windowEnd)
	wg.Wait()

	res := cellResult{
		operation:   spec.name,
		concurrency: spec.concurrency,
		keys:        spec.keys,
		elapsed:     spec.duration,
		cpuSeconds:  cpuSeconds,
	}
	for _, t := range tallies {
		res.ok += t.ok
		res.errors += t.errors
		if res.firstError == "" {
			res.firstError = t.firstError
		}
		res.latencies = append(res.latencies, t.latencies...)
	}
	return res
}

// sampleCPU reads cpu at from and at to, and returns the difference; -1
// when cpu is nil, a read fails or ctx ends first.
func sampleCPU(ctx context.Context, cpu func() (float64, error), from, to time.Time) float64 {
	if cpu == nil {
		return -1
	}
	if !sleepUntil(ctx, from) {
		return -1
	}
	before, err := cpu()
	if err != nil {
		return -1
	}
	if !sleepUntil(ctx, to) {
		return -1
	}
	after, err := cpu()
	if err != nil {
		return -1
	}
	return after - before
}

// sleepUntil waits for t; false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

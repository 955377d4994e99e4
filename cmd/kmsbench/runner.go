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
	cpu sampler
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

	deltas := sampleWindow(ctx, windowStart, windowEnd, spec.cpu, machineCPU)
	wg.Wait()

	res := cellResult{
		operation:   spec.name,
		concurrency: spec.concurrency,
		keys:        spec.keys,
		elapsed:     spec.duration,
		cpuSeconds:  -1,
		idleShare:   -1,
	}
	if d := deltas[0]; d != nil {
		res.cpuSeconds = d[0]
	}
	if d := deltas[1]; d != nil && d[1] > 0 {
		res.idleShare = d[0] / d[1]
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

// sampler returns cumulative counters (CPU seconds, clock ticks).
type sampler func() ([]float64, error)

// sampleWindow reads every sampler at from and at to and returns, per
// sampler, the growth of its counters over the window: nil for a sampler
// that is nil or failed, and for all when ctx ends first.
func sampleWindow(ctx context.Context, from, to time.Time, samplers ...sampler) [][]float64 {
	before := make([][]float64, len(samplers))
	out := make([][]float64, len(samplers))
	for k, edge := range []time.Time{from, to} {
		if !sleepUntil(ctx, edge) {
			return make([][]float64, len(samplers))
		}
		for i, s := range samplers {
			if s == nil || (k == 1 && before[i] == nil) {
				continue
			}
			v, err := s()
			switch {
			case err != nil:
				before[i] = nil
			case k == 0:
				before[i] = v
			case len(v) == len(before[i]):
				out[i] = make([]float64, len(v))
				for j := range v {
					out[i][j] = v[j] - before[i][j]
				}
			}
		}
	}
	return out
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

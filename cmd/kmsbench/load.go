package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
)

const loadSummary = `Drives a running kmsd through the official AWS SDK for Go v2 (retries off)
and prints, per operation and concurrency: requests/s, p50 and p99 latency,
errors, and the server's CPU seconds per 1,000 requests (utime+stime of the
kmsd process from /proc, sampled at the edges of each cell). At the end it
prints kmsd's resident memory (VmRSS).

The client runs on the same machine and takes CPU from the server: read the
rates together with the CPU column, which does not depend on the client.`

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("load", loadSummary, stderr)
	var api apiFlags
	var cells cellFlags
	api.register(fs)
	cells.register(fs, "load")
	ops := stringList{"encrypt", "decrypt", "generate-data-key"}
	fs.Var(&ops, "ops", "comma-separated `operations`: "+operationNames())
	keyCount := fs.Int("keys", 1, "spread requests over this many existing keys, a random one per request")
	createMissing := fs.Bool("create-keys", false, "create keys when the server has fewer than -keys")
	blobs := fs.Int("decrypt-blobs", 1024, "decrypt: number of keys (from the -keys set) to make ciphertexts under")
	pidFlag := fs.Int("pid", 0, "kmsd process id for CPU and memory (0: the process listening on the endpoint's port; -1: do not measure)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := cells.validate(); err != nil {
		return err
	}
	if *keyCount < 1 {
		return fmt.Errorf("-keys must be at least 1")
	}
	for _, name := range ops {
		if _, ok := apiOperations[name]; !ok {
			return fmt.Errorf("-ops: unknown operation %q (known: %s)", name, operationNames())
		}
	}

	pid := -1
	if *pidFlag >= 0 {
		var err error
		if pid, err = serverPID(*pidFlag, api.endpoint); err != nil {
			return fmt.Errorf("finding kmsd for CPU and memory: %w (give -pid, or -pid -1 to skip)", err)
		}
	}
	client, err := api.newClient(ctx, slices.Max(cells.concurrency))
	if err != nil {
		return err
	}
	keys, err := ensureKeys(ctx, client, *keyCount, 16, *createMissing, stderr)
	if err != nil {
		return err
	}
	var cpu sampler
	if pid > 0 {
		cpu = processCPU(pid)
	}
	rec := newRecorder(cells.record, cells.label)

	fmt.Fprintf(stdout, "kmsbench load: %s, kmsd pid %s, %d key(s), %s per cell after %s warm-up, %d CPUs shared by client and server\n",
		api.endpoint, pidText(pid), len(keys), cells.duration, cells.warmup, runtime.NumCPU())
	writeTableHeader(stdout, "srv-cpu-s/1k")
	for _, name := range ops {
		op, err := apiOperations[name].build(ctx, client, keys, *blobs)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		for _, n := range cells.concurrency {
			if err := ctx.Err(); err != nil {
				return err
			}
			res := runCell(ctx, cellSpec{name: name, concurrency: n, keys: len(keys),
				warmup: cells.warmup, duration: cells.duration, op: op, cpu: cpu})
			writeTableRow(stdout, res)
			if err := rec.cell(res); err != nil {
				return err
			}
		}
	}
	if pid > 0 {
		rss, err := processRSSKiB(pid)
		if err != nil {
			return fmt.Errorf("kmsd memory: %w", err)
		}
		fmt.Fprintf(stdout, "kmsd resident memory (VmRSS) after the load: %.1f MiB\n", float64(rss)/1024)
		if err := rec.metric("rss_mib", float64(rss)/1024); err != nil {
			return err
		}
	}
	return nil
}

func pidText(pid int) string {
	if pid <= 0 {
		return "not measured"
	}
	return fmt.Sprint(pid)
}

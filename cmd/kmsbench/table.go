package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// The table is printed row by row as cells finish, so fixed column widths
// (not text/tabwriter, which buffers until the end) keep it aligned.
const tableFormat = "%-18s %5s %6s %10s %9s %9s %7s %12s %6s\n"

// writeTableHeader prints the column names; cpuLabel names the process
// whose CPU the last column measures.
func writeTableHeader(w io.Writer, cpuLabel string) {
	fmt.Fprintf(w, tableFormat, "operation", "conc", "keys", "req/s", "p50", "p99", "errors", cpuLabel, "idle%")
}

// writeTableRow prints one cell, and under it the first error seen, if any.
func writeTableRow(w io.Writer, r cellResult) {
	p50, p99 := latencyQuantiles(r.latencies)
	keys := "-"
	if r.keys > 0 {
		keys = fmt.Sprint(r.keys)
	}
	cpu := "-"
	if c := r.cpuPer1k(); c >= 0 {
		cpu = fmt.Sprintf("%.3f", c)
	}
	idle := "-"
	if r.idleShare >= 0 {
		idle = fmt.Sprintf("%.1f", 100*r.idleShare)
	}
	fmt.Fprintf(w, tableFormat, r.operation, fmt.Sprint(r.concurrency), keys,
		fmt.Sprintf("%.1f", r.rate()), formatLatency(p50), formatLatency(p99), fmt.Sprint(r.errors), cpu, idle)
	if r.firstError != "" {
		fmt.Fprintf(w, "    first error: %s\n", oneLine(r.firstError, 200))
	}
}

// formatLatency prints milliseconds with enough digits for sub-millisecond
// HSM calls.
func formatLatency(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond))
}

func oneLine(s string, limit int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > limit {
		s = s[:limit] + "..."
	}
	return s
}

// recorder appends machine-readable results (tab-separated) to a file that
// scripts/bench reads to compute its summary ratios. Two row kinds:
//
//	cell   LABEL OPERATION CONCURRENCY KEYS REQ_PER_S P50_MS P99_MS ERRORS CPU_S_PER_1K IDLE_PCT
//	metric LABEL NAME VALUE
//
// A nil *recorder records nothing.
type recorder struct {
	path  string
	label string
}

func newRecorder(path, label string) *recorder {
	if path == "" {
		return nil
	}
	return &recorder{path: path, label: label}
}

func (rec *recorder) cell(r cellResult) error {
	if rec == nil {
		return nil
	}
	p50, p99 := latencyQuantiles(r.latencies)
	idle := -1.0
	if r.idleShare >= 0 {
		idle = 100 * r.idleShare
	}
	return rec.appendLine(fmt.Sprintf("cell\t%s\t%s\t%d\t%d\t%.1f\t%.3f\t%.3f\t%d\t%.4f\t%.1f",
		rec.label, r.operation, r.concurrency, r.keys, r.rate(),
		float64(p50)/float64(time.Millisecond), float64(p99)/float64(time.Millisecond), r.errors, r.cpuPer1k(), idle))
}

func (rec *recorder) metric(name string, value float64) error {
	if rec == nil {
		return nil
	}
	return rec.appendLine(fmt.Sprintf("metric\t%s\t%s\t%.3f", rec.label, name, value))
}

func (rec *recorder) appendLine(line string) error {
	f, err := os.OpenFile(rec.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f, line); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

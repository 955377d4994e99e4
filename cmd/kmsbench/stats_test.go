package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = ms(i + 1)
	}
	cases := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value", []time.Duration{ms(7)}, 99, ms(7)},
		{"median of 1..100", hundred, 50, ms(50)},
		{"p99 of 1..100", hundred, 99, ms(99)},
		{"p100 is the maximum", hundred, 100, ms(100)},
		{"p99 of 10 values is the maximum", hundred[:10], 99, ms(10)},
		{"median of 4 values", []time.Duration{ms(1), ms(2), ms(3), ms(4)}, 50, ms(2)},
		{"tiny p is the minimum", hundred, 0.001, ms(1)},
	}
	for _, c := range cases {
		if got := percentile(c.sorted, c.p); got != c.want {
			t.Errorf("%s: percentile(p=%v) = %v, want %v", c.name, c.p, got, c.want)
		}
	}
}

func TestLatencyQuantilesSortsFirst(t *testing.T) {
	l := []time.Duration{5, 1, 4, 2, 3}
	p50, p99 := latencyQuantiles(l)
	if p50 != 3 || p99 != 5 {
		t.Fatalf("p50, p99 = %v, %v; want 3, 5", p50, p99)
	}
}

func TestCellResultRates(t *testing.T) {
	r := cellResult{elapsed: 2 * time.Second, ok: 1000, cpuSeconds: 0.5}
	if got := r.rate(); got != 500 {
		t.Errorf("rate = %v, want 500", got)
	}
	if got := r.cpuPer1k(); got != 0.5 {
		t.Errorf("cpuPer1k = %v, want 0.5", got)
	}
	r.cpuSeconds = -1
	if got := r.cpuPer1k(); got != -1 {
		t.Errorf("cpuPer1k without CPU = %v, want -1", got)
	}
}

func TestTableRow(t *testing.T) {
	var b bytes.Buffer
	writeTableHeader(&b, "srv-cpu-s/1k")
	writeTableRow(&b, cellResult{
		operation: "encrypt", concurrency: 16, keys: 10000, elapsed: time.Second,
		ok: 3, errors: 1, firstError: "boom\nagain",
		latencies:  []time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond},
		cpuSeconds: 0.003, idleShare: 0.125,
	})
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want header, row and error:\n%s", len(lines), b.String())
	}
	if got, want := strings.Fields(lines[1]), []string{"encrypt", "16", "10000", "3.0", "2.000ms", "3.000ms", "1", "1.000", "12.5"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("row = %q, want fields %q", lines[1], want)
	}
	if len(lines[0]) != len(lines[1]) {
		t.Errorf("header and row differ in width:\n%s\n%s", lines[0], lines[1])
	}
	if !strings.Contains(lines[2], "first error: boom again") {
		t.Errorf("error line = %q", lines[2])
	}
}

func TestParseStatCPU(t *testing.T) {
	// Field 2 holds spaces and a ')' to prove fields are counted from the
	// last ')'. utime=250, stime=50 ticks.
	stat := "1234 (km sd) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 100 1000 200\n"
	got, err := parseStatCPU([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if got != 3.0 {
		t.Fatalf("cpu = %v s, want 3", got)
	}
}

func TestParseProcStat(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	stat := "cpu  100 5 50 800 40 3 2 0 7 0\ncpu0 50 2 25 400 20 1 1 0 3 0\n"
	idle, total, err := parseProcStat([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if idle != 840 || total != 1000 {
		t.Fatalf("idle, total = %d, %d; want 840, 1000 (guest time is inside user)", idle, total)
	}
	if _, _, err := parseProcStat([]byte("intr 1 2 3\n")); err == nil {
		t.Fatal("a file without the cpu line was parsed")
	}
}

func TestListeningInodes(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 222 1 0 100 0 0 10 0
   2: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 333 1 0 100 0 0 10 0
`
	got := listeningInodes([]byte(table), 8080)
	if len(got) != 1 || got[0] != "111" {
		t.Fatalf("inodes = %v, want [111] (the LISTEN socket on 8080 only)", got)
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:80"} {
		if err := checkLoopback(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"http://10.0.0.1:8080", "https://kms.us-east-1.amazonaws.com", "127.0.0.1:8080"} {
		if err := checkLoopback(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

// sampleWindow returns each sampler's growth over the window, nil for a
// nil sampler or one that fails at either edge.
func TestSampleWindow(t *testing.T) {
	var calls int
	counter := func() ([]float64, error) { calls++; return []float64{float64(10 * calls), 1}, nil }
	failsLate := 0
	flaky := func() ([]float64, error) {
		failsLate++
		if failsLate == 2 {
			return nil, errors.New("gone")
		}
		return []float64{1}, nil
	}
	now := time.Now()
	got := sampleWindow(t.Context(), now, now.Add(10*time.Millisecond), counter, nil, flaky)
	if len(got) != 3 || len(got[0]) != 2 || got[0][0] != 10 || got[0][1] != 0 {
		t.Fatalf("counter growth = %v, want [10 0]", got)
	}
	if got[1] != nil || got[2] != nil {
		t.Fatalf("nil and failing samplers = %v, %v; want nil", got[1], got[2])
	}
}

package interop

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"hsmkms/cmd/kmsctl/testkmsd"
)

// BenchmarkEnvelope is scripts/bench-envelope: in one run, against one
// kmsd, MB/s and peak RSS of
//
//   - kmsctl encrypt/decrypt of a 1 GiB file, both suites (wall time of
//     the whole process: start-up, KMS calls, file I/O, fsync);
//   - the official Go ESDK v0.4.0 on a 200 MiB file, whole buffer (time
//     of the Encrypt/Decrypt call only, not reading the file);
//   - plain AES-256-GCM sealing 4 KiB frames on one core (GOMAXPROCS=1);
//
// and the KMS calls per kmsctl file. Every kmsctl row starts from an input
// in the page cache (see warm), one more row decrypts from an uncached
// file. Run with -benchtime=1x; it prints a table and reports the ratios
// as metrics.
func BenchmarkEnvelope(b *testing.B) {
	srv := testkmsd.Start(b)
	arn := srv.CreateKey(b, "bench")
	kmsctl := testkmsd.Build(b, "./cmd/kmsctl")
	dir := b.TempDir()
	bench := filepath.Join(dir, "esdkbench")
	if out, err := exec.Command("go", "build", "-o", bench, "./cmd/esdkbench").CombinedOutput(); err != nil {
		b.Fatalf("go build esdkbench: %v\n%s", err, out)
	}
	const big, small = 1 << 30, 200 << 20
	bigFile, smallFile := filepath.Join(dir, "big"), filepath.Join(dir, "small")
	writeRandom(b, bigFile, big)
	writeRandom(b, smallFile, small)

	type result struct {
		name     string
		bytes    int64
		seconds  float64
		rssMB    float64
		kmsCalls string
		cpu      string // user+sys CPU seconds of the process
		kmsctl   bool
	}
	var results []result
	// cpuOf is the user and system CPU time of a finished process: with
	// the wall time, it tells whether a row was bound by one core (the
	// signature hash), by both, or by waiting (disk).
	lastCPU := ""
	cpuOf := func(ps *os.ProcessState) string {
		ru := ps.SysUsage().(*syscall.Rusage)
		return fmt.Sprintf("%.2f+%.2f", time.Duration(ru.Utime.Nano()).Seconds(), time.Duration(ru.Stime.Nano()).Seconds())
	}
	// settle makes the file system finish the work earlier rows left
	// (writeback, and the discards of the 1 GiB files they removed: the
	// disk here is mounted with -o discard, and a journal commit that
	// discards a GiB stalled the I/O of whichever row ran then, once for
	// 10 s) before the next row is timed.
	settle := func() { syscall.Sync() }
	// measure runs a process and returns its stdout, wall time and peak RSS.
	measure := func(env []string, args ...string) (string, string, float64, float64) {
		settle()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		start := time.Now()
		peak, err := runPeak(cmd)
		if err != nil {
			b.Fatalf("%v: %v\n%s", args, err, &errb)
		}
		wall := time.Since(start).Seconds()
		lastCPU = cpuOf(cmd.ProcessState)
		return out.String(), errb.String(), wall, peak
	}
	calls := func(summary string) string {
		var s struct {
			KMSCalls map[string]int64 `json:"kmsCalls"`
		}
		if err := json.Unmarshal([]byte(strings.TrimSpace(summary)), &s); err != nil {
			b.Fatalf("summary %q: %v", summary, err)
		}
		return fmt.Sprintf("GenerateDataKey %d, Decrypt %d", s.KMSCalls["GenerateDataKey"], s.KMSCalls["Decrypt"])
	}

	// warm reads a file once, untimed, so that every kmsctl row starts
	// from an input in the page cache, as the ESDK rows start from their
	// input in memory (they time the call only). kmsctl writes its output
	// with O_DIRECT, so without this a decrypt row would read the
	// previous row's output from the disk while writing its own: that
	// case has its own row (signed suite), and is bound by the disk (a
	// concurrent O_DIRECT read and write of 1 GiB each took 1.53 s here).
	warm := func(path string) {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if _, err := io.Copy(io.Discard, f); err != nil {
			b.Fatal(err)
		}
	}
	// uncache drops a file from the page cache (POSIX_FADV_DONTNEED).
	uncache := func(path string) {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if _, _, e := syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, 4, 0, 0); e != 0 {
			b.Fatalf("fadvise: %v", e)
		}
	}

	for _, suite := range []string{"0x0578", "0x0478"} {
		enc := bigFile + "." + suite + ".enc"
		warm(bigFile)
		_, sum, wall, rss := measure(srv.Env(), kmsctl, "encrypt", "--key-id", arn, "--suite", suite, "--summary", "--out", enc, bigFile)
		results = append(results, result{"kmsctl encrypt 1 GiB " + suite, big, wall, rss, calls(sum), lastCPU, true})
		warm(enc)
		_, sum, wall, rss = measure(srv.Env(), kmsctl, "decrypt", "--summary", "--out", enc+".dec", enc)
		results = append(results, result{"kmsctl decrypt 1 GiB " + suite, big, wall, rss, calls(sum), lastCPU, true})
		os.Remove(enc + ".dec")
		if suite == "0x0578" {
			uncache(enc)
			_, sum, wall, rss = measure(srv.Env(), kmsctl, "decrypt", "--summary", "--out", enc+".dec", enc)
			results = append(results, result{"  ... decrypt, input not cached " + suite, big, wall, rss, calls(sum), lastCPU, true})
			os.Remove(enc + ".dec")
		}
		// To stdout (/dev/null): no output file, no fsync; decrypt in the
		// default safe mode (signed: spool, verify, then release).
		devnull := func(args ...string) (string, float64, float64) {
			cmd := exec.Command(kmsctl, args...)
			cmd.Env = srv.Env()
			var errb bytes.Buffer
			cmd.Stderr = &errb
			null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer null.Close()
			cmd.Stdout = null
			settle()
			start := time.Now()
			peak, err := runPeak(cmd)
			if err != nil {
				b.Fatalf("%v: %v\n%s", args, err, &errb)
			}
			wall := time.Since(start).Seconds()
			lastCPU = cpuOf(cmd.ProcessState)
			return errb.String(), wall, peak
		}
		warm(bigFile)
		sum, wall, rss = devnull("encrypt", "--key-id", arn, "--suite", suite, "--summary", "--out", "-", bigFile)
		results = append(results, result{"  ... encrypt to /dev/null " + suite, big, wall, rss, calls(sum), lastCPU, true})
		warm(enc)
		sum, wall, rss = devnull("decrypt", "--summary", "--out", "-", "--buffer-dir", dir, enc)
		results = append(results, result{"  ... decrypt to /dev/null " + suite, big, wall, rss, calls(sum), lastCPU, true})
		os.Remove(enc)
	}
	out, _, _, rss := measure(srv.Env(), bench, "esdk-encrypt", arn, smallFile, smallFile+".enc")
	esdkEnc, _ := strconv.ParseFloat(strings.TrimSpace(out), 64)
	results = append(results, result{"Go ESDK encrypt 200 MiB (call only)", small, esdkEnc, rss, "-", "", false})
	out, _, _, rss = measure(srv.Env(), bench, "esdk-decrypt", arn, smallFile+".enc", smallFile+".dec")
	esdkDec, _ := strconv.ParseFloat(strings.TrimSpace(out), 64)
	results = append(results, result{"Go ESDK decrypt 200 MiB (call only)", small, esdkDec, rss, "-", "", false})
	out, _, _, rss = measure(append(os.Environ(), "GOMAXPROCS=1"), bench, "gcm", strconv.Itoa(big), "4096")
	gcm, _ := strconv.ParseFloat(strings.TrimSpace(out), 64)
	results = append(results, result{"AES-256-GCM, 4 KiB frames, 1 core", big, gcm, rss, "-", "", false})

	out, _, _, rss = measure(append(os.Environ(), "GOMAXPROCS=1"), bench, "sha384", strconv.Itoa(big))
	sha, _ := strconv.ParseFloat(strings.TrimSpace(out), 64)
	results = append(results, result{"SHA-384 (signed suites' bound), 1 core", big, sha, rss, "-", "", false})

	mbps := func(r result) float64 { return float64(r.bytes) / 1e6 / r.seconds }
	var w strings.Builder
	fmt.Fprintf(&w, "\n%-40s %10s %10s %12s %12s  %s\n", "", "MB/s", "peak MiB", "x Go ESDK", "CPU usr+sys", "KMS calls")
	esdkRate := map[bool]float64{true: mbps(results[len(results)-4]), false: mbps(results[len(results)-3])}
	gcmRate := mbps(results[len(results)-2])
	for _, r := range results {
		ratio := "-"
		if r.kmsctl {
			ratio = fmt.Sprintf("%.1f", mbps(r)/esdkRate[strings.Contains(r.name, "encrypt")])
		}
		cpu := r.cpu
		if cpu == "" {
			cpu = "-"
		}
		fmt.Fprintf(&w, "%-40s %10.0f %10.0f %12s %12s  %s\n", r.name, mbps(r), r.rssMB, ratio, cpu, r.kmsCalls)
	}
	fmt.Fprintf(&w, "plain AES-GCM (1 core): %.0f MB/s; kmsctl / AES-GCM:", gcmRate)
	for _, r := range results {
		if !r.kmsctl {
			continue
		}
		fmt.Fprintf(&w, " %.2f", mbps(r)/gcmRate)
	}
	fmt.Fprintln(&w, " (in the order of the kmsctl rows)")
	fmt.Print(w.String())
	for b.Loop() {
	}
	for _, r := range results {
		switch r.name {
		case "kmsctl encrypt 1 GiB 0x0578":
			b.ReportMetric(mbps(r)/esdkRate[true], "x-esdk-encrypt-0578")
		case "kmsctl decrypt 1 GiB 0x0578":
			b.ReportMetric(mbps(r)/esdkRate[false], "x-esdk-decrypt-0578")
		case "kmsctl encrypt 1 GiB 0x0478":
			b.ReportMetric(mbps(r)/gcmRate, "x-gcm-encrypt-0478")
		}
	}
}

// runPeak runs cmd and returns its peak resident memory in MiB: VmHWM of
// /proc/PID/status, sampled every 5 ms while it runs, or its getrusage
// maxrss if it ended before the first sample. maxrss alone is not the
// child's: a child is forked with this process's memory and exec keeps
// that high-water mark, so small children all showed this process's
// ~31 MiB.
func runPeak(cmd *exec.Cmd) (float64, error) {
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	exited, done := make(chan struct{}), make(chan struct{})
	var peakKB atomic.Int64
	go func() {
		defer close(done)
		for {
			select {
			case <-exited:
				return // reaped: the PID may be reused
			default:
			}
			st, err := os.ReadFile(status)
			if err != nil {
				return
			}
			for line := range strings.SplitSeq(string(st), "\n") {
				if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
					var kb int64
					if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err == nil && kb > peakKB.Load() {
						peakKB.Store(kb)
					}
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	err := cmd.Wait()
	close(exited)
	<-done
	kb := peakKB.Load()
	if kb == 0 && cmd.ProcessState != nil {
		kb = cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
	}
	return float64(kb) / 1024, err
}

func writeRandom(b *testing.B, path string, size int) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	block := make([]byte, 1<<20)
	_, _ = rand.Read(block)
	for i := 0; i < size; i += len(block) {
		block[0], block[1] = byte(i>>20), byte(i>>28)
		if _, err := f.Write(block); err != nil {
			b.Fatal(err)
		}
	}
	// On disk before the first measurement: otherwise the kernel writes
	// this file back (30 s after it was written) while kmsctl runs, and
	// the disk is busy for whichever row happens to be running then.
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

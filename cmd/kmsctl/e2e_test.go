package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"hsmkms/cmd/kmsctl/testkmsd"
)

// kmsctlRun runs the kmsctl binary against srv and returns stdout, stderr
// and the exit status.
func kmsctlRun(t *testing.T, srv *testkmsd.Server, stdin []byte, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(testkmsd.Build(t, "./cmd/kmsctl"), args...)
	cmd.Env = srv.Env()
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("kmsctl %v: %v", args, err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

func mustRun(t *testing.T, srv *testkmsd.Server, stdin []byte, args ...string) string {
	t.Helper()
	out, errs, code := kmsctlRun(t, srv, stdin, args...)
	if code != 0 {
		t.Fatalf("kmsctl %s: exit %d\n%s", strings.Join(args, " "), code, errs)
	}
	return out
}

func jsonOut(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	return m
}

// TestAPICommands drives the `aws kms`-style commands against a real kmsd,
// configured only through the standard AWS environment variables.
func TestAPICommands(t *testing.T) {
	srv := testkmsd.Start(t)
	key := jsonOut(t, mustRun(t, srv, nil, "kms", "create-key", "--description", "from kmsctl", "--tags", `[{"TagKey":"team","TagValue":"a"}]`))
	md := key["KeyMetadata"].(map[string]any)
	arn, id := md["Arn"].(string), md["KeyId"].(string)
	if !strings.HasPrefix(arn, "arn:aws:kms:us-east-1:") || md["Description"] != "from kmsctl" || md["KeyState"] != "Enabled" {
		t.Fatalf("create-key: %v", md)
	}
	if _, hasMeta := key["ResultMetadata"]; hasMeta {
		t.Fatal("SDK metadata leaked into the output")
	}
	mustRun(t, srv, nil, "kms", "create-alias", "--alias-name", "alias/ctl", "--target-key-id", id)
	d := jsonOut(t, mustRun(t, srv, nil, "kms", "describe-key", "--key-id", "alias/ctl"))
	if d["KeyMetadata"].(map[string]any)["Arn"] != arn {
		t.Fatalf("describe-key by alias: %v", d)
	}
	table := mustRun(t, srv, nil, "--output", "table", "kms", "describe-key", "--key-id", id)
	if !strings.Contains(table, "KeyMetadata.Arn") || !strings.Contains(table, arn) {
		t.Fatalf("table output:\n%s", table)
	}
	if lk := mustRun(t, srv, nil, "kms", "list-keys", "--output", "table"); !strings.Contains(lk, "KeyArn") || !strings.Contains(lk, arn) {
		t.Fatalf("list-keys table:\n%s", lk)
	}
	if la := jsonOut(t, mustRun(t, srv, nil, "kms", "list-aliases", "--key-id", id)); len(la["Aliases"].([]any)) != 1 {
		t.Fatalf("list-aliases: %v", la)
	}

	// encrypt / decrypt with a file blob and an encryption context.
	pt := filepath.Join(t.TempDir(), "pt")
	if err := os.WriteFile(pt, []byte("secret words"), 0o600); err != nil {
		t.Fatal(err)
	}
	enc := jsonOut(t, mustRun(t, srv, nil, "kms", "encrypt", "--key-id", "alias/ctl", "--plaintext", "fileb://"+pt, "--encryption-context", "a=1"))
	blob, _ := base64.StdEncoding.DecodeString(enc["CiphertextBlob"].(string))
	ctFile := filepath.Join(t.TempDir(), "ct")
	if err := os.WriteFile(ctFile, blob, 0o600); err != nil {
		t.Fatal(err)
	}
	dec := jsonOut(t, mustRun(t, srv, nil, "kms", "decrypt", "--ciphertext-blob", "fileb://"+ctFile, "--encryption-context", "a=1"))
	if got, _ := base64.StdEncoding.DecodeString(dec["Plaintext"].(string)); string(got) != "secret words" || dec["KeyId"] != arn {
		t.Fatalf("decrypt: %v", dec)
	}
	// A KMS error is reported with its AWS name and a non-zero status.
	_, errs, code := kmsctlRun(t, srv, nil, "kms", "decrypt", "--ciphertext-blob", "fileb://"+ctFile, "--encryption-context", "a=2")
	if code != 1 || !strings.Contains(errs, "InvalidCiphertextException") {
		t.Fatalf("decrypt with the wrong context: exit %d, %s", code, errs)
	}
	gdk := jsonOut(t, mustRun(t, srv, nil, "kms", "generate-data-key", "--key-id", arn, "--number-of-bytes", "32"))
	if p, _ := base64.StdEncoding.DecodeString(gdk["Plaintext"].(string)); len(p) != 32 {
		t.Fatalf("generate-data-key: %v", gdk)
	}
	if r := jsonOut(t, mustRun(t, srv, nil, "kms", "generate-random", "--number-of-bytes", "16")); len(r["Plaintext"].(string)) != 24 {
		t.Fatalf("generate-random: %v", r)
	}
	mustRun(t, srv, nil, "kms", "tag-resource", "--key-id", id, "--tags", `[{"TagKey":"env","TagValue":"test"}]`)
	tags := mustRun(t, srv, nil, "kms", "list-resource-tags", "--key-id", id)
	if !strings.Contains(tags, `"env"`) || !strings.Contains(tags, `"team"`) {
		t.Fatalf("list-resource-tags: %s", tags)
	}
	mustRun(t, srv, nil, "kms", "disable-key", "--key-id", id)
	if s := jsonOut(t, mustRun(t, srv, nil, "kms", "describe-key", "--key-id", id)); s["KeyMetadata"].(map[string]any)["KeyState"] != "Disabled" {
		t.Fatalf("after disable-key: %v", s)
	}
	mustRun(t, srv, nil, "kms", "enable-key", "--key-id", id)
	sd := jsonOut(t, mustRun(t, srv, nil, "kms", "schedule-key-deletion", "--key-id", id, "--pending-window-in-days", "7"))
	if sd["KeyState"] != "PendingDeletion" {
		t.Fatalf("schedule-key-deletion: %v", sd)
	}
	mustRun(t, srv, nil, "kms", "cancel-key-deletion", "--key-id", id)
	// --cli-input-json, with a flag on top.
	mustRun(t, srv, nil, "kms", "update-key-description", "--cli-input-json", `{"KeyId":"`+id+`","Description":"x"}`, "--description", "y")
	if s := jsonOut(t, mustRun(t, srv, nil, "kms", "describe-key", "--key-id", id)); s["KeyMetadata"].(map[string]any)["Description"] != "y" {
		t.Fatalf("update-key-description: %v", s)
	}
	// Usage errors exit 2.
	if _, _, code := kmsctlRun(t, srv, nil, "kms", "describe-key", "--no-such-flag"); code != 2 {
		t.Fatalf("unknown flag: exit %d", code)
	}
	if _, _, code := kmsctlRun(t, srv, nil, "kms", "no-such-op"); code != 2 {
		t.Fatalf("unknown operation: exit %d", code)
	}
}

// TestEnvelopeCommands: files and pipes, aliases, contexts, overwrite
// rules, caching across files.
func TestEnvelopeCommands(t *testing.T) {
	srv := testkmsd.Start(t)
	arn := srv.CreateKey(t, "envelope")
	other := srv.CreateKey(t, "other")
	mustRun(t, srv, nil, "kms", "create-alias", "--alias-name", "alias/files", "--target-key-id", arn)
	dir := t.TempDir()
	plain := make([]byte, 100_000)
	_, _ = rand.Read(plain)
	in := filepath.Join(dir, "data.bin")
	if err := os.WriteFile(in, plain, 0o600); err != nil {
		t.Fatal(err)
	}

	for _, suite := range []string{"0x0578", "0x0478"} {
		mustRun(t, srv, nil, "encrypt", "--key-id", "alias/files", "--key-id", other, "--suite", suite, "--frame-size", "1000", "--encryption-context", "purpose=test", "--force", in)
		out := filepath.Join(dir, "data.bin.dec")
		os.Remove(out)
		mustRun(t, srv, nil, "decrypt", "--encryption-context", "purpose=test", "--out", out, in+".enc")
		if got, _ := os.ReadFile(out); !bytes.Equal(got, plain) {
			t.Fatalf("%s: file round trip differs", suite)
		}
		// Decrypt with only the additional key, through stdin/stdout.
		ct, _ := os.ReadFile(in + ".enc")
		if got := mustRun(t, srv, ct, "decrypt", "--key-id", other); got != string(plain) {
			t.Fatalf("%s: stdin/stdout round trip differs", suite)
		}
	}
	// stdin to stdout encryption.
	ct := mustRun(t, srv, []byte("piped"), "encrypt", "--key-id", arn)
	if got := mustRun(t, srv, []byte(ct), "decrypt"); got != "piped" {
		t.Fatalf("pipe: %q", got)
	}
	// A required context the message lacks, an unrelated key, a
	// discovery filter that excludes the account: failures, no output.
	for name, args := range map[string][]string{
		"context":  {"decrypt", "--encryption-context", "purpose=other", "--out", filepath.Join(dir, "x1"), in + ".enc"},
		"key":      {"decrypt", "--key-id", srv.CreateKey(t, "unrelated"), "--out", filepath.Join(dir, "x2"), in + ".enc"},
		"account":  {"decrypt", "--discovery-account", "000000000000", "--out", filepath.Join(dir, "x3"), in + ".enc"},
		"tampered": {"decrypt", "--out", filepath.Join(dir, "x4"), tamper(t, in+".enc")},
	} {
		_, errs, code := kmsctlRun(t, srv, nil, args...)
		if code != 1 {
			t.Fatalf("%s: exit %d (%s)", name, code, errs)
		}
		if _, err := os.Stat(args[len(args)-2]); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: output file exists after failure", name)
		}
	}
	assertNoTemp(t, dir)
	// The safe default to stdout: a signed message larger than the
	// in-memory spool, damaged near its end (last frame, or signature),
	// read from a file or from stdin, writes nothing at all to stdout;
	// intact, it round-trips.
	big := make([]byte, 3<<20+5)
	_, _ = rand.Read(big)
	bigIn := filepath.Join(dir, "big.bin")
	if err := os.WriteFile(bigIn, big, 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, srv, nil, "encrypt", "--key-id", arn, bigIn)
	msg, err := os.ReadFile(bigIn + ".enc")
	if err != nil {
		t.Fatal(err)
	}
	if got := mustRun(t, srv, nil, "decrypt", "--out", "-", "--buffer-dir", dir, bigIn+".enc"); got != string(big) {
		t.Fatalf("safe decrypt to stdout: %d bytes, want %d", len(got), len(big))
	}
	for name, pos := range map[string]int{"last frame": len(msg) - 200, "signature": len(msg) - 3} {
		bad := bytes.Clone(msg)
		bad[pos] ^= 0x40
		badPath := filepath.Join(dir, "bad.enc")
		if err := os.WriteFile(badPath, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		for how, args := range map[string][]string{"file": {badPath}, "stdin": nil} {
			var stdin []byte
			if args == nil {
				stdin = bad
			}
			out, errs, code := kmsctlRun(t, srv, stdin, append([]string{"decrypt", "--out", "-", "--buffer-dir", dir}, args...)...)
			if code != 1 || len(out) != 0 {
				t.Fatalf("tampered %s from %s to stdout: exit %d, %d bytes released (%s)", name, how, code, len(out), errs)
			}
		}
		// To a file, decrypt streams into the temporary file (no spool):
		// it must still never be renamed into place.
		outPath := filepath.Join(dir, "bad.out")
		if _, errs, code := kmsctlRun(t, srv, nil, "decrypt", "--out", outPath, badPath); code != 1 {
			t.Fatalf("tampered %s to a file: exit %d (%s)", name, code, errs)
		}
		if _, err := os.Stat(outPath); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("tampered %s to a file: output published (%v)", name, err)
		}
		assertNoTemp(t, dir)
	}
	// Never overwrite the input, even with --force; refuse an existing
	// output without --force.
	if _, errs, code := kmsctlRun(t, srv, nil, "encrypt", "--key-id", arn, "--force", "--out", in, in); code != 2 || !strings.Contains(errs, "is the input") {
		t.Fatalf("output = input: exit %d %s", code, errs)
	}
	if _, errs, code := kmsctlRun(t, srv, nil, "encrypt", "--key-id", arn, in); code != 2 || !strings.Contains(errs, "exists") {
		t.Fatalf("existing output: exit %d %s", code, errs)
	}
	if got, _ := os.ReadFile(in); !bytes.Equal(got, plain) {
		t.Fatal("the input changed")
	}

	// Caching across files: 5 files, at most 2 messages per data key ->
	// 3 GenerateDataKey calls; without caching, 5.
	var files []string
	for i := range 5 {
		p := filepath.Join(dir, "c"+string(rune('0'+i)))
		if err := os.WriteFile(p, plain[:1000], 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	outDir := t.TempDir()
	_, errs, code := kmsctlRun(t, srv, nil, append([]string{"encrypt", "--key-id", arn, "--summary", "--cache-max-age", "1m", "--cache-max-messages", "2", "--out", outDir}, files...)...)
	if code != 0 {
		t.Fatalf("cached encrypt: %s", errs)
	}
	if n := countGDK(t, errs); n != 3 {
		t.Fatalf("cached: %d GenerateDataKey calls, want 3\n%s", n, errs)
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(outDir, filepath.Base(f)+".enc")); err != nil {
			t.Fatal(err)
		}
	}
	outDir2 := t.TempDir()
	_, errs, _ = kmsctlRun(t, srv, nil, append([]string{"encrypt", "--key-id", arn, "--summary", "--out", outDir2}, files...)...)
	if n := countGDK(t, errs); n != 5 {
		t.Fatalf("uncached: %d GenerateDataKey calls, want 5", n)
	}
}

func countGDK(t *testing.T, summaries string) int64 {
	t.Helper()
	var n int64
	for _, line := range strings.Split(strings.TrimSpace(summaries), "\n") {
		var s struct {
			KMSCalls map[string]int64 `json:"kmsCalls"`
		}
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("summary %q: %v", line, err)
		}
		n += s.KMSCalls["GenerateDataKey"]
	}
	return n
}

func tamper(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	p := path + ".tampered"
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".kmsctl-tmp-") {
			t.Fatalf("temporary file left: %s", e.Name())
		}
	}
}

// TestLargeFile round-trips a 2 GiB file through kmsctl with peak resident
// memory (getrusage maxrss of the kmsctl process) under 100 MB, and checks
// that interrupting a run (SIGINT) leaves no output and no temporary file.
func TestLargeFile(t *testing.T) {
	if testing.Short() {
		t.Skip("2 GiB of I/O")
	}
	srv := testkmsd.Start(t)
	arn := srv.CreateKey(t, "large")
	bin := testkmsd.Build(t, "./cmd/kmsctl")
	dir := t.TempDir()
	in := filepath.Join(dir, "big")
	const size = 2 << 30
	want := writeLarge(t, in, size)
	t.Cleanup(func() { os.Remove(in); os.Remove(in + ".enc"); os.Remove(in + ".out") })

	// The peak is VmHWM of /proc/PID/status, sampled while kmsctl runs:
	// getrusage's maxrss of a child also counts this test process's own
	// peak (the child is forked with the parent's memory, and exec keeps
	// that high-water mark), which says nothing about kmsctl.
	runMeasured := func(args ...string) (maxRSS int64) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = srv.Env()
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
		done, exited := make(chan struct{}), make(chan struct{})
		var peak atomic.Int64
		go func() {
			defer close(done)
			for {
				select {
				case <-exited:
					return // reaped: the PID may be reused
				default:
				}
				b, err := os.ReadFile(status)
				if err != nil {
					return // exited
				}
				for line := range strings.SplitSeq(string(b), "\n") {
					if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
						var kb int64
						if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err == nil && kb*1024 > peak.Load() {
							peak.Store(kb * 1024)
						}
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
		err := cmd.Wait()
		close(exited)
		<-done
		if err != nil {
			t.Fatalf("kmsctl %v: %v\n%s", args, err, &errb)
		}
		if peak.Load() == 0 {
			t.Fatalf("kmsctl %v: no /proc sample of its memory", args)
		}
		return peak.Load()
	}
	const limit = 100 << 20
	start := time.Now()
	if rss := runMeasured("encrypt", "--key-id", arn, "--encryption-context", "size=2GiB", in); rss >= limit {
		t.Fatalf("encrypt: peak RSS %d MB, want < 100 MB", rss>>20)
	} else {
		t.Logf("encrypt 2 GiB: %v, peak RSS %d MiB", time.Since(start).Round(time.Millisecond), rss>>20)
	}
	start = time.Now()
	if rss := runMeasured("decrypt", "--encryption-context", "size=2GiB", "--out", in+".out", in+".enc"); rss >= limit {
		t.Fatalf("decrypt: peak RSS %d MB, want < 100 MB", rss>>20)
	} else {
		t.Logf("decrypt 2 GiB: %v, peak RSS %d MiB", time.Since(start).Round(time.Millisecond), rss>>20)
	}
	if got := hashFile(t, in+".out"); got != want {
		t.Fatal("2 GiB round trip differs")
	}
	os.Remove(in + ".out")

	// Interrupts: SIGINT while encrypting and while decrypting.
	for _, args := range [][]string{
		{"encrypt", "--key-id", arn, "--out", in + ".int", in},
		{"decrypt", "--out", in + ".int", in + ".enc"},
	} {
		cmd := exec.Command(bin, args...)
		cmd.Env = srv.Env()
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait until the temporary output exists and grows, then interrupt.
		deadline := time.Now().Add(30 * time.Second)
		for !tempGrowing(dir) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		if err == nil || cmd.ProcessState.ExitCode() != exitInterrupted {
			t.Fatalf("%s interrupted: %v (exit %d)\n%s", args[0], err, cmd.ProcessState.ExitCode(), &errb)
		}
		if _, err := os.Stat(in + ".int"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s interrupted: output exists", args[0])
		}
		assertNoTemp(t, dir)
	}
}

func tempGrowing(dir string) bool {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".kmsctl-tmp-") {
			if info, err := e.Info(); err == nil && info.Size() > 1<<20 {
				return true
			}
		}
	}
	return false
}

// writeLarge writes size bytes (a random 1 MiB block, varied per MiB so no
// two frames are equal) and returns their SHA-256.
func writeLarge(t *testing.T, path string, size int64) [32]byte {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 1<<20)
	_, _ = rand.Read(block)
	h := sha256.New()
	w := io.MultiWriter(f, h)
	for i := int64(0); i < size; i += int64(len(block)) {
		block[0], block[1], block[2] = byte(i>>20), byte(i>>28), byte(i>>36)
		if _, err := w.Write(block); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

func hashFile(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// TestEnvelopeOutputsNeverInputs: with --force, an output that is another
// input (an earlier file's output replacing a later input before it was
// read), an output two inputs share, and an output that stdin is
// redirected from are all refused before anything is written; and a
// message with more encrypted data keys than --max-encrypted-data-keys
// (default 10) is refused before any KMS call is made for them, on encrypt
// as on decrypt (so a default encrypt never writes what a default decrypt
// refuses); a negative limit is a usage error.
func TestEnvelopeOutputsNeverInputs(t *testing.T) {
	srv := testkmsd.Start(t)
	arn := srv.CreateKey(t, "outputs")
	dir := t.TempDir()
	a, aEnc := filepath.Join(dir, "a"), filepath.Join(dir, "a.enc")
	for name, content := range map[string]string{a: "AAAA", aEnc: "precious"} {
		if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, errs, code := kmsctlRun(t, srv, nil, "encrypt", "--force", "--key-id", arn, a, aEnc); code != 2 || !strings.Contains(errs, "is the input file") {
		t.Fatalf("an output that is a later input: exit %d %s", code, errs)
	}
	if got, _ := os.ReadFile(aEnc); string(got) != "precious" {
		t.Fatalf("the later input was replaced: %q", got)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(sub, "a")
	if err := os.WriteFile(b, []byte("BBBB"), 0o600); err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()
	if _, errs, code := kmsctlRun(t, srv, nil, "encrypt", "--force", "--key-id", arn, "--out", outDir, a, b); code != 2 || !strings.Contains(errs, "would both be written") {
		t.Fatalf("two inputs, one output: exit %d %s", code, errs)
	}
	// stdin redirected from the output file.
	cmd := exec.Command(testkmsd.Build(t, "./cmd/kmsctl"), "encrypt", "--force", "--key-id", arn, "-o", a)
	cmd.Env = srv.Env()
	f, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Stdin = f
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Run(); err == nil || !strings.Contains(errb.String(), "is the input file stdin") {
		t.Fatalf("stdin redirected from the output: %v %s", err, errb.String())
	}
	if got, _ := os.ReadFile(a); string(got) != "AAAA" {
		t.Fatalf("the file stdin came from was replaced: %q", got)
	}

	// Eleven data keys: refused on decrypt by default, accepted when allowed.
	var keys []string
	for i := range 11 {
		keys = append(keys, "--key-id", srv.CreateKey(t, fmt.Sprintf("edk-%d", i)))
	}
	many := filepath.Join(dir, "many")
	if err := os.WriteFile(many, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := kmsctlRun(t, srv, nil, append(append([]string{"encrypt"}, keys...), many)...); code != 2 || !strings.Contains(errs, "exceed --max-encrypted-data-keys 10") {
		t.Fatalf("encrypt under 11 keys with the default limit: exit %d %s", code, errs)
	}
	if _, err := os.Stat(many + ".enc"); !os.IsNotExist(err) {
		t.Fatalf("a refused encrypt left output: %v", err)
	}
	if _, errs, code := kmsctlRun(t, srv, nil, "decrypt", "--max-encrypted-data-keys", "-1", "-o", "-", aEnc); code != 2 || !strings.Contains(errs, "want 0") {
		t.Fatalf("a negative limit: exit %d %s", code, errs)
	}
	mustRun(t, srv, nil, append(append([]string{"encrypt", "--max-encrypted-data-keys", "11"}, keys...), many)...)
	if _, errs, code := kmsctlRun(t, srv, nil, "decrypt", "-o", "-", many+".enc"); code == 0 || !strings.Contains(errs, "encrypted data keys") {
		t.Fatalf("11 data keys with the default limit: exit %d %s", code, errs)
	}
	if got := mustRun(t, srv, nil, "decrypt", "--max-encrypted-data-keys", "11", "-o", "-", many+".enc"); got != "x" {
		t.Fatalf("11 data keys allowed: %q", got)
	}
}

// TestInterruptWithIdleStdin: an interrupt ends kmsctl encrypt, and removes
// its temporary output, while stdin is an open pipe that sends nothing
// (before, the blocking read held the interrupt off until the pipe closed).
func TestInterruptWithIdleStdin(t *testing.T) {
	srv := testkmsd.Start(t)
	arn := srv.CreateKey(t, "idle")
	dir := t.TempDir()
	cmd, stdin, errb := startWithStdinPipe(t, srv, exec.Command(testkmsd.Build(t, "./cmd/kmsctl"), "encrypt", "--key-id", arn, "-o", filepath.Join(dir, "out.enc")))
	defer stdin.Close()
	if _, err := stdin.Write([]byte("some bytes, then nothing")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the data key is made, the read waits
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Fatalf("after an interrupt: %v, want exit status 130\n%s", err, errb.String())
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("kmsctl did not stop on an interrupt while stdin was idle")
	}
	assertNoTemp(t, dir)
}

// TestHangupIgnoredUnderNohup: started with SIGHUP ignored (as nohup
// does), kmsctl encrypt survives a hangup and finishes its output; before,
// it caught SIGHUP regardless and ended the run.
func TestHangupIgnoredUnderNohup(t *testing.T) {
	srv := testkmsd.Start(t)
	arn := srv.CreateKey(t, "nohup")
	dir := t.TempDir()
	out := filepath.Join(dir, "out.enc")
	// trap "" HUP sets the disposition to ignored, which exec keeps.
	cmd, stdin, errb := startWithStdinPipe(t, srv, exec.Command("/bin/sh", "-c", `trap "" HUP; exec "$0" "$@"`, testkmsd.Build(t, "./cmd/kmsctl"), "encrypt", "--key-id", arn, "-o", out))
	if _, err := stdin.Write([]byte("before the hangup, ")); err != nil {
		t.Fatal(err)
	}
	// The hangup must come after the shell's trap, that is once kmsctl
	// runs in its place (a hangup to the shell before would end it).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid)); strings.TrimSpace(string(comm)) == "kmsctl" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("kmsctl did not start")
		}
	}
	time.Sleep(300 * time.Millisecond) // the data key made, the read waits
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := stdin.Write([]byte("and after")); err != nil {
		t.Fatalf("kmsctl ended on an ignored hangup: %v\n%s", err, errb.String())
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("kmsctl under nohup after a hangup: %v\n%s", err, errb.String())
	}
	if got := mustRun(t, srv, nil, "decrypt", "-o", "-", out); got != "before the hangup, and after" {
		t.Fatalf("decrypted %q", got)
	}
}

// startWithStdinPipe starts cmd against srv with its stdin a pipe the test
// writes, and its stderr collected.
func startWithStdinPipe(t *testing.T, srv *testkmsd.Server, cmd *exec.Cmd) (*exec.Cmd, io.WriteCloser, *bytes.Buffer) {
	t.Helper()
	cmd.Env = srv.Env()
	errb := new(bytes.Buffer)
	cmd.Stderr = errb
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, stdin, errb
}

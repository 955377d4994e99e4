package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
)

// TestE2EAuditSurvivesKill runs the kmsd binary with the durable audit
// trail, kills it with SIGKILL while 8 clients encrypt, and checks that the
// event of every request whose response a client received is in the
// audit file.
func TestE2EAuditSurvivesKill(t *testing.T) {
	bin := buildBinary(t, "./cmd/kmsd")
	st := newE2EState(t)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KMSD_") && !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	for k, v := range st.env() {
		env = append(env, k+"="+v)
	}
	env = append(env, "KMSD_QUOTAS=off", "KMSD_AUDIT_MODE=durable")
	addrFile := filepath.Join(st.dir, "addr")
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-addr-file", addrFile)
	cmd.Env, cmd.Dir = env, t.TempDir()
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	var addr string
	for deadline := time.Now().Add(e2eStartupWait); addr == ""; {
		if b, err := os.ReadFile(addrFile); err == nil && bytes.HasSuffix(b, []byte("\n")) {
			addr = strings.TrimSpace(string(b))
		} else if time.Now().After(deadline) {
			t.Fatalf("kmsd did not start\n%s", &stderr)
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	c := newSDKClient(t, st.creds, addr, e2eRegion, nil)
	key, err := c.CreateKey(t.Context(), &awskms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var answered []string // request ids of responses received
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				out, err := c.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("crash")})
				if err != nil {
					return // the server is gone
				}
				mu.Lock()
				answered = append(answered, requestIDOf(out.ResultMetadata))
				mu.Unlock()
			}
		})
	}
	time.Sleep(700 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	close(stop)
	wg.Wait()

	events := readAudit(t, filepath.Join(filepath.Dir(st.db), "audit.db"))
	stored := map[string]bool{}
	for _, e := range events {
		id, _ := e.ev["requestID"].(string)
		stored[id] = true
	}
	if len(answered) < 50 {
		t.Fatalf("only %d requests answered before the kill; the load did not run", len(answered))
	}
	lost := 0
	for _, id := range answered {
		if !stored[id] {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d answered requests have no audit event after kill -9", lost, len(answered))
	}
	t.Logf("%d answered requests, %d events stored (requests in flight at the kill may be recorded without an answer)", len(answered), len(events))
}

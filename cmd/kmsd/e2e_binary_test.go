package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
)

// TestE2EBinary builds the kmsd binary, starts it as an operator would
// (configuration through KMSD_* variables, -listen 127.0.0.1:0 -addr-file),
// uses it through the AWS SDK, and stops it with SIGTERM, which must end it
// with exit status 0. This covers what run() alone does not: main, flag
// handling of the real command line, signal handling and the exit code.
func TestE2EBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool to build kmsd with: %v", err)
	}
	st := newE2EState(t)
	bin := filepath.Join(t.TempDir(), "kmsd")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.CommandContext(t.Context(), goTool, append(args, ".")...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// The environment: this process's, minus anything that configures kmsd
	// or an AWS client, plus the state's KMSD_* variables. SOFTHSM2_CONF
	// (set by softhsmtest) is inherited so that the token is found.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KMSD_") && !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	for k, v := range st.env() {
		env = append(env, k+"="+v)
	}
	env = append(env, "KMSD_LOG_FORMAT=json", "KMSD_LOG_LEVEL=info")

	addrFile := filepath.Join(st.dir, "addr")
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-addr-file", addrFile)
	cmd.Env = env
	cmd.Dir = t.TempDir() // no ./softhsm.conf, no ./var: everything comes from the environment
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	waited := false // set once exited has been received from
	t.Cleanup(func() {
		if !waited {
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	var addr string
	deadline := time.Now().Add(e2eStartupWait)
	for addr == "" {
		if b, err := os.ReadFile(addrFile); err == nil && bytes.HasSuffix(b, []byte("\n")) {
			addr = strings.TrimSpace(string(b))
			break
		}
		select {
		case err := <-exited:
			waited = true
			t.Fatalf("kmsd exited before serving: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("kmsd did not write %s\nstderr:\n%s", addrFile, &stderr)
		}
	}
	if want := "kmsd: bootstrap admin credentials written to " + st.creds; !strings.Contains(stdout.String(), want) {
		t.Errorf("stdout lacks %q:\n%s", want, &stdout)
	}

	c := newSDKClient(t, st.creds, addr, e2eRegion, nil)
	key, err := c.CreateKey(t.Context(), &awskms.CreateKeyInput{Description: aws.String("binary")})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	plaintext := []byte("through the shipped binary")
	enc, err := c.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: plaintext})
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	if aws.ToString(enc.KeyId) != aws.ToString(key.KeyMetadata.Arn) {
		t.Errorf("Encrypt KeyId %q, want the key ARN %q", aws.ToString(enc.KeyId), aws.ToString(key.KeyMetadata.Arn))
	}
	dec, err := c.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if !bytes.Equal(dec.Plaintext, plaintext) || aws.ToString(dec.KeyId) != aws.ToString(key.KeyMetadata.Arn) {
		t.Errorf("Decrypt: %q from %q", dec.Plaintext, aws.ToString(dec.KeyId))
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		waited = true
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				// Status 66 is the race detector's.
				t.Fatalf("kmsd exited with status %d after SIGTERM, want 0\nstderr:\n%s", ee.ExitCode(), &stderr)
			}
			t.Fatalf("kmsd: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("kmsd did not exit within 30 s of SIGTERM\nstderr:\n%s", &stderr)
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	if _, err := os.Stat(addrFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("addr-file left behind after exit (stat: %v)", err)
	}
	log := stderr.String()
	for _, want := range []string{`"msg":"serving"`, `"msg":"shutting down"`, `"msg":"stopped"`} {
		if !strings.Contains(log, want) {
			t.Errorf("JSON log lacks %s:\n%s", want, log)
		}
	}
	for name, text := range map[string]string{"stdout": stdout.String(), "stderr": log} {
		if strings.Contains(text, string(plaintext)) || strings.Contains(text, st.tok.PIN) {
			t.Errorf("%s shows the plaintext or the PIN", name)
		}
	}
}

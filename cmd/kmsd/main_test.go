package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"

	"hsmkms/hsm"
	"hsmkms/hsm/softhsmtest"
)

// lockedBuffer is an io.Writer that server goroutines and the test can share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// kmsdEnv clears every variable that would change what run does, so the
// caller's environment cannot leak into the test.
func kmsdEnv(t *testing.T, set map[string]string) {
	t.Helper()
	for _, k := range []string{
		"KMSD_CONFIG", "KMSD_LISTEN", "KMSD_REGION", "KMSD_DATABASE", "KMSD_CREDENTIALS_FILE",
		"KMSD_HSM_MODULE", "KMSD_HSM_TOKEN_LABEL", "KMSD_HSM_PIN_FILE", "KMSD_HSM_PIN",
		"KMSD_LOG_LEVEL", "KMSD_LOG_FORMAT", "KMSD_TLS_CERT_FILE", "KMSD_TLS_KEY_FILE",
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KMS", "AWS_REGION", "AWS_DEFAULT_REGION",
	} {
		t.Setenv(k, set[k])
	}
}

// server is one in-process run of kmsd.
type server struct {
	addr           string
	stdout, stderr *lockedBuffer
	cancel         context.CancelFunc
	done           chan error

	// pinEnvAfterStart is $KMSD_HSM_PIN as run left it once serving.
	pinEnvAfterStart string
}

// startKMSD runs kmsd in-process on 127.0.0.1:0 and waits until it has
// written its -addr-file, which it does only when ready to serve.
func startKMSD(t *testing.T, extraArgs ...string) *server {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	ctx, cancel := context.WithCancel(t.Context())
	s := &server{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, cancel: cancel, done: make(chan error, 1)}
	args := append([]string{"-listen", "127.0.0.1:0", "-addr-file", addrFile}, extraArgs...)
	pin, hadPIN := os.LookupEnv("KMSD_HSM_PIN")
	go func() { s.done <- run(ctx, args, s.stdout, s.stderr) }()

	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(addrFile); err == nil {
			s.addr = strings.TrimSpace(string(b))
			// run unsets the PIN variable; restarts in the same test
			// need it back.
			s.pinEnvAfterStart = os.Getenv("KMSD_HSM_PIN")
			if hadPIN {
				os.Setenv("KMSD_HSM_PIN", pin)
			}
			return s
		}
		select {
		case err := <-s.done:
			cancel()
			t.Fatalf("kmsd exited before serving: %v\nstderr:\n%s", err, s.stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("kmsd did not write its addr-file\nstderr:\n%s", s.stderr)
		}
	}
}

// stop sends the equivalent of SIGTERM and waits for a clean exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("kmsd: %v\nstderr:\n%s", err, s.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("kmsd did not stop\nstderr:\n%s", s.stderr)
	}
}

func kmsClient(t *testing.T, credsFile, addr string) *awskms.Client {
	t.Helper()
	cfg, err := awsconfig.LoadDefaultConfig(t.Context(),
		awsconfig.WithSharedCredentialsFiles([]string{credsFile}),
		awsconfig.WithSharedConfigFiles([]string{}),
		awsconfig.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	return awskms.NewFromConfig(cfg, func(o *awskms.Options) {
		o.BaseEndpoint = aws.String("http://" + addr)
	})
}

// TestRun starts kmsd with a fresh token and database, checks the bootstrap
// credentials file and a few calls through the AWS SDK, stops it, and starts
// it again on the same token and database.
func TestRun(t *testing.T) {
	tok := softhsmtest.NewToken(t) // sets SOFTHSM2_CONF for this process
	dir := t.TempDir()
	creds := filepath.Join(dir, "state", "admin-credentials")
	kmsdEnv(t, map[string]string{
		"KMSD_HSM_PIN":          tok.PIN,
		"KMSD_HSM_MODULE":       tok.ModulePath,
		"KMSD_HSM_TOKEN_LABEL":  tok.TokenLabel,
		"KMSD_DATABASE":         filepath.Join(dir, "state", "kms.db"),
		"KMSD_CREDENTIALS_FILE": creds,
		"KMSD_LOG_LEVEL":        "debug",
	})

	s := startKMSD(t)
	out := s.stdout.String()
	m := regexp.MustCompile(`bootstrap admin credentials written to (\S+) \(account (\d{12})\)`).FindStringSubmatch(out)
	if m == nil || m[1] != creds {
		t.Fatalf("stdout does not name the credentials file %s:\n%s", creds, out)
	}
	account := m[2]

	st, err := os.Stat(creds)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Errorf("credentials file mode %04o, want 0600", perm)
	}
	text, err := os.ReadFile(creds)
	if err != nil {
		t.Fatal(err)
	}
	fm := regexp.MustCompile(`(?m)^\[default\]\naws_access_key_id = (AKIA[A-Z0-9]{16})\naws_secret_access_key = (\S{20,})\n\z`).FindSubmatch(text)
	if fm == nil {
		t.Fatalf("credentials file not in shared-credentials form:\n%s", text)
	}
	secret := string(fm[2])
	for _, want := range []string{"# account: " + account, "# region: us-east-1", "# endpoint: http://" + s.addr} {
		if !bytes.Contains(text, []byte(want)) {
			t.Errorf("credentials file lacks %q", want)
		}
	}

	resp, err := http.Get("http://" + s.addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %s", resp.Status)
	}

	c := kmsClient(t, creds, s.addr)
	key, err := c.CreateKey(t.Context(), &awskms.CreateKeyInput{Description: aws.String("run test")})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	plaintext := []byte("kmsd run test plaintext")
	enc, err := c.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: plaintext})
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	s.stop(t)

	for name, text := range map[string]string{"stdout": s.stdout.String(), "stderr": s.stderr.String()} {
		if strings.Contains(text, secret) {
			t.Errorf("%s shows the secret access key", name)
		}
		if strings.Contains(text, tok.PIN) {
			t.Errorf("%s shows the PIN", name)
		}
		if strings.Contains(text, string(plaintext)) {
			t.Errorf("%s shows plaintext", name)
		}
	}
	if !strings.Contains(s.stderr.String(), "msg=stopped") {
		t.Errorf("no 'stopped' log line:\n%s", s.stderr)
	}

	// Restart on the same token and database: the admin exists, its file is
	// left alone, and the ciphertext still decrypts.
	s = startKMSD(t)
	if want := "admin credentials in " + creds + " (account " + account + ")"; !strings.Contains(s.stdout.String(), want) {
		t.Errorf("restart stdout lacks %q:\n%s", want, s.stdout)
	}
	again, err := os.ReadFile(creds)
	if err != nil || !bytes.Equal(again, text) {
		t.Errorf("credentials file changed on restart (err %v)", err)
	}
	c = kmsClient(t, creds, s.addr)
	dec, err := c.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	if err != nil {
		t.Fatalf("Decrypt after restart: %v", err)
	}
	if !bytes.Equal(dec.Plaintext, plaintext) {
		t.Errorf("Decrypt after restart: got %q", dec.Plaintext)
	}
	s.stop(t)

	// Restart with the credentials file gone: say so, do not fail.
	if err := os.Remove(creds); err != nil {
		t.Fatal(err)
	}
	s = startKMSD(t)
	if want := "admin credentials file " + creds + " is missing"; !strings.Contains(s.stdout.String(), want) {
		t.Errorf("stdout lacks %q:\n%s", want, s.stdout)
	}
	s.stop(t)
}

func TestRunRefusesBadStarts(t *testing.T) {
	mod := fakeModule(t)
	tests := []struct {
		name string
		args []string
		env  map[string]string
		yaml string
		want []string
	}{
		{
			name: "unknown flag",
			args: []string{"-pin", "1234"},
			want: []string{"flag provided but not defined: -pin"},
		},
		{
			name: "positional arguments",
			args: []string{"1234"},
			want: []string{"unexpected arguments", "never a flag"},
		},
		{
			name: "all config problems at once",
			env:  map[string]string{"KMSD_REGION": "Mars", "KMSD_HSM_PIN": "1", "KMSD_HSM_MODULE": mod},
			yaml: "listen: nope\nextra: 1\n",
			want: []string{"region:", "listen:", "unknown option extra", "3 problem(s)"},
		},
		{
			name: "no PIN",
			env:  map[string]string{"KMSD_HSM_MODULE": mod, "KMSD_HSM_PIN_FILE": "/nonexistent/pin"},
			want: []string{"hsm.pin_file", "KMSD_HSM_PIN"},
		},
		{
			name: "port in use or bad address",
			env:  map[string]string{"KMSD_HSM_MODULE": mod, "KMSD_HSM_PIN": "1", "KMSD_DATABASE": "DIR/kms.db", "KMSD_CREDENTIALS_FILE": "DIR/creds"},
			yaml: "http:\n  allow_plaintext: true\n",
			args: []string{"-listen", "192.0.2.1:1"}, // TEST-NET-1: not a local address
			want: []string{"listen tcp 192.0.2.1:1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			env := map[string]string{}
			for k, v := range tt.env {
				env[k] = strings.ReplaceAll(v, "DIR", dir)
			}
			if tt.yaml != "" {
				env["KMSD_CONFIG"] = writeFile(t, "kmsd.yaml", tt.yaml, 0o600)
			}
			kmsdEnv(t, env)
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tt.args, &stdout, &stderr)
			if err == nil {
				t.Fatal("run succeeded")
			}
			msg := err.Error() + "\n" + stderr.String()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
		})
	}
}

// TestRunCheckConfig: -check-config logs in to the token, so a wrong PIN
// fails the check instead of the restart it was meant to make safe.
func TestRunCheckConfig(t *testing.T) {
	tok := softhsmtest.NewToken(t)
	env := map[string]string{"KMSD_HSM_PIN": tok.PIN, "KMSD_HSM_MODULE": tok.ModulePath, "KMSD_HSM_TOKEN_LABEL": tok.TokenLabel}
	kmsdEnv(t, env)
	var stdout bytes.Buffer
	if err := run(t.Context(), []string{"-check-config"}, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "configuration OK") {
		t.Errorf("stdout: %q", stdout.String())
	}
	env["KMSD_HSM_PIN"] = tok.PIN + "0"
	kmsdEnv(t, env)
	if err := run(t.Context(), []string{"-check-config"}, io.Discard, io.Discard); !errors.Is(err, hsm.ErrPINIncorrect) {
		t.Errorf("-check-config with a wrong PIN: %v", err)
	}
	err := run(t.Context(), []string{"-h"}, io.Discard, io.Discard)
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

// TestRunInitToken: -init-token makes the configured token with the
// configured PIN (kmsd then starts on it), and refuses to make it twice.
func TestRunInitToken(t *testing.T) {
	tok := softhsmtest.NewToken(t) // configures SoftHSM for this process
	dir := t.TempDir()
	env := map[string]string{
		"KMSD_HSM_PIN": "fresh-pin-1234", "KMSD_HSM_MODULE": tok.ModulePath, "KMSD_HSM_TOKEN_LABEL": tok.TokenLabel + "-new",
		"KMSD_DATABASE": filepath.Join(dir, "kms.db"), "KMSD_CREDENTIALS_FILE": filepath.Join(dir, "admin-credentials"),
	}
	kmsdEnv(t, env)
	var stdout bytes.Buffer
	if err := run(t.Context(), []string{"-init-token"}, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "initialised with the configured PIN") {
		t.Errorf("stdout: %q", stdout.String())
	}
	kmsdEnv(t, env)
	if err := run(t.Context(), []string{"-init-token"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("a second -init-token: %v", err)
	}
	kmsdEnv(t, env)
	s := startKMSD(t)
	if _, err := kmsClient(t, env["KMSD_CREDENTIALS_FILE"], s.addr).CreateKey(t.Context(), &awskms.CreateKeyInput{}); err != nil {
		t.Fatalf("kmsd on the initialised token: %v", err)
	}
	s.stop(t)
}

// TestRunResetAdminKey: with the admin's secret lost, -reset-admin-key
// (run beside the serving kmsd: it opens no port) writes a new admin key to
// the credentials file and deletes the old one; the running kmsd accepts
// the new key and refuses the old (not used since it started, so not in its
// credential cache, which may keep a used key for 15 s).
func TestRunResetAdminKey(t *testing.T) {
	tok := softhsmtest.NewToken(t)
	dir := t.TempDir()
	creds := filepath.Join(dir, "admin-credentials")
	env := map[string]string{
		"KMSD_HSM_PIN": tok.PIN, "KMSD_HSM_MODULE": tok.ModulePath, "KMSD_HSM_TOKEN_LABEL": tok.TokenLabel,
		"KMSD_DATABASE": filepath.Join(dir, "kms.db"), "KMSD_CREDENTIALS_FILE": creds,
	}
	kmsdEnv(t, env)
	s := startKMSD(t)
	defer s.stop(t)
	oldCreds, err := os.ReadFile(creds)
	if err != nil {
		t.Fatal(err)
	}
	kmsdEnv(t, env)
	var stdout bytes.Buffer
	if err := run(t.Context(), []string{"-reset-admin-key", "-listen", s.addr}, &stdout, io.Discard); err != nil {
		t.Fatalf("-reset-admin-key beside a serving kmsd: %v", err)
	}
	if !strings.Contains(stdout.String(), "credentials written to "+creds) {
		t.Errorf("stdout: %q", stdout.String())
	}
	oldFile := filepath.Join(dir, "old-credentials")
	if err := os.WriteFile(oldFile, oldCreds, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := kmsClient(t, creds, s.addr).ListKeys(t.Context(), &awskms.ListKeysInput{}); err != nil {
		t.Fatalf("the new admin key: %v", err)
	}
	var apiErr smithy.APIError
	if _, err := kmsClient(t, oldFile, s.addr).ListKeys(t.Context(), &awskms.ListKeysInput{}); !errors.As(err, &apiErr) || apiErr.ErrorCode() != "UnrecognizedClientException" {
		t.Fatalf("the old admin key after the reset: %v", err)
	}
}

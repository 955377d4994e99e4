// Package testkmsd starts a real kmsd for end-to-end tests of clients
// (kmsctl, the envelope library, the official ESDKs in scripts/interop):
// it builds cmd/kmsd, gives it a fresh SoftHSM2 token and database through
// KMSD_* variables, runs it on 127.0.0.1:0 and stops it when the test ends.
package testkmsd

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"hsmkms/hsm/softhsmtest"
)

// Region is the region kmsd is started with.
const Region = "us-east-1"

// Server is a running kmsd.
type Server struct {
	Addr      string // host:port
	CredsFile string // shared credentials file with the bootstrap admin key
	Account   string
	Dir       string // scratch directory of this server
}

// RepoRoot is the directory of the hsmkms module (found from this file, so
// that it works from other modules that replace hsmkms with it).
func RepoRoot(t testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testkmsd: cannot locate the source")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

var builds sync.Map // package path -> *buildResult

type buildResult struct {
	once sync.Once
	bin  string
	out  []byte
	err  error
}

// Build compiles a main package of the hsmkms module (e.g. "./cmd/kmsctl")
// once per test process and returns the binary's path.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(pkg, &buildResult{})
	b := v.(*buildResult)
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "testkmsd-bin-")
		if err != nil {
			b.err = err
			return
		}
		b.bin = filepath.Join(dir, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-o", b.bin, pkg)
		cmd.Dir = RepoRoot(t)
		b.out, b.err = cmd.CombinedOutput()
	})
	if b.err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, b.err, b.out)
	}
	return b.bin
}

var accountLine = regexp.MustCompile(`admin credentials (?:written to|in) \S+ \(account (\d{12})\)`)

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

// Start builds and starts kmsd with a fresh token and state.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Build(t, "./cmd/kmsd")
	tok := softhsmtest.NewToken(t)
	dir := t.TempDir()
	s := &Server{Dir: dir, CredsFile: filepath.Join(dir, "admin-credentials")}
	addrFile := filepath.Join(dir, "addr")
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KMSD_") && !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"KMSD_HSM_PIN="+tok.PIN, "KMSD_HSM_MODULE="+tok.ModulePath, "KMSD_HSM_TOKEN_LABEL="+tok.TokenLabel,
		"KMSD_DATABASE="+filepath.Join(dir, "kms.db"), "KMSD_CREDENTIALS_FILE="+s.CredsFile,
		"KMSD_REGION="+Region, "KMSD_LOG_LEVEL=warn")
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-addr-file", addrFile)
	cmd.Env = env
	cmd.Dir = dir
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(addrFile); err == nil && bytes.HasSuffix(b, []byte("\n")) {
			s.Addr = strings.TrimSpace(string(b))
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("kmsd exited before serving: %v\nstderr:\n%s", err, &stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("kmsd did not start\nstderr:\n%s", &stderr)
		}
	}
	if m := accountLine.FindStringSubmatch(stdout.String()); m != nil {
		s.Account = m[1]
	}
	return s
}

// Env is the environment of an AWS tool (kmsctl, an ESDK) that should
// talk to this server: endpoint, region and credentials the standard way.
func (s *Server) Env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"AWS_ENDPOINT_URL_KMS=http://"+s.Addr,
		"AWS_REGION="+Region,
		"AWS_SHARED_CREDENTIALS_FILE="+s.CredsFile,
		"AWS_CONFIG_FILE="+filepath.Join(s.Dir, "no-config"),
		"AWS_EC2_METADATA_DISABLED=true",
	)
}

// Client is an SDK client for the server.
func (s *Server) Client(t testing.TB) *awskms.Client {
	t.Helper()
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(),
		awsconfig.WithSharedCredentialsFiles([]string{s.CredsFile}),
		awsconfig.WithSharedConfigFiles([]string{}),
		awsconfig.WithRegion(Region))
	if err != nil {
		t.Fatal(err)
	}
	return awskms.NewFromConfig(cfg, func(o *awskms.Options) {
		o.BaseEndpoint = aws.String("http://" + s.Addr)
	})
}

// CreateKey makes a symmetric key and returns its ARN.
func (s *Server) CreateKey(t testing.TB, description string) string {
	t.Helper()
	out, err := s.Client(t).CreateKey(context.Background(), &awskms.CreateKeyInput{Description: aws.String(description)})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return aws.ToString(out.KeyMetadata.Arn)
}

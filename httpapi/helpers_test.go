package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/google/uuid"

	"hsmkms/hsm"
	"hsmkms/kms"
)

const (
	testRegion    = "us-east-1"
	testKeyID     = "AKIDEXAMPLE"
	testSecret    = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	testAccount   = "111122223333"
	testPrincipal = "arn:aws:iam::111122223333:root"
)

// credentialMap is the in-test CredentialSource.
type credentialMap map[string]kms.AccessKey

func (m credentialMap) LookupAccessKey(_ context.Context, id string) (kms.AccessKey, error) {
	k, ok := m[id]
	if !ok {
		return kms.AccessKey{}, fmt.Errorf("access key %q: %w", id, kms.ErrStoreNotFound)
	}
	return k, nil
}

var testCredentials = credentialMap{
	testKeyID: {ID: testKeyID, Secret: testSecret, AccountID: testAccount, PrincipalARN: testPrincipal, Active: true},
}

// offlineDevice and offlineStore let kms.New build a Service without an HSM
// or a database. These tests cover the protocol, not the operations: any
// call that reaches them panics, which the stack must turn into
// KMSInternalException like any other panic.
type offlineDevice struct{ hsm.Device }
type offlineStore struct{ kms.Store }

func newTestService(t *testing.T) *kms.Service {
	t.Helper()
	svc, err := kms.New(kms.Config{Region: testRegion, Device: offlineDevice{}, Store: offlineStore{}})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type testEnv struct {
	srv  *httptest.Server
	logs *syncBuffer
}

// newTestEnv starts the real handler on 127.0.0.1. adjust, if set, may
// change the server (for example add test operations) before the engine
// is built.
func newTestEnv(t *testing.T, adjust func(*Config, *server)) *testEnv {
	t.Helper()
	logs := &syncBuffer{}
	cfg := Config{
		Service:     newTestService(t),
		Credentials: testCredentials,
		Logger:      slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Ready:       func(context.Context) error { return nil },
	}
	s := newServer(cfg)
	if adjust != nil {
		adjust(&cfg, s)
	}
	srv := httptest.NewServer(s.engine())
	t.Cleanup(srv.Close)
	return &testEnv{srv: srv, logs: logs}
}

// apiRequest describes one raw request to the test server.
type apiRequest struct {
	method      string // default POST
	path        string // default /
	target      string // X-Amz-Target, omitted if empty
	contentType string // omitted if empty
	body        []byte
	unsigned    bool
	chunked     bool // send without Content-Length
	creds       *aws.Credentials
}

func kmsRequest(op, body string) apiRequest {
	return apiRequest{target: "TrentService." + op, contentType: contentType, body: []byte(body)}
}

func (e *testEnv) do(t *testing.T, ar apiRequest) (*http.Response, []byte) {
	t.Helper()
	if ar.method == "" {
		ar.method = http.MethodPost
	}
	if ar.path == "" {
		ar.path = "/"
	}
	var body io.Reader = bytes.NewReader(ar.body)
	if ar.chunked {
		body = io.MultiReader(body) // hides the length, so the client sends chunks
	}
	req, err := http.NewRequestWithContext(t.Context(), ar.method, e.srv.URL+ar.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if ar.target != "" {
		req.Header.Set("X-Amz-Target", ar.target)
	}
	if ar.contentType != "" {
		req.Header.Set("Content-Type", ar.contentType)
	}
	if !ar.unsigned {
		creds := aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}
		if ar.creds != nil {
			creds = *ar.creds
		}
		sum := sha256.Sum256(ar.body)
		if err := v4.NewSigner().SignHTTP(t.Context(), creds, req, hex.EncodeToString(sum[:]), "kms", testRegion, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, respBody
}

// awsError is an error response body as clients parse it.
type awsError struct {
	Type    string  `json:"__type"`
	Message *string `json:"message"`
}

// assertAWSError checks status, __type, content type and the request id of
// an error response and returns the parsed body.
func assertAWSError(t *testing.T, resp *http.Response, body []byte, status int, code kms.Code) awsError {
	t.Helper()
	assertRequestID(t, resp)
	if resp.StatusCode != status {
		t.Errorf("status = %d, want %d (body %s)", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != contentType {
		t.Errorf("Content-Type = %q, want %q", ct, contentType)
	}
	var e awsError
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if e.Type != string(code) {
		t.Errorf("__type = %q, want %q (body %s)", e.Type, code, body)
	}
	return e
}

func assertRequestID(t *testing.T, resp *http.Response) string {
	t.Helper()
	id := resp.Header.Get("x-amzn-RequestId")
	if _, err := uuid.Parse(id); err != nil {
		t.Errorf("x-amzn-RequestId = %q, want a UUID", id)
	}
	return id
}

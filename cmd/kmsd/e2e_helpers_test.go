package main

// Shared helpers of the end-to-end tests (e2e_*_test.go): a real kmsd (run()
// in-process, or the built binary) on 127.0.0.1:0 with a fresh SoftHSM2
// token and SQLite database, driven through the official AWS SDK for Go v2.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
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
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"hsmkms/hsm"
	"hsmkms/hsm/softhsmtest"
)

const (
	e2eRegion      = "us-east-1"
	amzJSON11      = "application/x-amz-json-1.1"
	requestIDName  = "x-amzn-RequestId"
	anyMessage     = "\x00any message" // expectErr: do not check the message
	noMessage      = ""                // expectErr: the message must be absent
	e2eStartupWait = 60 * time.Second
)

var (
	uuidPattern    = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	accountPattern = regexp.MustCompile(`^[0-9]{12}$`)
	hex64Pattern   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	// Both the first start ("written to") and later starts ("credentials
	// in") name the account on stdout.
	accountLine = regexp.MustCompile(`admin credentials (?:written to|in) \S+ \(account (\d{12})\)`)
)

// e2eState is what survives a restart of kmsd: the token, the database and
// the credentials file. The environment set by newE2EState stays in effect
// for the whole test, so every start uses the same state.
type e2eState struct {
	tok   hsm.Config
	dir   string
	db    string
	creds string
}

// newE2EState creates a fresh SoftHSM2 token and a directory for the
// database and the credentials file, and points kmsd at them through the
// KMSD_* environment. It uses t.Setenv, so its tests cannot be parallel.
func newE2EState(t *testing.T) *e2eState {
	t.Helper()
	tok := softhsmtest.NewToken(t) // sets SOFTHSM2_CONF for this process
	dir := t.TempDir()
	st := &e2eState{
		tok:   tok,
		dir:   dir,
		db:    filepath.Join(dir, "state", "kms.db"),
		creds: filepath.Join(dir, "state", "admin-credentials"),
	}
	kmsdEnv(t, st.env())
	return st
}

// env is the KMSD_* environment that selects this state.
func (st *e2eState) env() map[string]string {
	return map[string]string{
		"KMSD_HSM_PIN":          st.tok.PIN,
		"KMSD_HSM_MODULE":       st.tok.ModulePath,
		"KMSD_HSM_TOKEN_LABEL":  st.tok.TokenLabel,
		"KMSD_DATABASE":         st.db,
		"KMSD_CREDENTIALS_FILE": st.creds,
		"KMSD_LOG_LEVEL":        "warn",
	}
}

// e2eServer is one running in-process kmsd with an SDK client on it.
type e2eServer struct {
	*server
	st      *e2eState
	account string
	log     *responseLog
	client  *awskms.Client
	stopped bool
}

// start runs kmsd (run(), the real HTTP server) on 127.0.0.1:0 and returns
// it with a client built from the bootstrap credentials file. The server is
// stopped at the end of the test unless the test stops it first.
func (st *e2eState) start(t *testing.T, extraArgs ...string) *e2eServer {
	t.Helper()
	s := startKMSD(t, extraArgs...)
	es := &e2eServer{server: s, st: st, log: &responseLog{}}
	t.Cleanup(func() {
		if !es.stopped {
			s.cancel()
			select {
			case <-s.done:
			case <-time.After(30 * time.Second):
			}
		}
	})
	m := accountLine.FindStringSubmatch(s.stdout.String())
	if m == nil {
		t.Fatalf("stdout names no account:\n%s", s.stdout)
	}
	es.account = m[1]
	es.client = newSDKClient(t, st.creds, s.addr, e2eRegion, es.log)
	return es
}

// stop stops kmsd as SIGTERM would and expects a clean exit.
func (s *e2eServer) stop(t *testing.T) {
	t.Helper()
	s.stopped = true
	s.server.stop(t)
}

// keyARN and aliasARN are what AWS calls a key and an alias of this server's
// account in us-east-1.
func (s *e2eServer) keyARN(keyID string) string {
	return "arn:aws:kms:" + e2eRegion + ":" + s.account + ":key/" + keyID
}

func (s *e2eServer) aliasARN(name string) string {
	return "arn:aws:kms:" + e2eRegion + ":" + s.account + ":" + name
}

// newSDKClient builds the official SDK client the way a user would: shared
// credentials file, region, BaseEndpoint. Retries are off so each call is one
// HTTP exchange, and every response is recorded in log (when non-nil).
func newSDKClient(t *testing.T, credsFile, addr, region string, log *responseLog) *awskms.Client {
	t.Helper()
	cfg, err := awsconfig.LoadDefaultConfig(t.Context(),
		awsconfig.WithSharedCredentialsFiles([]string{credsFile}),
		awsconfig.WithSharedConfigFiles([]string{}),
		awsconfig.WithRegion(region))
	if err != nil {
		t.Fatal(err)
	}
	return awskms.NewFromConfig(cfg, func(o *awskms.Options) {
		o.BaseEndpoint = aws.String("http://" + addr)
		o.RetryMaxAttempts = 1
		if log != nil {
			o.APIOptions = append(o.APIOptions, log.middleware)
		}
	})
}

// responseLog records, for every HTTP response the SDK receives, the
// operation, status, request id header and content type.
type responseLog struct {
	mu        sync.Mutex
	responses []loggedResponse
}

type loggedResponse struct {
	operation   string
	status      int
	requestID   string
	contentType string
}

func (l *responseLog) middleware(stack *middleware.Stack) error {
	// After: innermost in the deserialize step, next to the transport, so
	// every attempt's raw response passes here, errors included.
	return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("e2eResponseLog",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleDeserialize(ctx, in)
			if resp, ok := out.RawResponse.(*smithyhttp.Response); ok && resp != nil {
				l.mu.Lock()
				l.responses = append(l.responses, loggedResponse{
					operation:   middleware.GetOperationName(ctx),
					status:      resp.StatusCode,
					requestID:   resp.Header.Get(requestIDName),
					contentType: resp.Header.Get("Content-Type"),
				})
				l.mu.Unlock()
			}
			return out, md, err
		}), middleware.After)
}

func (l *responseLog) snapshot() []loggedResponse {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]loggedResponse(nil), l.responses...)
}

// expectErr asserts that err is the SDK-typed error T (for example
// *types.NotFoundException, or *smithy.GenericAPIError for the unmodeled
// ValidationException and authentication errors) with the AWS error code
// and message (anyMessage: not checked; noMessage: must be empty), sent
// with HTTP 400 and a request id.
func expectErr[T error](t *testing.T, err error, code, message string) {
	t.Helper()
	if err == nil {
		t.Errorf("no error, want %s", code)
		return
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		t.Errorf("error %v is not an API error, want %s", err, code)
		return
	}
	if apiErr.ErrorCode() != code {
		t.Errorf("error code %s (%q), want %s", apiErr.ErrorCode(), apiErr.ErrorMessage(), code)
		return
	}
	if _, ok := errors.AsType[T](err); !ok {
		var want T
		t.Errorf("error %T is not the SDK type %T", apiErr, want)
	}
	if message != anyMessage && apiErr.ErrorMessage() != message {
		t.Errorf("%s message\n got: %q\nwant: %q", code, apiErr.ErrorMessage(), message)
	}
	re, ok := errors.AsType[*awshttp.ResponseError](err)
	if !ok {
		t.Errorf("%s: no *awshttp.ResponseError in %v", code, err)
		return
	}
	if re.HTTPStatusCode() != http.StatusBadRequest {
		t.Errorf("%s: HTTP status %d, want 400", code, re.HTTPStatusCode())
	}
	if !uuidPattern.MatchString(re.ServiceRequestID()) {
		t.Errorf("%s: SDK request id %q, want a UUID", code, re.ServiceRequestID())
	}
}

// validationMsg is AWS's one-violation ValidationException message.
func validationMsg(detail string) string { return "1 validation error detected: " + detail }

// requestIDOf returns the request id the SDK surfaced for a successful call.
func requestIDOf(md middleware.Metadata) string {
	id, _ := awsmiddleware.GetRequestIDMetadata(md)
	return id
}

// within reports whether got is within tol of want.
func within(got, want time.Time, tol time.Duration) bool {
	d := got.Sub(want)
	return d >= -tol && d <= tol
}

// rawResponse is a response to a hand-made request.
type rawResponse struct {
	status    int
	header    http.Header
	errorType string
	message   string
	body      []byte
}

// rawRequest is a KMS request signed (or not) by the test itself.
type rawRequest struct {
	target      string // operation name; "TrentService." is prepended
	body        string
	accessKeyID string
	secret      string
	region      string    // credential scope region
	signingTime time.Time // zero: now
	unsigned    bool
	// authorization, when set, replaces the Authorization header after
	// signing (to send a malformed one).
	authorization func(signed string) string
	// sendBody, when set, is sent instead of the body that was signed.
	sendBody *string
}

// do sends r to the server at addr, signing it with the SDK's SigV4 signer
// as the SDK would (body hashed, no X-Amz-Content-Sha256 header).
func (r rawRequest) do(t *testing.T, addr string) rawResponse {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+addr+"/", strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", amzJSON11)
	req.Header.Set("X-Amz-Target", "TrentService."+r.target)
	if !r.unsigned {
		when := r.signingTime
		if when.IsZero() {
			when = time.Now()
		}
		sum := sha256.Sum256([]byte(r.body))
		creds := aws.Credentials{AccessKeyID: r.accessKeyID, SecretAccessKey: r.secret}
		if err := v4.NewSigner().SignHTTP(t.Context(), creds, req, hex.EncodeToString(sum[:]), "kms", r.region, when); err != nil {
			t.Fatal(err)
		}
	}
	if r.authorization != nil {
		req.Header.Set("Authorization", r.authorization(req.Header.Get("Authorization")))
	}
	if r.sendBody != nil {
		req.Body = io.NopCloser(strings.NewReader(*r.sendBody))
		req.ContentLength = int64(len(*r.sendBody))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := rawResponse{status: resp.StatusCode, header: resp.Header, body: body}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(body, &e); err != nil {
			t.Errorf("error body %q is not JSON: %v", body, err)
		}
		out.errorType, out.message = e.Type, e.Message
	}
	return out
}

// adminClient returns the bootstrap admin's credentials and a KMS client
// signed with them.
func adminClient(t *testing.T, st *e2eState, addr string) (aws.Credentials, *awskms.Client) {
	t.Helper()
	id, secret := adminCredentials(t, st.creds)
	admin := aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}
	return admin, staticKMSClient(addr, credentials.StaticCredentialsProvider{Value: admin})
}

// adminCredentials reads the access key id and secret from the bootstrap
// credentials file.
func adminCredentials(t *testing.T, path string) (id, secret string) {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^aws_access_key_id = (\S+)\naws_secret_access_key = (\S+)$`).FindSubmatch(text)
	if m == nil {
		t.Fatalf("no access key in %s", path)
	}
	return string(m[1]), string(m[2])
}

// flipLastByte returns a copy of b with its last byte changed.
func flipLastByte(b []byte) []byte {
	c := bytes.Clone(b)
	c[len(c)-1] ^= 0x01
	return c
}

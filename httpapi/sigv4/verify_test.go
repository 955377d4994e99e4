package sigv4

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"hsmkms/kms"
)

const (
	testRegion = "us-east-1"
	testKeyID  = "AKIDEXAMPLE"
	testSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
)

// testNow is the server's clock in these tests.
var testNow = time.Date(2026, 11, 26, 16, 19, 20, 0, time.UTC)

// keyMap is an in-memory KeySource.
type keyMap map[string]kms.AccessKey

func (m keyMap) LookupAccessKey(_ context.Context, id string) (kms.AccessKey, error) {
	k, ok := m[id]
	if !ok {
		return kms.AccessKey{}, fmt.Errorf("access key %q: %w", id, kms.ErrStoreNotFound)
	}
	return k, nil
}

var testKeys = keyMap{
	testKeyID:   {ID: testKeyID, Secret: testSecret, AccountID: "111122223333", PrincipalARN: "arn:aws:iam::111122223333:root", Active: true},
	"AKIDOLD01": {ID: "AKIDOLD01", Secret: testSecret, AccountID: "111122223333", PrincipalARN: "arn:aws:iam::111122223333:user/old", Active: false},
}

func testVerifier() *Verifier {
	return &Verifier{Region: testRegion, Service: "kms", Keys: testKeys, Now: func() time.Time { return testNow }}
}

// headerSet is what one SDK adds to a KMS request before signing.
type headerSet struct {
	name          string
	headers       map[string]string
	signLength    bool // the Go SDK signs content-length, botocore does not
	signedHeaders string
}

var sdkHeaderSets = []headerSet{
	{
		name:          "botocore",
		headers:       map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.Encrypt", "User-Agent": "Botocore/1.43.11"},
		signedHeaders: "content-type;host;x-amz-date;x-amz-target",
	},
	{
		name: "aws-sdk-go-v2",
		headers: map[string]string{
			"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.Encrypt",
			"Amz-Sdk-Invocation-Id": "5e1c3a4e-5bd3-4a44-9d1c-2f0b1e7f2a11", "Amz-Sdk-Request": "attempt=1; max=3",
			"User-Agent": "aws-sdk-go-v2/1.48.0",
		},
		signLength:    true,
		signedHeaders: "amz-sdk-invocation-id;amz-sdk-request;content-length;content-type;host;x-amz-date;x-amz-target",
	},
}

type signOpts struct {
	set     headerSet
	body    string
	creds   aws.Credentials
	region  string
	service string
	at      time.Time
	extra   map[string]string // headers added before signing
}

func defaultSignOpts() signOpts {
	return signOpts{
		set:     sdkHeaderSets[1],
		body:    `{"KeyId":"alias/x","Plaintext":"AAEC","EncryptionContext":{"a":"b"}}`,
		creds:   aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret},
		region:  testRegion,
		service: "kms",
		at:      testNow,
	}
}

// signedRequest builds a request as it arrives at the server (Host and
// ContentLength set) and signs it with the AWS SDK's own signer.
func signedRequest(t *testing.T, o signOpts) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8443/", strings.NewReader(o.body))
	for k, v := range o.set.headers {
		r.Header.Set(k, v)
	}
	for k, v := range o.extra {
		r.Header.Set(k, v)
	}
	length := r.ContentLength
	if !o.set.signLength {
		r.ContentLength = 0 // keep the signer from signing content-length
	}
	sum := sha256.Sum256([]byte(o.body))
	if err := v4.NewSigner().SignHTTP(t.Context(), o.creds, r, hex.EncodeToString(sum[:]), o.service, o.region, o.at); err != nil {
		t.Fatal(err)
	}
	r.ContentLength = length
	if o.set.signLength {
		// The transport sends the length it signed.
		r.Header.Set("Content-Length", fmt.Sprint(length))
	}
	return r
}

func TestVerifyAcceptsSDKSignatures(t *testing.T) {
	t.Parallel()
	for _, set := range sdkHeaderSets {
		t.Run(set.name, func(t *testing.T) {
			t.Parallel()
			o := defaultSignOpts()
			o.set = set
			r := signedRequest(t, o)
			res, err := testVerifier().Verify(t.Context(), r, []byte(o.body))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got := strings.Join(res.Authorization.SignedHeaders, ";"); got != set.signedHeaders {
				t.Errorf("signed headers = %q, want %q", got, set.signedHeaders)
			}
			if res.Key.ID != testKeyID {
				t.Errorf("key = %q, want %q", res.Key.ID, testKeyID)
			}
		})
	}
}

func TestVerifyAcceptsWithinSkewAndMatchingContentHash(t *testing.T) {
	t.Parallel()
	for _, skew := range []time.Duration{-14 * time.Minute, 14 * time.Minute} {
		o := defaultSignOpts()
		o.at = testNow.Add(skew)
		if _, err := testVerifier().Verify(t.Context(), signedRequest(t, o), []byte(o.body)); err != nil {
			t.Errorf("skew %v: %v", skew, err)
		}
	}
	o := defaultSignOpts()
	sum := sha256.Sum256([]byte(o.body))
	o.extra = map[string]string{"X-Amz-Content-Sha256": hex.EncodeToString(sum[:])}
	if _, err := testVerifier().Verify(t.Context(), signedRequest(t, o), []byte(o.body)); err != nil {
		t.Errorf("matching X-Amz-Content-Sha256: %v", err)
	}
	// Empty body with no parameters, as for a bare POST.
	o = defaultSignOpts()
	o.body = ""
	if _, err := testVerifier().Verify(t.Context(), signedRequest(t, o), nil); err != nil {
		t.Errorf("empty body: %v", err)
	}
}

func TestVerifyFailures(t *testing.T) {
	t.Parallel()
	const mismatch = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	const badToken = "The security token included in the request is invalid."
	otherBody := `{"KeyId":"alias/y","Plaintext":"AAEC","EncryptionContext":{"a":"b"}}`
	otherSum := sha256.Sum256([]byte(otherBody))

	tests := []struct {
		name     string
		opts     func(*signOpts)
		tamper   func(*http.Request)
		body     string // body the server sees, if not the signed one
		code     kms.Code
		message  string // exact, if set
		prefix   string // message prefix, if set
		keyStore KeySource
	}{
		{name: "tampered body", body: otherBody, code: kms.CodeInvalidSignature, message: mismatch},
		{name: "tampered signed header", tamper: func(r *http.Request) { r.Header.Set("X-Amz-Target", "TrentService.Decrypt") }, code: kms.CodeInvalidSignature, message: mismatch},
		{name: "tampered host", tamper: func(r *http.Request) { r.Host = "127.0.0.1:9999" }, code: kms.CodeInvalidSignature, message: mismatch},
		{name: "tampered method", tamper: func(r *http.Request) { r.Method = http.MethodPut }, code: kms.CodeInvalidSignature, message: mismatch},
		{name: "added query", tamper: func(r *http.Request) { r.URL.RawQuery = "a=b" }, code: kms.CodeInvalidSignature, message: mismatch},
		{name: "signed header removed", tamper: func(r *http.Request) { r.Header.Del("Amz-Sdk-Request") }, code: kms.CodeInvalidSignature, message: mismatch},
		{name: "wrong secret", opts: func(o *signOpts) { o.creds.SecretAccessKey = "not-the-secret" }, code: kms.CodeInvalidSignature, message: mismatch},
		{name: "unknown key", opts: func(o *signOpts) { o.creds.AccessKeyID = "AKIDUNKNOWN" }, code: kms.CodeUnrecognizedClient, message: badToken},
		{name: "inactive key", opts: func(o *signOpts) { o.creds.AccessKeyID = "AKIDOLD01" }, code: kms.CodeUnrecognizedClient, message: badToken},
		{name: "session token", opts: func(o *signOpts) { o.creds.SessionToken = "FwoGZXIvYXdzEXAMPLE" }, code: kms.CodeUnrecognizedClient, message: badToken},
		{name: "missing authorization", tamper: func(r *http.Request) { r.Header.Del("Authorization") }, code: kms.CodeMissingAuthenticationToken, message: "Missing Authentication Token"},
		{name: "two authorization headers", tamper: func(r *http.Request) { r.Header.Add("Authorization", r.Header.Get("Authorization")) }, code: kms.CodeIncompleteSignature},
		{name: "missing date", tamper: func(r *http.Request) { r.Header.Del("X-Amz-Date") }, code: kms.CodeIncompleteSignature,
			message: "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."},
		{name: "malformed date", tamper: func(r *http.Request) { r.Header.Set("X-Amz-Date", "2026-11-26T16:19:20Z") }, code: kms.CodeIncompleteSignature},
		{name: "expired 16 minutes", opts: func(o *signOpts) { o.at = testNow.Add(-16 * time.Minute) }, code: kms.CodeInvalidSignature,
			message: "Signature expired: 20261126T160320Z is now earlier than 20261126T160420Z (20261126T161920Z - 15 min.)"},
		{name: "future 16 minutes", opts: func(o *signOpts) { o.at = testNow.Add(16 * time.Minute) }, code: kms.CodeInvalidSignature,
			message: "Signature not yet current: 20261126T163520Z is still later than 20261126T163420Z (20261126T161920Z + 15 min.)"},
		{name: "wrong region", opts: func(o *signOpts) { o.region = "eu-west-1" }, code: kms.CodeInvalidSignature,
			message: "Credential should be scoped to a valid region, not 'eu-west-1'. "},
		{name: "wrong service", opts: func(o *signOpts) { o.service = "s3" }, code: kms.CodeInvalidSignature,
			message: "Credential should be scoped to correct service: 'kms'. "},
		{name: "scope date mismatch", tamper: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/20261126/", "/20261125/", 1))
		}, code: kms.CodeInvalidSignature,
			message: "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20261125' != '20261126', from '20261126T161920Z'."},
		{name: "content sha256 mismatch", opts: func(o *signOpts) {
			o.extra = map[string]string{"X-Amz-Content-Sha256": hex.EncodeToString(otherSum[:])}
		}, code: kms.CodeInvalidSignature, message: "The provided 'x-amz-content-sha256' header does not match what was computed."},
		{name: "unsigned payload refused", opts: func(o *signOpts) { o.extra = map[string]string{"X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"} },
			code: kms.CodeInvalidSignature},
		{name: "host not signed", tamper: func(r *http.Request) {
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261126/us-east-1/kms/aws4_request, SignedHeaders=x-amz-date, Signature="+strings.Repeat("0", 64))
		}, code: kms.CodeIncompleteSignature, message: "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."},
		{name: "signature of other key", tamper: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a[:len(a)-64]+strings.Repeat("a", 64))
		}, code: kms.CodeInvalidSignature, message: mismatch},
		{name: "store failure is a server fault", keyStore: failingKeys{}, code: kms.CodeInternal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := defaultSignOpts()
			if tc.opts != nil {
				tc.opts(&o)
			}
			r := signedRequest(t, o)
			if tc.tamper != nil {
				tc.tamper(r)
			}
			body := o.body
			if tc.body != "" {
				body = tc.body
			}
			v := testVerifier()
			if tc.keyStore != nil {
				v.Keys = tc.keyStore
			}
			_, err := v.Verify(t.Context(), r, []byte(body))
			assertError(t, err, tc.code, tc.message, tc.prefix)
		})
	}
}

type failingKeys struct{}

func (failingKeys) LookupAccessKey(context.Context, string) (kms.AccessKey, error) {
	return kms.AccessKey{}, errors.New("database is locked")
}

func assertError(t *testing.T, err error, code kms.Code, message, prefix string) {
	t.Helper()
	var e *kms.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want *kms.Error %s", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("code = %s (%q), want %s", e.Code, e.Message, code)
	}
	if message != "" && e.Message != message {
		t.Errorf("message = %q\n      want %q", e.Message, message)
	}
	if prefix != "" && !strings.HasPrefix(e.Message, prefix) {
		t.Errorf("message = %q, want prefix %q", e.Message, prefix)
	}
}

func TestRequestTimeFromDateHeader(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.Header.Set("Date", "Thu, 26 Nov 2026 16:19:20 GMT")
	s, at, err := requestTime(r)
	if err != nil || s != "20261126T161920Z" || !at.Equal(testNow) {
		t.Fatalf("requestTime = %q, %v, %v", s, at, err)
	}
}

func TestCanonicalURI(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]string{
		"":           "/",
		"/":          "/",
		"/a/./b/../": "/a/",
		"//a//b":     "/a/b",
		"/a%20b":     "/a%2520b",
	} {
		r := httptest.NewRequest(http.MethodPost, "http://h/", nil)
		r.URL.Path, r.URL.RawPath = "", ""
		if path != "" {
			r.URL.RawPath = path
			r.URL.Path = strings.ReplaceAll(path, "%20", " ")
		}
		if got := canonicalURI(r.URL); got != want {
			t.Errorf("canonicalURI(%q) = %q, want %q", path, got, want)
		}
	}
}

package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"hsmkms/kms"
)

// TestMalformedRequests: every bad request is a 400 (never a 500) with the
// exact AWS error name and a request id, and none reaches the service.
func TestMalformedRequests(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil)
	oversized := bytes.Repeat([]byte(" "), DefaultMaxBodyBytes+1)
	unknownCreds := aws.Credentials{AccessKeyID: "AKIDUNKNOWN", SecretAccessKey: testSecret}
	wrongSecret := aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: "wrong"}

	tests := []struct {
		name    string
		req     apiRequest
		status  int
		code    kms.Code
		mention string // the message must contain this, if set
	}{
		{name: "not JSON", req: kmsRequest("DescribeKey", "KeyId=1"), code: kms.CodeSerialization},
		{name: "truncated JSON", req: kmsRequest("DescribeKey", `{"KeyId":`), code: kms.CodeSerialization},
		{name: "JSON array", req: kmsRequest("DescribeKey", `[{"KeyId":"k"}]`), code: kms.CodeSerialization},
		{name: "JSON string", req: kmsRequest("DescribeKey", `"k"`), code: kms.CodeSerialization},
		{name: "number for string member", req: kmsRequest("DescribeKey", `{"KeyId": 5}`), code: kms.CodeSerialization, mention: "KeyId"},
		{name: "string for integer member", req: kmsRequest("GenerateRandom", `{"NumberOfBytes":"32"}`), code: kms.CodeSerialization, mention: "NumberOfBytes"},
		{name: "integer out of range", req: kmsRequest("GenerateRandom", `{"NumberOfBytes":4294967296}`), code: kms.CodeSerialization, mention: "NumberOfBytes"},
		{name: "fraction for integer", req: kmsRequest("GenerateRandom", `{"NumberOfBytes":1.5}`), code: kms.CodeSerialization, mention: "NumberOfBytes"},
		{name: "object for list", req: kmsRequest("DescribeKey", `{"GrantTokens":{"a":"b"}}`), code: kms.CodeSerialization, mention: "GrantTokens"},
		{name: "wrong type in nested member", req: kmsRequest("TagResource", `{"KeyId":"k","Tags":[{"TagKey":"a","TagValue":1}]}`), code: kms.CodeSerialization, mention: "Tags[0].TagValue"},
		{name: "number in encryption context", req: kmsRequest("Encrypt", `{"KeyId":"k","Plaintext":"AAEC","EncryptionContext":{"a":1}}`), code: kms.CodeSerialization, mention: "EncryptionContext"},
		{name: "bad base64 in Plaintext", req: kmsRequest("Encrypt", `{"KeyId":"k","Plaintext":"!!!not base64"}`), code: kms.CodeSerialization, mention: "Plaintext"},
		{name: "unpadded base64", req: kmsRequest("Encrypt", `{"KeyId":"k","Plaintext":"AAE"}`), code: kms.CodeSerialization, mention: "Plaintext"},
		{name: "array for blob", req: kmsRequest("Decrypt", `{"CiphertextBlob":[1,2,3]}`), code: kms.CodeSerialization, mention: "CiphertextBlob"},
		{name: "unknown member", req: kmsRequest("DescribeKey", `{"KeyId":"k","Foo":1}`), code: kms.CodeSerialization, mention: "Foo"},
		{name: "member name in wrong case", req: kmsRequest("DescribeKey", `{"keyId":"k"}`), code: kms.CodeSerialization, mention: "keyId"},
		{name: "duplicate member", req: kmsRequest("DescribeKey", `{"KeyId":"a","KeyId":"b"}`), code: kms.CodeSerialization, mention: "KeyId"},
		{name: "trailing data", req: kmsRequest("DescribeKey", `{"KeyId":"k"} {}`), code: kms.CodeSerialization},
		{name: "trailing garbage", req: kmsRequest("DescribeKey", `{"KeyId":"k"}x`), code: kms.CodeSerialization},
		{name: "invalid UTF-8", req: kmsRequest("DescribeKey", "{\"KeyId\":\"\xff\"}"), code: kms.CodeSerialization},
		{name: "oversized body", req: apiRequest{target: "TrentService.Encrypt", contentType: contentType, body: oversized}, code: kms.CodeValidation, mention: "too large"},
		{name: "oversized chunked body", req: apiRequest{target: "TrentService.Encrypt", contentType: contentType, body: oversized, chunked: true}, code: kms.CodeValidation, mention: "too large"},
		{name: "unknown target", req: kmsRequest("DeleteEverything", `{}`), code: kms.CodeUnknownOperation},
		{name: "missing target", req: apiRequest{contentType: contentType, body: []byte(`{}`)}, code: kms.CodeUnknownOperation},
		{name: "wrong target prefix", req: apiRequest{target: "DynamoDB_20120810.ListTables", contentType: contentType, body: []byte(`{}`)}, code: kms.CodeUnknownOperation},
		{name: "target without operation", req: apiRequest{target: "TrentService.", contentType: contentType, body: []byte(`{}`)}, code: kms.CodeUnknownOperation},
		{name: "missing content type", req: apiRequest{target: "TrentService.ListKeys", body: []byte(`{}`)}, code: kms.CodeSerialization, mention: "Content-Type"},
		{name: "wrong content type", req: apiRequest{target: "TrentService.ListKeys", contentType: "text/plain", body: []byte(`{}`)}, code: kms.CodeSerialization, mention: "Content-Type"},
		{name: "JSON 1.0 content type", req: apiRequest{target: "TrentService.ListKeys", contentType: "application/x-amz-json-1.0", body: []byte(`{}`)}, code: kms.CodeSerialization, mention: "Content-Type"},
		{name: "unsigned", req: apiRequest{target: "TrentService.ListKeys", contentType: contentType, body: []byte(`{}`), unsigned: true}, code: kms.CodeMissingAuthenticationToken},
		{name: "unknown access key", req: apiRequest{target: "TrentService.ListKeys", contentType: contentType, body: []byte(`{}`), creds: &unknownCreds}, code: kms.CodeUnrecognizedClient},
		{name: "wrong secret", req: apiRequest{target: "TrentService.ListKeys", contentType: contentType, body: []byte(`{}`), creds: &wrongSecret}, code: kms.CodeInvalidSignature},
		// Paths and methods outside the API are 404s, as the routes say.
		{name: "GET /", req: apiRequest{method: http.MethodGet, unsigned: true}, status: http.StatusNotFound, code: kms.CodeUnknownOperation},
		{name: "PUT /", req: apiRequest{method: http.MethodPut, target: "TrentService.ListKeys", contentType: contentType, body: []byte(`{}`)}, status: http.StatusNotFound, code: kms.CodeUnknownOperation},
		{name: "POST /other", req: apiRequest{path: "/other", target: "TrentService.ListKeys", contentType: contentType, body: []byte(`{}`)}, status: http.StatusNotFound, code: kms.CodeUnknownOperation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			status := tc.status
			if status == 0 {
				status = http.StatusBadRequest
			}
			resp, body := env.do(t, tc.req)
			e := assertAWSError(t, resp, body, status, tc.code)
			if tc.mention != "" && (e.Message == nil || !strings.Contains(*e.Message, tc.mention)) {
				t.Errorf("message %v does not mention %q", e.Message, tc.mention)
			}
		})
	}
}

// recordedCall is what a test operation saw.
type recordedCall struct {
	principal kms.Principal
	input     kms.EncryptInput
}

// TestOperationPath drives test operations through the full stack: the
// principal reaches the operation through the context, the output is
// encoded as AWS JSON, and empty outputs have empty bodies.
func TestOperationPath(t *testing.T) {
	t.Parallel()
	calls := make(chan recordedCall, 1)
	env := newTestEnv(t, func(_ *Config, s *server) {
		s.operations["TestEncrypt"] = op(func(ctx context.Context, in *kms.EncryptInput) (*kms.EncryptOutput, error) {
			p, _ := kms.PrincipalFrom(ctx)
			calls <- recordedCall{principal: p, input: *in}
			return &kms.EncryptOutput{CiphertextBlob: []byte{0, 1, 2}, KeyId: "arn:aws:kms:us-east-1:111122223333:key/k", EncryptionAlgorithm: "SYMMETRIC_DEFAULT"}, nil
		})
		s.operations["TestEmpty"] = op(func(context.Context, *kms.KeyIdInput) (*kms.Empty, error) { return &kms.Empty{}, nil })
	})

	resp, body := env.do(t, kmsRequest("TestEncrypt", `{"KeyId":"alias/x","Plaintext":"AAEC","EncryptionContext":{"a":"b"}}`))
	assertRequestID(t, resp)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != contentType {
		t.Fatalf("status %d, Content-Type %q, body %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	const wantBody = `{"CiphertextBlob":"AAEC","KeyId":"arn:aws:kms:us-east-1:111122223333:key/k","EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}`
	if string(body) != wantBody {
		t.Errorf("body = %s\nwant %s", body, wantBody)
	}
	call := <-calls
	wantPrincipal := kms.Principal{AccountID: testAccount, ARN: testPrincipal, Type: kms.PrincipalAccount, AccessKeyID: testKeyID}
	if !reflect.DeepEqual(call.principal, wantPrincipal) {
		t.Errorf("principal = %+v, want %+v", call.principal, wantPrincipal)
	}
	if *call.input.KeyId != "alias/x" || !bytes.Equal(call.input.Plaintext, []byte{0, 1, 2}) || call.input.EncryptionContext["a"] != "b" {
		t.Errorf("input = %+v", call.input)
	}

	for _, body := range []string{"", "{}", "null", " {} \n"} {
		resp, got := env.do(t, kmsRequest("TestEmpty", body))
		if resp.StatusCode != http.StatusOK || len(got) != 0 {
			t.Errorf("empty output for body %q: status %d, body %q", body, resp.StatusCode, got)
		}
	}
}

func TestErrorMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err     error
		status  int
		code    kms.Code
		message *string // nil: no message member at all
	}{
		{kms.Errorf(kms.CodeNotFound, "Key 'x' does not exist"), 400, kms.CodeNotFound, aws.String("Key 'x' does not exist")},
		{kms.Errorf(kms.CodeThrottling, "slow down"), 400, kms.CodeThrottling, aws.String("slow down")},
		{&kms.Error{Code: kms.CodeInvalidCiphertext}, 400, kms.CodeInvalidCiphertext, nil},
		{kms.Errorf(kms.CodeKeyUnavailable, "unavailable"), 500, kms.CodeKeyUnavailable, aws.String("unavailable")},
		{kms.Errorf(kms.CodeDependencyTimeout, "timeout"), 500, kms.CodeDependencyTimeout, aws.String("timeout")},
		{errors.New("pkcs11: CKR_DEVICE_ERROR at 0xdeadbeef"), 500, kms.CodeInternal, aws.String("The request failed due to an internal error.")},
	}
	for _, tc := range tests {
		t.Run(string(tc.code), func(t *testing.T) {
			t.Parallel()
			env := newTestEnv(t, func(_ *Config, s *server) {
				s.operations["TestFail"] = op(func(context.Context, *kms.KeyIdInput) (*kms.Empty, error) { return nil, tc.err })
			})
			resp, body := env.do(t, kmsRequest("TestFail", `{}`))
			e := assertAWSError(t, resp, body, tc.status, tc.code)
			switch {
			case tc.message == nil && e.Message != nil:
				t.Errorf("message = %q, want none (body %s)", *e.Message, body)
			case tc.message != nil && (e.Message == nil || *e.Message != *tc.message):
				t.Errorf("message = %v, want %q", e.Message, *tc.message)
			}
			if tc.status >= 500 {
				// The cause is logged with the request id, never sent.
				logs := env.logs.String()
				id := resp.Header.Get("x-amzn-RequestId")
				if !strings.Contains(logs, id) || !strings.Contains(logs, tc.err.Error()) {
					t.Errorf("log does not hold the request id and cause:\n%s", logs)
				}
				if tc.code == kms.CodeInternal && strings.Contains(string(body), "deadbeef") {
					t.Errorf("internal cause leaked to the client: %s", body)
				}
			}
		})
	}
}

func TestPanicBecomesInternalError(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, func(_ *Config, s *server) {
		s.operations["TestPanic"] = op(func(context.Context, *kms.KeyIdInput) (*kms.Empty, error) { panic("boom: test panic") })
	})
	resp, body := env.do(t, kmsRequest("TestPanic", `{}`))
	assertAWSError(t, resp, body, http.StatusInternalServerError, kms.CodeInternal)
	id := resp.Header.Get("x-amzn-RequestId")
	line := logLine(t, env.logs.String(), id)
	if line["level"] != "ERROR" || !strings.Contains(line["cause"].(string), "boom: test panic") {
		t.Errorf("log line = %v", line)
	}
	// The server is still serving.
	resp, _ = env.do(t, apiRequest{method: http.MethodGet, path: "/healthz", unsigned: true})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("healthz after panic: %d", resp.StatusCode)
	}
}

// TestAccessLog: one line per request with who and what, and nothing
// secret: no body, plaintext, signature or secret key.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, func(_ *Config, s *server) {
		s.operations["TestEmpty"] = op(func(context.Context, *kms.EncryptInput) (*kms.Empty, error) { return &kms.Empty{}, nil })
	})
	const plaintext = "c2VjcmV0LXBsYWludGV4dA==" // "secret-plaintext"
	resp, _ := env.do(t, kmsRequest("TestEmpty", `{"KeyId":"k","Plaintext":"`+plaintext+`"}`))
	id := resp.Header.Get("x-amzn-RequestId")
	logs := env.logs.String()
	line := logLine(t, logs, id)
	want := map[string]any{
		"operation": "TestEmpty", "status": float64(200), "principal": testPrincipal,
		"access_key_id": testKeyID, "method": "POST", "path": "/",
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("log %s = %v, want %v", k, line[k], v)
		}
	}
	for _, k := range []string{"latency", "remote_addr"} {
		if _, ok := line[k]; !ok {
			t.Errorf("log line lacks %s: %v", k, line)
		}
	}
	for _, secret := range []string{plaintext, "secret-plaintext", testSecret, "Signature=", "AAEC"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains %q:\n%s", secret, logs)
		}
	}
	if n := strings.Count(logs, id); n != 1 {
		t.Errorf("%d log lines for the request, want 1:\n%s", n, logs)
	}
}

// logLine returns the JSON log line of the request with the given id.
func logLine(t *testing.T, logs, id string) map[string]any {
	t.Helper()
	for raw := range strings.SplitSeq(strings.TrimSpace(logs), "\n") {
		var line map[string]any
		if err := json.Unmarshal([]byte(raw), &line); err != nil {
			t.Fatalf("log line %q: %v", raw, err)
		}
		if line["request_id"] == id {
			return line
		}
	}
	t.Fatalf("no log line for request %s in:\n%s", id, logs)
	return nil
}

func TestProbes(t *testing.T) {
	t.Parallel()
	ready := newTestEnv(t, nil)
	notReady := newTestEnv(t, func(cfg *Config, s *server) {
		s.ready = func(context.Context) error { return kms.Errorf(kms.CodeKeyUnavailable, "The HSM is not reachable.") }
	})
	resp, body := ready.do(t, apiRequest{method: http.MethodGet, path: "/healthz", unsigned: true})
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Errorf("healthz: %d %q", resp.StatusCode, body)
	}
	assertRequestID(t, resp)
	resp, body = ready.do(t, apiRequest{method: http.MethodGet, path: "/readyz", unsigned: true})
	if resp.StatusCode != 200 || string(body) != `{"status":"ready"}` {
		t.Errorf("readyz: %d %q", resp.StatusCode, body)
	}
	resp, body = notReady.do(t, apiRequest{method: http.MethodGet, path: "/readyz", unsigned: true})
	if resp.StatusCode != 503 || string(body) != `{"status":"not ready","reason":"The HSM is not reachable."}` {
		t.Errorf("readyz when not ready: %d %q", resp.StatusCode, body)
	}
}

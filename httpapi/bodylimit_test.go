package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"hsmkms/kms"
)

// Bodies are read before authentication, so the default limit is small;
// only the policy operations get the large one, and GET routes read none.
func TestBodyLimits(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil)
	if DefaultMaxBodyBytes > 64<<10 {
		t.Fatalf("DefaultMaxBodyBytes = %d, want at most 64 KiB", DefaultMaxBodyBytes)
	}

	// 64 KiB + 1 on an ordinary operation: refused before any other work,
	// even unsigned.
	big := []byte(`{"KeyId":"k","Plaintext":"` + strings.Repeat("A", 64<<10) + `"}`)
	for _, unsigned := range []bool{false, true} {
		resp, body := env.do(t, apiRequest{target: "TrentService.Encrypt", contentType: contentType, body: big, unsigned: unsigned})
		e := assertAWSError(t, resp, body, 400, kms.CodeValidation)
		if e.Message == nil || !strings.Contains(*e.Message, "too large") {
			t.Errorf("unsigned=%v: message %v", unsigned, e.Message)
		}
	}

	// A policy of 131072 characters (AWS's limit for the Policy member) is
	// not refused for size on CreateKey or PutKeyPolicy.
	policy := `{"Version":"2012-10-17","Statement":[],"Id":"` + strings.Repeat("x", 131072-50) + `"}`
	for _, op := range []string{"PutKeyPolicy", "CreateKey"} {
		req := kmsRequest(op, `{"KeyId":"1234abcd-12ab-34cd-56ef-1234567890ab","PolicyName":"default","Policy":`+quoteJSON(policy)+`}`)
		if op == "CreateKey" {
			req = kmsRequest(op, `{"Policy":`+quoteJSON(policy)+`}`)
		}
		resp, body := env.do(t, req)
		if bytes.Contains(body, []byte("too large")) {
			t.Errorf("%s with a 131072-character policy: %d %s", op, resp.StatusCode, body)
		}
	}
	// ... but even they are bounded.
	huge := []byte(`{"Policy":"` + strings.Repeat("A", PolicyMaxBodyBytes) + `"}`)
	resp, body := env.do(t, apiRequest{target: "TrentService.PutKeyPolicy", contentType: contentType, body: huge, unsigned: true})
	assertAWSError(t, resp, body, 400, kms.CodeValidation)
}

type countingBody struct {
	r    io.Reader
	read atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read.Add(int64(n))
	return n, err
}
func (b *countingBody) Close() error { return nil }

func TestGetRoutesReadNoBody(t *testing.T) {
	t.Parallel()
	s := newServer(Config{
		Service:     newTestService(t),
		Credentials: testCredentials,
		Ready:       func(context.Context) error { return nil },
	})
	h := s.engine()
	for _, path := range []string{"/healthz", "/readyz"} {
		body := &countingBody{r: bytes.NewReader(bytes.Repeat([]byte("x"), 1<<20))}
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Body = body
		req.ContentLength = -1
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
		if n := body.read.Load(); n != 0 {
			t.Errorf("GET %s read %d body bytes", path, n)
		}
	}
}

func quoteJSON(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

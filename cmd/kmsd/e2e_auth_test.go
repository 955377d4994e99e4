package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// AWS's texts for the authentication failures.
const (
	msgInvalidToken     = "The security token included in the request is invalid."
	msgSignatureInvalid = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	msgMissingToken     = "Missing Authentication Token"
	amzDateLayout       = "20060102T150405Z"
)

// testAuthentication checks each SigV4 failure against the running kmsd s,
// through the SDK where a misconfigured client produces it and through
// requests signed here (github.com/aws/aws-sdk-go-v2/aws/signer/v4) where
// only a hand-made request can.
func testAuthentication(t *testing.T, s *e2eServer) {
	id, secret := adminCredentials(t, s.st.creds)
	sdkWith := func(accessKeyID, secret, region string) *awskms.Client {
		return awskms.New(awskms.Options{
			Region:           region,
			BaseEndpoint:     aws.String("http://" + s.addr),
			Credentials:      credentials.NewStaticCredentialsProvider(accessKeyID, secret, ""),
			RetryMaxAttempts: 1,
			APIOptions:       []func(*middleware.Stack) error{s.log.middleware},
		})
	}
	listKeys := func(c *awskms.Client) error {
		_, err := c.ListKeys(t.Context(), &awskms.ListKeysInput{})
		return err
	}

	t.Run("SDK/valid", func(t *testing.T) {
		if err := listKeys(sdkWith(id, secret, e2eRegion)); err != nil {
			t.Fatalf("ListKeys with the admin key from the file: %v", err)
		}
	})
	t.Run("SDK/unknown access key", func(t *testing.T) {
		err := listKeys(sdkWith("AKIAE2EUNKNOWNKEY000", secret, e2eRegion))
		expectErr[*smithy.GenericAPIError](t, err, "UnrecognizedClientException", msgInvalidToken)
	})
	t.Run("SDK/wrong secret", func(t *testing.T) {
		err := listKeys(sdkWith(id, secret+"x", e2eRegion))
		expectErr[*smithy.GenericAPIError](t, err, "InvalidSignatureException", msgSignatureInvalid)
	})
	t.Run("SDK/other region", func(t *testing.T) {
		err := listKeys(sdkWith(id, secret, "us-west-2"))
		expectErr[*smithy.GenericAPIError](t, err, "InvalidSignatureException", anyMessage)
		if err != nil && !strings.Contains(err.Error(), "us-west-2") {
			t.Errorf("the error for a request signed for us-west-2 does not name the region: %v", err)
		}
	})
	t.Run("SDK/session token", func(t *testing.T) {
		c := awskms.New(awskms.Options{
			Region:           e2eRegion,
			BaseEndpoint:     aws.String("http://" + s.addr),
			Credentials:      credentials.NewStaticCredentialsProvider(id, secret, "FwoGZXIvYXdzE-e2e-session-token"),
			RetryMaxAttempts: 1,
		})
		expectErr[*smithy.GenericAPIError](t, listKeys(c), "UnrecognizedClientException", msgInvalidToken)
	})

	// Hand-made requests.
	valid := rawRequest{target: "ListKeys", body: "{}", accessKeyID: id, secret: secret, region: e2eRegion}
	t.Run("raw/valid", func(t *testing.T) {
		r := valid.do(t, s.addr)
		if r.status != http.StatusOK {
			t.Fatalf("signed ListKeys: HTTP %d %s", r.status, r.body)
		}
		checkRawHeaders(t, r)
	})
	t.Run("raw/signed 14 minutes ago", func(t *testing.T) {
		req := valid
		req.signingTime = time.Now().Add(-14 * time.Minute)
		if r := req.do(t, s.addr); r.status != http.StatusOK {
			t.Fatalf("HTTP %d %s", r.status, r.body)
		}
	})

	for _, tc := range []struct {
		name    string
		req     func(rawRequest) rawRequest
		code    string
		message string         // exact, unless pattern is set
		pattern *regexp.Regexp // checked instead of message
	}{
		{
			name: "unknown access key",
			req:  func(r rawRequest) rawRequest { r.accessKeyID = "AKIAE2EUNKNOWNKEY000"; return r },
			code: "UnrecognizedClientException", message: msgInvalidToken,
		},
		{
			name: "wrong secret",
			req:  func(r rawRequest) rawRequest { r.secret = strings.ToUpper(r.secret) + "x"; return r },
			code: "InvalidSignatureException", message: msgSignatureInvalid,
		},
		{
			name: "signed for another region",
			req:  func(r rawRequest) rawRequest { r.region = "eu-central-1"; return r },
			code: "InvalidSignatureException", pattern: regexp.MustCompile(`region.*eu-central-1|eu-central-1.*region`),
		},
		{
			name: "body changed after signing",
			req: func(r rawRequest) rawRequest {
				sent := `{"Limit":2}` // same length: only the payload hash differs
				r.body, r.sendBody = `{"Limit":1}`, &sent
				return r
			},
			code: "InvalidSignatureException", message: msgSignatureInvalid,
		},
		{
			name: "no Authorization header",
			req:  func(r rawRequest) rawRequest { r.unsigned = true; return r },
			code: "MissingAuthenticationTokenException", message: msgMissingToken,
		},
		{
			name: "Authorization without Signature",
			req: func(r rawRequest) rawRequest {
				r.authorization = func(signed string) string {
					i := strings.Index(signed, ", Signature=")
					return signed[:i]
				}
				return r
			},
			code: "IncompleteSignatureException", message: "Authorization header requires 'Signature' parameter.",
		},
		{
			name: "Authorization without Credential",
			req: func(r rawRequest) rawRequest {
				r.authorization = func(signed string) string {
					return regexp.MustCompile(`Credential=[^,]*, `).ReplaceAllString(signed, "")
				}
				return r
			},
			code: "IncompleteSignatureException", message: "Authorization header requires 'Credential' parameter.",
		},
		{
			name: "garbage Authorization",
			req: func(r rawRequest) rawRequest {
				r.authorization = func(string) string { return "AWS4-HMAC-SHA256 garbage" }
				return r
			},
			code: "IncompleteSignatureException", pattern: regexp.MustCompile(`.`),
		},
		{
			name: "signed 20 minutes ago",
			req:  func(r rawRequest) rawRequest { r.signingTime = time.Now().Add(-20 * time.Minute); return r },
			code: "InvalidSignatureException",
			pattern: regexp.MustCompile(`^Signature expired: (\d{8}T\d{6}Z) is now earlier than (\d{8}T\d{6}Z) ` +
				`\((\d{8}T\d{6}Z) - 15 min\.\)$`),
		},
		{
			name: "signed 20 minutes ahead",
			req:  func(r rawRequest) rawRequest { r.signingTime = time.Now().Add(20 * time.Minute); return r },
			code: "InvalidSignatureException",
			pattern: regexp.MustCompile(`^Signature not yet current: (\d{8}T\d{6}Z) is still later than (\d{8}T\d{6}Z) ` +
				`\((\d{8}T\d{6}Z) \+ 15 min\.\)$`),
		},
	} {
		t.Run("raw/"+tc.name, func(t *testing.T) {
			req := tc.req(valid)
			r := req.do(t, s.addr)
			checkRawHeaders(t, r)
			if r.status != http.StatusBadRequest || r.errorType != tc.code {
				t.Fatalf("HTTP %d %s %q, want 400 %s", r.status, r.errorType, r.message, tc.code)
			}
			if tc.pattern == nil {
				if r.message != tc.message {
					t.Errorf("message\n got: %q\nwant: %q", r.message, tc.message)
				}
				return
			}
			m := tc.pattern.FindStringSubmatch(r.message)
			if m == nil {
				t.Fatalf("message %q does not match %s", r.message, tc.pattern)
			}
			if len(m) == 4 { // clock skew: the request time, the bound, the server's now
				checkSkewMessage(t, m[1:], req.signingTime)
			}
		})
	}

}

// checkRawHeaders checks the headers every response carries.
func checkRawHeaders(t *testing.T, r rawResponse) {
	t.Helper()
	if id := r.header.Get(requestIDName); !uuidPattern.MatchString(id) {
		t.Errorf("x-amzn-RequestId %q", id)
	}
	if ct := r.header.Get("Content-Type"); ct != amzJSON11 {
		t.Errorf("Content-Type %q", ct)
	}
}

// checkSkewMessage checks the three times of a clock-skew message: the
// request's X-Amz-Date, the bound (now ∓ 15 min) and the server's now.
func checkSkewMessage(t *testing.T, times []string, signedAt time.Time) {
	t.Helper()
	if want := signedAt.UTC().Format(amzDateLayout); times[0] != want {
		t.Errorf("request time in the message %s, want %s", times[0], want)
	}
	bound, err1 := time.Parse(amzDateLayout, times[1])
	now, err2 := time.Parse(amzDateLayout, times[2])
	if err1 != nil || err2 != nil {
		t.Fatalf("times in the message: %v %v", err1, err2)
	}
	if d := now.Sub(bound); d != 15*time.Minute && d != -15*time.Minute {
		t.Errorf("bound %s is %v from now %s, want 15 min", times[1], d, times[2])
	}
	if !within(now, time.Now(), time.Minute) {
		t.Errorf("server time %s is not now", times[2])
	}
}

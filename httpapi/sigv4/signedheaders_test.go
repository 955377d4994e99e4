package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"hsmkms/kms"
)

type signedHeadersKeys struct{}

func (signedHeadersKeys) LookupAccessKey(_ context.Context, id string) (kms.AccessKey, error) {
	return kms.AccessKey{ID: "AKIDEXAMPLE", Secret: "secret", AccountID: "111122223333", Active: true}, nil
}

func signWith(t *testing.T, body []byte, headers map[string]string) *http.Request {
	t.Helper()
	req, err := http.NewRequest("POST", "http://kms.local/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret"},
		req, hex.EncodeToString(sum[:]), "kms", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	return req
}

// A body signed without X-Amz-Target (and Content-Type) must not be
// accepted under whatever target is added afterwards: DescribeKey's body is
// also a valid DisableKey or ScheduleKeyDeletion body.
func TestVerifyRequiresTargetAndContentTypeSigned(t *testing.T) {
	body := []byte(`{"KeyId":"alias/prod"}`)
	v := &Verifier{Region: "us-east-1", Service: "kms", Keys: signedHeadersKeys{}}
	ctx := context.Background()

	// Signed over host and x-amz-date only, target added later.
	req := signWith(t, body, nil)
	for _, target := range []string{"TrentService.DescribeKey", "TrentService.DisableKey", "TrentService.ScheduleKeyDeletion"} {
		req.Header.Set("X-Amz-Target", target)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		_, err := v.Verify(ctx, req, body)
		if e := kms.AsError(err); err == nil || e.Code != kms.CodeIncompleteSignature {
			t.Errorf("%s with unsigned target: %v, want IncompleteSignatureException", target, err)
		}
	}

	// Target signed, Content-Type added afterwards.
	req = signWith(t, body, map[string]string{"X-Amz-Target": "TrentService.DescribeKey"})
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	_, err := v.Verify(ctx, req, body)
	if e := kms.AsError(err); err == nil || e.Code != kms.CodeIncompleteSignature || e.Message != "'Content-Type' must be a 'SignedHeader' in the AWS Authorization." {
		t.Errorf("unsigned content-type: %v", err)
	}

	// Any other x-amz-* header must be signed too; x-amz-content-sha256 is
	// checked against the body instead.
	req = signWith(t, body, map[string]string{"X-Amz-Target": "TrentService.DescribeKey", "Content-Type": "application/x-amz-json-1.1"})
	req.Header.Set("X-Amz-Security-Token", "token")
	if _, err := v.Verify(ctx, req, body); kms.AsError(err).Code != kms.CodeIncompleteSignature {
		t.Errorf("unsigned security token: %v", err)
	}
	req.Header.Del("X-Amz-Security-Token")
	sum := sha256.Sum256(body)
	req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	if _, err := v.Verify(ctx, req, body); err != nil {
		t.Errorf("unsigned but matching x-amz-content-sha256: %v", err)
	}

	// What the SDKs send: everything signed.
	req = signWith(t, body, map[string]string{"X-Amz-Target": "TrentService.DescribeKey", "Content-Type": "application/x-amz-json-1.1"})
	if _, err := v.Verify(ctx, req, body); err != nil {
		t.Errorf("fully signed request: %v", err)
	}
}

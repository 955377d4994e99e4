package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	kmssdk "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"

	"hsmkms/kms"
)

// responseTap records the last response the handler wrote, so the test can
// compare what the SDK reports with what went over the wire.
type responseTap struct {
	mu     sync.Mutex
	status int
	id     string
	body   []byte
}

func (tap *responseTap) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		tap.mu.Lock()
		tap.status, tap.id, tap.body = rec.Code, rec.Header().Get("x-amzn-RequestId"), rec.Body.Bytes()
		tap.mu.Unlock()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
}

func (tap *responseTap) errorType(t *testing.T) string {
	t.Helper()
	tap.mu.Lock()
	defer tap.mu.Unlock()
	var e awsError
	if err := json.Unmarshal(tap.body, &e); err != nil {
		t.Fatalf("response %q is not an AWS error: %v", tap.body, err)
	}
	return e.Type
}

// startSDKServer serves the real stack, with adjust's changes, and returns
// an official AWS SDK client pointed at it.
func startSDKServer(t *testing.T, accessKeyID string, adjust func(*server)) (*kmssdk.Client, *responseTap) {
	t.Helper()
	s := newServer(Config{Service: newTestService(t), Credentials: testCredentials})
	if adjust != nil {
		adjust(s)
	}
	tap := &responseTap{}
	srv := httptest.NewServer(tap.wrap(s.engine()))
	t.Cleanup(srv.Close)
	client := kmssdk.New(kmssdk.Options{
		Region:           testRegion,
		BaseEndpoint:     aws.String(srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider(accessKeyID, testSecret, ""),
		HTTPClient:       srv.Client(),
		RetryMaxAttempts: 1, // one request per call, so the tap holds its response
	})
	return client, tap
}

// TestSDKReachesService: a signed SDK call passes routing, authentication and
// decoding, reaches the service, and the SDK reports exactly the error code
// and request id the stack wrote. (What the operation answers is the
// service's business; these tests run it without an HSM or a store.)
func TestSDKReachesService(t *testing.T) {
	t.Parallel()
	client, tap := startSDKServer(t, testKeyID, nil)
	_, err := client.DescribeKey(t.Context(), &kmssdk.DescribeKeyInput{KeyId: aws.String("alias/test")})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("DescribeKey error = %v, want an API error", err)
	}
	wrote := tap.errorType(t)
	t.Logf("DescribeKey through the SDK: %s (HTTP %d)", wrote, tap.status)
	if apiErr.ErrorCode() != wrote {
		t.Errorf("SDK error code %q, server wrote %q", apiErr.ErrorCode(), wrote)
	}
	switch kms.Code(wrote) {
	case kms.CodeUnknownOperation, kms.CodeSerialization, kms.CodeMissingAuthenticationToken,
		kms.CodeIncompleteSignature, kms.CodeInvalidSignature, kms.CodeUnrecognizedClient:
		t.Errorf("the request did not reach the service: %s", wrote)
	}
	var respErr *awshttp.ResponseError
	if !errors.As(err, &respErr) || respErr.ServiceRequestID() != tap.id || tap.id == "" {
		t.Errorf("SDK request id %v, server wrote %q", respErr, tap.id)
	}
}

func TestSDKUnknownAccessKey(t *testing.T) {
	t.Parallel()
	client, _ := startSDKServer(t, "AKIDUNKNOWN", nil)
	_, err := client.ListKeys(t.Context(), &kmssdk.ListKeysInput{})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != string(kms.CodeUnrecognizedClient) {
		t.Fatalf("ListKeys error = %v, want UnrecognizedClientException", err)
	}
	if apiErr.ErrorMessage() != "The security token included in the request is invalid." {
		t.Errorf("message = %q", apiErr.ErrorMessage())
	}
}

// TestSDKDecodesResponses: with test operations in place of the service's,
// the SDK accepts our encoding of a result (blobs, strings) and of an empty
// result, and its requests decode strictly on our side.
func TestSDKDecodesResponses(t *testing.T) {
	t.Parallel()
	random := []byte{0xde, 0xad, 0xbe, 0xef, 0, 1}
	enabled := make(chan string, 1)
	client, _ := startSDKServer(t, testKeyID, func(s *server) {
		s.operations["GenerateRandom"] = op(func(_ context.Context, in *kms.GenerateRandomInput) (*kms.GenerateRandomOutput, error) {
			if in.NumberOfBytes == nil || int(*in.NumberOfBytes) != len(random) {
				return nil, kms.Errorf(kms.CodeValidation, "unexpected NumberOfBytes")
			}
			return &kms.GenerateRandomOutput{Plaintext: random}, nil
		})
		s.operations["EnableKey"] = op(func(_ context.Context, in *kms.KeyIdInput) (*kms.Empty, error) {
			enabled <- *in.KeyId
			return &kms.Empty{}, nil
		})
	})
	out, err := client.GenerateRandom(t.Context(), &kmssdk.GenerateRandomInput{NumberOfBytes: aws.Int32(int32(len(random)))})
	if err != nil {
		t.Fatalf("GenerateRandom: %v", err)
	}
	if !bytes.Equal(out.Plaintext, random) {
		t.Errorf("Plaintext = %x, want %x", out.Plaintext, random)
	}
	if _, err := client.EnableKey(t.Context(), &kmssdk.EnableKeyInput{KeyId: aws.String("1234abcd-12ab-34cd-56ef-1234567890ab")}); err != nil {
		t.Fatalf("EnableKey: %v", err)
	}
	if got := <-enabled; got != "1234abcd-12ab-34cd-56ef-1234567890ab" {
		t.Errorf("EnableKey saw KeyId %q", got)
	}
}

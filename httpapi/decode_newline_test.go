package httpapi

import (
	"errors"
	"testing"

	"hsmkms/kms"
)

// TestBlobWithLineBreaksIsRefused: encoding/json's base64 skips CR and LF,
// which would let "AA\nEC" stand for "AAEC"; AWS refuses such input.
func TestBlobWithLineBreaksIsRefused(t *testing.T) {
	for _, body := range []string{`{"Plaintext":"AA\nEC"}`, `{"Plaintext":"AAEC\r\n"}`} {
		_, err := decodeRequest[kms.EncryptInput]([]byte(body))
		var kerr *kms.Error
		if !errors.As(err, &kerr) || kerr.Code != kms.CodeSerialization {
			t.Errorf("%s: err = %v, want SerializationException", body, err)
		}
	}
	if _, err := decodeRequest[kms.EncryptInput]([]byte(`{"Plaintext":"AAEC"}`)); err != nil {
		t.Fatalf("valid blob refused: %v", err)
	}
}

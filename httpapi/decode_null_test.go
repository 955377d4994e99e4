package httpapi

import (
	"testing"

	"hsmkms/kms"
)

// null inside a map or an array is not "absent": encoding/json would turn it
// into "" (an encryption context pair the client never sent) or a zero Tag.
// AWS rejects such bodies with SerializationException.
func TestDecodeRequestRejectsNullElements(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		`{"KeyId":"k","Plaintext":"eA==","EncryptionContext":{"purpose":null}}`,
		`{"KeyId":"k","Plaintext":"eA==","GrantTokens":[null,null]}`,
		`{"KeyId":"k","Plaintext":"eA==","GrantTokens":["t",null]}`,
	} {
		_, err := decodeRequest[kms.EncryptInput]([]byte(body))
		if e := kms.AsError(err); err == nil || e.Code != kms.CodeSerialization {
			t.Errorf("%s: err = %v, want SerializationException", body, err)
		}
	}
	for _, body := range []string{`{"Tags":[null]}`, `{"Tags":[{"TagKey":"k","TagValue":"v"},null]}`} {
		_, err := decodeRequest[kms.CreateKeyInput]([]byte(body))
		if e := kms.AsError(err); err == nil || e.Code != kms.CodeSerialization {
			t.Errorf("%s: err = %v, want SerializationException", body, err)
		}
	}
	// Elements that are present still decode, nested shapes included.
	in, err := decodeRequest[kms.CreateKeyInput]([]byte(`{"Tags":[{"TagKey":"k","TagValue":"v"}]}`))
	if err != nil || len(in.Tags) != 1 || in.Tags[0].TagKey == nil || *in.Tags[0].TagKey != "k" {
		t.Fatalf("tags: %+v %v", in, err)
	}
	enc, err := decodeRequest[kms.EncryptInput]([]byte(`{"EncryptionContext":{"a":"b"},"GrantTokens":["t"]}`))
	if err != nil || enc.EncryptionContext["a"] != "b" || len(enc.GrantTokens) != 1 {
		t.Fatalf("context: %+v %v", enc, err)
	}
	// A bad element is still named.
	_, err = decodeRequest[kms.EncryptInput]([]byte(`{"GrantTokens":[5]}`))
	if e := kms.AsError(err); err == nil || e.Code != kms.CodeSerialization || e.Message != "Member 'GrantTokens[0]' must be a string." {
		t.Fatalf("bad element: %v", err)
	}
}

package httpapi

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"hsmkms/kms"
)

func TestDecodeRequestAbsentMembers(t *testing.T) {
	t.Parallel()
	for _, body := range []string{"", " ", "{}", "null", "\n{ }\n", `{"KeyId":null,"Plaintext":null}`} {
		in, err := decodeRequest[kms.EncryptInput]([]byte(body))
		if err != nil {
			t.Errorf("decode %q: %v", body, err)
			continue
		}
		if !reflect.DeepEqual(*in, kms.EncryptInput{}) {
			t.Errorf("decode %q = %+v, want all members absent", body, *in)
		}
	}
}

func TestDecodeRequestValues(t *testing.T) {
	t.Parallel()
	in, err := decodeRequest[kms.CreateKeyInput]([]byte(`{"Description":"d","MultiRegion":false,"Tags":[{"TagKey":"k","TagValue":""}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if *in.Description != "d" || *in.MultiRegion || len(in.Tags) != 1 || *in.Tags[0].TagKey != "k" || *in.Tags[0].TagValue != "" || in.KeySpec != nil {
		t.Errorf("decoded %+v", in)
	}
}

// decodeRoundTrip decodes data as T; a failure must be a
// SerializationException from the shape check (never the final decode,
// which would mean the two disagree), and a success must survive
// encode-and-decode unchanged.
func decodeRoundTrip[T any](t *testing.T, data []byte) {
	v, err := decodeRequest[T](data)
	if err != nil {
		var e *kms.Error
		if !errors.As(err, &e) || e.Code != kms.CodeSerialization {
			t.Fatalf("%T: error %v is not a SerializationException", v, err)
		}
		if e.Cause != nil {
			t.Fatalf("%T: shape check accepted %q but encoding/json refused it: %v", v, data, e.Cause)
		}
		return
	}
	encoded, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%T: re-encode: %v", v, err)
	}
	again, err := decodeRequest[T](encoded)
	if err != nil {
		t.Fatalf("%T: decode of re-encoded %s: %v", v, encoded, err)
	}
	if !reflect.DeepEqual(v, again) {
		t.Fatalf("%T: round trip changed the value:\n%+v\n%+v", v, v, again)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `null`, `[]`, `"x"`, `5`, `{} {}`, `{"KeyId":"k"}x`,
		`{"KeyId":"alias/x","Plaintext":"AAEC","EncryptionContext":{"a":"b"},"GrantTokens":["t"],"DryRun":true}`,
		`{"KeyId":5}`, `{"Plaintext":"!!!"}`, `{"Plaintext":"AA\r\nEC"}`, `{"keyid":"x"}`, `{"KeyId":"a","KeyId":"b"}`,
		`{"EncryptionContext":{"a":"b","a":"c"}}`, `{"EncryptionContext":{"a":null}}`,
		`{"Tags":[{"TagKey":"k","TagValue":"v"}],"Description":"\u00e9\ud83d\ude00","MultiRegion":false}`,
		`{"NumberOfBytes":32,"KeySpec":"AES_256","Recipient":{"AttestationDocument":"AAEC"}}`,
		`{"NumberOfBytes":1e3}`, `{"NumberOfBytes":-0}`, `{"NumberOfBytes":2147483648}`, `{"Limit":100,"Marker":"m"}`,
		`{"TagKeys":["a",null,"b"]}`, `{"Tags":[null]}`, "{\"KeyId\":\"\xff\"}", `{"KeyId":"k"`, `{"KeyId" "k"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeRoundTrip[kms.EncryptInput](t, data)
		decodeRoundTrip[kms.DecryptInput](t, data)
		decodeRoundTrip[kms.CreateKeyInput](t, data)
		decodeRoundTrip[kms.GenerateDataKeyInput](t, data)
		decodeRoundTrip[kms.UntagResourceInput](t, data)
		decodeRoundTrip[kms.ListKeysInput](t, data)
	})
}

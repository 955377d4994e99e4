package httpapi

import (
	"reflect"
	"strings"
	"testing"

	"hsmkms/kms"
)

// TestAuditFieldsResolve: every allow-listed member exists in its
// operation's request or response type and none is a []byte (blobs hold
// plaintexts, keys, signatures and tokens), and every operation of the API
// has an entry.
func TestAuditFieldsResolve(t *testing.T) {
	types := map[string][2]any{
		"Encrypt":                             {&kms.EncryptInput{}, &kms.EncryptOutput{}},
		"Decrypt":                             {&kms.DecryptInput{}, &kms.DecryptOutput{}},
		"ReEncrypt":                           {&kms.ReEncryptInput{}, &kms.ReEncryptOutput{}},
		"GenerateDataKey":                     {&kms.GenerateDataKeyInput{}, &kms.GenerateDataKeyOutput{}},
		"GenerateDataKeyPair":                 {&kms.GenerateDataKeyPairInput{}, &kms.GenerateDataKeyPairOutput{}},
		"CreateKey":                           {&kms.CreateKeyInput{}, &kms.CreateKeyOutput{}},
		"CreateGrant":                         {&kms.CreateGrantInput{}, &kms.CreateGrantOutput{}},
		"RetireGrant":                         {&kms.RetireGrantInput{}, &kms.Empty{}},
		"Sign":                                {&kms.SignInput{}, &kms.SignOutput{}},
		"Verify":                              {&kms.VerifyInput{}, &kms.VerifyOutput{}},
		"GenerateMac":                         {&kms.GenerateMacInput{}, &kms.GenerateMacOutput{}},
		"VerifyMac":                           {&kms.VerifyMacInput{}, &kms.VerifyMacOutput{}},
		"ImportKeyMaterial":                   {&kms.ImportKeyMaterialInput{}, &kms.ImportKeyMaterialOutput{}},
		"GenerateRandom":                      {&kms.GenerateRandomInput{}, &kms.GenerateRandomOutput{}},
		"GetParametersForImport":              {&kms.GetParametersForImportInput{}, &kms.GetParametersForImportOutput{}},
		adminTargetPrefix + "CreateAccessKey": {&kms.CreateAccessKeyInput{}, &kms.CreateAccessKeyOutput{}},
		"STS.AssumeRole":                      {&kms.AssumeRoleInput{}, &kms.AssumeRoleOutput{}},
	}
	for op, tv := range types {
		f := auditFields[op]
		for i, list := range []fieldList{f.request, f.response} {
			for _, path := range list {
				v, ok := fieldByPath(reflect.ValueOf(tv[i]), path)
				if !ok {
					t.Errorf("%s: %s is not a member of %T", op, path, tv[i])
					continue
				}
				if v.Type() == bytesType {
					t.Errorf("%s: %s is a blob and must not be audited", op, path)
				}
			}
		}
	}
	for op := range operationTable(nil) {
		if _, ok := auditFields[op]; !ok {
			t.Errorf("operation %s has no audit allow-list", op)
		}
	}
	for _, secret := range []string{"Plaintext", "GrantToken", "GrantTokens", "Signature", "Mac", "Message", "SecretAccessKey", "SessionToken", "ImportToken", "EncryptedKeyMaterial", "CiphertextBlob", "PrivateKeyPlaintext"} {
		for op, f := range auditFields {
			for _, p := range append(append(fieldList{}, f.request...), f.response...) {
				if p == secret || strings.HasSuffix(p, "."+secret) {
					t.Errorf("%s lists %s", op, p)
				}
			}
		}
	}
}

// TestRenderFields: allowed members only, lowerCamel names, absent ones
// left out, blobs refused even if listed.
func TestRenderFields(t *testing.T) {
	keyID := "alias/x"
	in := &kms.EncryptInput{KeyId: &keyID, Plaintext: []byte("secret"), EncryptionContext: map[string]string{"a": "b"}, GrantTokens: []string{"tok"}}
	got := renderFields(in, fieldList{"KeyId", "EncryptionContext", "EncryptionAlgorithm", "Plaintext"})
	if len(got) != 2 || got["keyId"] == nil || got["encryptionContext"] == nil {
		t.Errorf("rendered %v", got)
	}
	out := &kms.CreateAccessKeyOutput{AccessKey: kms.AccessKeyInfo{AccessKeyId: "AKIA1", SecretAccessKey: "s3cr3t"}}
	got = renderFields(out, fieldList{"AccessKey.AccessKeyId"})
	if m, _ := got["accessKey"].(map[string]any); len(m) != 1 || m["accessKeyId"] == nil {
		t.Errorf("nested: %v", got)
	}
}

package kms_test

import (
	"testing"

	"hsmkms/kms"
)

// TestDryRunIgnoreCiphertextChecksEverythingElse: a Decrypt or ReEncrypt
// dry run with IGNORE_CIPHERTEXT answers as the real call would except for
// the ciphertext: the source key's authorization (kms:ReEncryptFrom), state,
// usage and algorithm, and the grant tokens. Before, a ReEncrypt dry run
// never looked at SourceKeyId (a caller without kms:ReEncryptFrom, or a
// disabled or signing source, was told it would have succeeded), and a
// Decrypt dry run checked only authorization and state.
func TestDryRunIgnoreCiphertextChecksEverythingElse(t *testing.T) {
	e := newEnv(t, fakeDevice)
	src, dst := e.createKey(t), e.createKey(t)
	signing, err := e.svc.CreateKey(e.ctx, &kms.CreateKeyInput{KeySpec: ptr("ECC_NIST_P256"), KeyUsage: ptr("SIGN_VERIFY")})
	if err != nil {
		t.Fatal(err)
	}
	rsa, err := e.svc.CreateKey(e.ctx, &kms.CreateKeyInput{KeySpec: ptr("RSA_2048"), KeyUsage: ptr("ENCRYPT_DECRYPT")})
	if err != nil {
		t.Fatal(err)
	}
	ignore := []string{"IGNORE_CIPHERTEXT"}
	toOnly := e.identity(t, testAccount, "toonly", allowPolicy(`["kms:ReEncryptTo","kms:Decrypt"]`))
	in := &kms.ReEncryptInput{SourceKeyId: ptr(src.Arn), DestinationKeyId: ptr(dst.Arn), DryRun: ptr(true), DryRunModifiers: ignore}
	_, err = e.svc.ReEncrypt(toOnly, in)
	wantDenied(t, err, "because no identity-based policy allows the kms:ReEncryptFrom action")
	_, err = e.svc.ReEncrypt(e.ctx, in)
	wantCode(t, err, kms.CodeDryRun)

	for _, c := range []struct {
		source string
		code   kms.Code
	}{
		{signing.KeyMetadata.Arn, kms.CodeInvalidKeyUsage},
		{rsa.KeyMetadata.Arn, kms.CodeValidation}, // no SourceEncryptionAlgorithm for an RSA source
	} {
		_, err := e.svc.ReEncrypt(e.ctx, &kms.ReEncryptInput{SourceKeyId: ptr(c.source), DestinationKeyId: ptr(dst.Arn), DryRun: ptr(true), DryRunModifiers: ignore})
		wantCodeIn(t, err, c.code, kms.CodeInvalidKeyUsage)
	}
	if _, err := e.svc.DisableKey(e.ctx, &kms.KeyIdInput{KeyId: ptr(src.KeyId)}); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.ReEncrypt(e.ctx, in)
	wantCode(t, err, kms.CodeDisabled)

	// Decrypt: usage, algorithm and context are checked too.
	for _, c := range []struct {
		in   *kms.DecryptInput
		want kms.Code
	}{
		{&kms.DecryptInput{KeyId: ptr(signing.KeyMetadata.Arn)}, kms.CodeInvalidKeyUsage},
		{&kms.DecryptInput{KeyId: ptr(rsa.KeyMetadata.Arn)}, kms.CodeInvalidKeyUsage},
		{&kms.DecryptInput{KeyId: ptr(rsa.KeyMetadata.Arn), EncryptionAlgorithm: ptr("RSAES_OAEP_SHA_256"), EncryptionContext: map[string]string{"a": "b"}}, kms.CodeValidation},
		{&kms.DecryptInput{KeyId: ptr(dst.Arn), EncryptionAlgorithm: ptr("RSAES_OAEP_SHA_1")}, kms.CodeInvalidKeyUsage},
		{&kms.DecryptInput{GrantTokens: []string{"not-a-grant-token"}}, kms.CodeInvalidGrantToken},
	} {
		c.in.DryRun, c.in.DryRunModifiers = ptr(true), ignore
		_, err := e.svc.Decrypt(e.ctx, c.in)
		wantCodeIn(t, err, c.want)
	}
	_, err = e.svc.Decrypt(e.ctx, &kms.DecryptInput{KeyId: ptr(dst.Arn), DryRun: ptr(true), DryRunModifiers: ignore})
	wantCode(t, err, kms.CodeDryRun)
}

// TestGetPublicKeyChecksGrantTokens: GetPublicKey refuses an invalid grant
// token like every operation that takes them (it ignored them).
func TestGetPublicKeyChecksGrantTokens(t *testing.T) {
	e := newEnv(t, fakeDevice)
	out, err := e.svc.CreateKey(e.ctx, &kms.CreateKeyInput{KeySpec: ptr("ECC_NIST_P256"), KeyUsage: ptr("SIGN_VERIFY")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.GetPublicKey(e.ctx, &kms.GetPublicKeyInput{KeyId: ptr(out.KeyMetadata.KeyId), GrantTokens: []string{"not-a-grant-token"}})
	wantCode(t, err, kms.CodeInvalidGrantToken)
}

// wantCodeIn fails unless err is a *kms.Error with one of the codes.
func wantCodeIn(t *testing.T, err error, codes ...kms.Code) {
	t.Helper()
	var kerr *kms.Error
	if !errorsAs(err, &kerr) {
		t.Fatalf("error = %v, want one of %v", err, codes)
	}
	for _, c := range codes {
		if kerr.Code == c {
			return
		}
	}
	t.Fatalf("error code = %s (%q), want one of %v", kerr.Code, kerr.Message, codes)
}

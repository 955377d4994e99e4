package kms_test

import (
	"slices"
	"testing"
	"time"

	"hsmkms/kms"
)

// TestRevokedGrantTokenStopsWorking: a grant token stands for its grant
// only while the grant exists.
func TestRevokedGrantTokenStopsWorking(t *testing.T) {
	e := newEnv(t, fakeDevice)
	md := e.createKey(t)
	worker := e.identity(t, testAccount, "worker")
	workerARN := "arn:aws:iam::" + testAccount + ":user/worker"
	out, err := e.svc.CreateGrant(e.ctx, &kms.CreateGrantInput{KeyId: ptr(md.KeyId), GranteePrincipal: ptr(workerARN), Operations: []string{"Encrypt", "Decrypt"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RevokeGrant(e.ctx, &kms.RevokeGrantInput{KeyId: ptr(md.KeyId), GrantId: ptr(out.GrantId)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(4 * time.Minute)
	enc, err := e.svc.Encrypt(worker, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("secret"), GrantTokens: []string{out.GrantToken}})
	if err == nil {
		t.Errorf("Encrypt with the token of a revoked grant succeeded")
		dec, err := e.svc.Decrypt(worker, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, GrantTokens: []string{out.GrantToken}})
		if err == nil {
			t.Errorf("Decrypt with the token of a revoked grant returned %q", dec.Plaintext)
		}
	}
}

// TestCrossAccountManagementIsRefused: management operations stay with the
// key's account whatever its policy says, as in AWS.
func TestCrossAccountManagementIsRefused(t *testing.T) {
	e := newEnv(t, fakeDevice)
	md := e.createKey(t)
	other := e.identity(t, otherAccount, "mallory", allowPolicy(`"kms:*"`))
	// Owner shares the key with account B in the usual way but with kms:* (sloppy, yet AWS would
	// still refuse management operations from B).
	pol := `{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + testAccount + `:root"},"Action":"kms:*","Resource":"*"},
	 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + otherAccount + `:root"},"Action":"kms:*","Resource":"*"}]}`
	if _, err := e.svc.PutKeyPolicy(e.ctx, &kms.PutKeyPolicyInput{KeyId: ptr(md.KeyId), Policy: ptr(pol)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.DisableKey(other, &kms.KeyIdInput{KeyId: ptr(md.Arn)}); err == nil {
		t.Errorf("account B disabled account A's key")
	} else {
		wantCode(t, err, kms.CodeNotFound)
	}
	// The cryptographic operations the policy allows still work across accounts.
	if _, err := e.svc.Encrypt(other, &kms.EncryptInput{KeyId: ptr(md.Arn), Plaintext: []byte("x")}); err != nil {
		t.Errorf("cross-account Encrypt: %v", err)
	}
	if _, err := e.svc.DescribeKey(other, &kms.DescribeKeyInput{KeyId: ptr(md.Arn)}); err != nil {
		t.Errorf("cross-account DescribeKey: %v", err)
	}
	takeover := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + otherAccount + `:root"},"Action":"kms:*","Resource":"*"}]}`
	if _, err := e.svc.PutKeyPolicy(other, &kms.PutKeyPolicyInput{KeyId: ptr(md.Arn), Policy: ptr(takeover)}); err == nil {
		t.Errorf("account B replaced account A's key policy")
	}
	if _, err := e.svc.ScheduleKeyDeletion(other, &kms.ScheduleKeyDeletionInput{KeyId: ptr(md.Arn), PendingWindowInDays: ptr(int32(7))}); err == nil {
		t.Errorf("account B scheduled deletion of account A's key")
	}
}

// TestOnlyTheBootstrapAdminActsOnItself: an administrator scoped to the
// bootstrap account must not mint credentials for (or otherwise act on) the
// bootstrap admin, which holds every account.
func TestOnlyTheBootstrapAdminActsOnItself(t *testing.T) {
	e := newEnv(t, fakeDevice)
	if _, err := e.svc.Bootstrap(t.Context()); err != nil {
		t.Fatal(err)
	}
	acct, err := e.store.GetSetting(t.Context(), "default_account_id")
	if err != nil {
		t.Fatal(err)
	}
	helpdesk := e.identity(t, acct, "helpdesk", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kmsadmin:CreateAccessKey","kmsadmin:ListAccessKeys"],"Resource":"arn:aws:iam::`+acct+`:user/*"}]}`)
	_, err = e.svc.AdminCreateAccessKey(helpdesk, &kms.CreateAccessKeyInput{UserName: ptr("admin")})
	wantCode(t, err, kms.CodeAccessDenied)
	// The same permission still works on an ordinary user.
	e.identity(t, acct, "clerk")
	if _, err := e.svc.AdminCreateAccessKey(helpdesk, &kms.CreateAccessKeyInput{UserName: ptr("clerk")}); err != nil {
		t.Fatalf("helpdesk on an ordinary user: %v", err)
	}
}

// TestConditionKeysOfManagementAndReEncrypt: a Deny conditioned on
// kms:ScheduleKeyDeletionPendingWindowInDays, kms:RotationPeriodInDays or
// kms:ReEncryptOnSameKey applies.
func TestConditionKeysOfManagementAndReEncrypt(t *testing.T) {
	e := newEnv(t, fakeDevice)
	md := e.createKey(t)
	pol := `{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + testAccount + `:root"},"Action":"kms:*","Resource":"*"},
	 {"Effect":"Deny","Principal":"*","Action":"kms:ScheduleKeyDeletion","Resource":"*",
	  "Condition":{"NumericLessThan":{"kms:ScheduleKeyDeletionPendingWindowInDays":"30"}}}]}`
	if _, err := e.svc.PutKeyPolicy(e.ctx, &kms.PutKeyPolicyInput{KeyId: ptr(md.KeyId), Policy: ptr(pol)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ScheduleKeyDeletion(e.ctx, &kms.ScheduleKeyDeletionInput{KeyId: ptr(md.KeyId), PendingWindowInDays: ptr(int32(7))}); err == nil {
		t.Errorf("Deny on kms:ScheduleKeyDeletionPendingWindowInDays < 30 did not stop a 7-day deletion")
	}
	md2 := e.createKey(t)
	pol2 := `{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + testAccount + `:root"},"Action":"kms:*","Resource":"*"},
	 {"Effect":"Deny","Principal":"*","Action":"kms:EnableKeyRotation","Resource":"*",
	  "Condition":{"NumericGreaterThan":{"kms:RotationPeriodInDays":"365"}}}]}`
	if _, err := e.svc.PutKeyPolicy(e.ctx, &kms.PutKeyPolicyInput{KeyId: ptr(md2.KeyId), Policy: ptr(pol2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.EnableKeyRotation(e.ctx, &kms.EnableKeyRotationInput{KeyId: ptr(md2.KeyId), RotationPeriodInDays: ptr(int32(2560))}); err == nil {
		t.Errorf("Deny on kms:RotationPeriodInDays > 365 did not stop a 2560-day period")
	}
	md3 := e.createKey(t)
	pol3 := `{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + testAccount + `:root"},"Action":"kms:*","Resource":"*"},
	 {"Effect":"Deny","Principal":"*","Action":"kms:ReEncrypt*","Resource":"*",
	  "Condition":{"Bool":{"kms:ReEncryptOnSameKey":"false"}}}]}`
	if _, err := e.svc.PutKeyPolicy(e.ctx, &kms.PutKeyPolicyInput{KeyId: ptr(md3.KeyId), Policy: ptr(pol3)}); err != nil {
		t.Fatal(err)
	}
	other := e.createKey(t)
	enc, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md3.KeyId), Plaintext: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ReEncrypt(e.ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: ptr(other.KeyId)}); err == nil {
		t.Errorf("Deny on kms:ReEncryptOnSameKey=false did not stop re-encryption to another key")
	}
	// Re-encrypting under the same key (to change the context) is allowed,
	// and so are the 30-day window and a 365-day period.
	if _, err := e.svc.ReEncrypt(e.ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: ptr(md3.KeyId)}); err != nil {
		t.Errorf("ReEncrypt to the same key: %v", err)
	}
	if _, err := e.svc.ScheduleKeyDeletion(e.ctx, &kms.ScheduleKeyDeletionInput{KeyId: ptr(md.KeyId), PendingWindowInDays: ptr(int32(30))}); err != nil {
		t.Errorf("30-day deletion window: %v", err)
	}
	if _, err := e.svc.EnableKeyRotation(e.ctx, &kms.EnableKeyRotationInput{KeyId: ptr(md2.KeyId), RotationPeriodInDays: ptr(int32(365))}); err != nil {
		t.Errorf("365-day rotation period: %v", err)
	}
}

// TestImportConditionKeys: kms:WrappingAlgorithm and kms:ExpirationModel
// reach the policy.
func TestImportConditionKeys(t *testing.T) {
	e := newEnv(t, fakeDevice)
	out, err := e.svc.CreateKey(e.ctx, &kms.CreateKeyInput{Origin: ptr("EXTERNAL")})
	if err != nil {
		t.Fatal(err)
	}
	id := out.KeyMetadata.KeyId
	pol := `{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + testAccount + `:root"},"Action":"kms:*","Resource":"*"},
	 {"Effect":"Deny","Principal":"*","Action":"kms:GetParametersForImport","Resource":"*",
	  "Condition":{"StringEquals":{"kms:WrappingAlgorithm":"RSAES_OAEP_SHA_1"}}},
	 {"Effect":"Deny","Principal":"*","Action":"kms:ImportKeyMaterial","Resource":"*",
	  "Condition":{"StringEquals":{"kms:ExpirationModel":"KEY_MATERIAL_DOES_NOT_EXPIRE"}}}]}`
	if _, err := e.svc.PutKeyPolicy(e.ctx, &kms.PutKeyPolicyInput{KeyId: ptr(id), Policy: ptr(pol)}); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.GetParametersForImport(e.ctx, &kms.GetParametersForImportInput{KeyId: ptr(id), WrappingAlgorithm: ptr("RSAES_OAEP_SHA_1"), WrappingKeySpec: ptr("RSA_2048")})
	wantCode(t, err, kms.CodeAccessDenied)
	_, err = e.svc.ImportKeyMaterial(e.ctx, &kms.ImportKeyMaterialInput{KeyId: ptr(id), ImportToken: []byte("t"), EncryptedKeyMaterial: []byte("m"), ExpirationModel: ptr("KEY_MATERIAL_DOES_NOT_EXPIRE")})
	wantCode(t, err, kms.CodeAccessDenied)
}

// TestReEncryptOnSameKeyAllow: an Allow of kms:ReEncrypt* that requires
// kms:ReEncryptOnSameKey=true lets a key re-encrypt its own ciphertexts
// (to change their context) and nothing else onto it. The destination used
// to be checked once before the source key was known, without the
// condition key, which refused the same-key case too.
func TestReEncryptOnSameKeyAllow(t *testing.T) {
	e := newEnv(t, fakeDevice)
	md := e.createKey(t)
	pol := `{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + testAccount + `:root"},
	  "Action":["kms:Encrypt","kms:Decrypt","kms:DescribeKey","kms:GetKeyPolicy","kms:PutKeyPolicy"],"Resource":"*"},
	 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + testAccount + `:root"},"Action":"kms:ReEncrypt*","Resource":"*",
	  "Condition":{"Bool":{"kms:ReEncryptOnSameKey":"true"}}}]}`
	if _, err := e.svc.PutKeyPolicy(e.ctx, &kms.PutKeyPolicyInput{KeyId: ptr(md.KeyId), Policy: ptr(pol)}); err != nil {
		t.Fatal(err)
	}
	enc, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("x"),
		EncryptionContext: map[string]string{"v": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	re, err := e.svc.ReEncrypt(e.ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: ptr(md.KeyId),
		SourceEncryptionContext: map[string]string{"v": "1"}, DestinationEncryptionContext: map[string]string{"v": "2"}})
	if err != nil {
		t.Fatalf("ReEncrypt onto the same key under an Allow requiring kms:ReEncryptOnSameKey=true: %v", err)
	}
	if dec, err := e.svc.Decrypt(e.ctx, &kms.DecryptInput{CiphertextBlob: re.CiphertextBlob,
		EncryptionContext: map[string]string{"v": "2"}}); err != nil || string(dec.Plaintext) != "x" {
		t.Fatalf("decrypting the re-encrypted blob: %v", err)
	}
	other := e.createKey(t)
	encOther, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(other.KeyId), Plaintext: []byte("y")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.ReEncrypt(e.ctx, &kms.ReEncryptInput{CiphertextBlob: encOther.CiphertextBlob, DestinationKeyId: ptr(md.KeyId)})
	wantCode(t, err, kms.CodeAccessDenied)
	// Naming the source key explicitly decides the same way.
	_, err = e.svc.ReEncrypt(e.ctx, &kms.ReEncryptInput{CiphertextBlob: encOther.CiphertextBlob, SourceKeyId: ptr(other.KeyId), DestinationKeyId: ptr(md.KeyId)})
	wantCode(t, err, kms.CodeAccessDenied)
}

// TestReEncryptOnSameKeyRSASource: kms:ReEncryptOnSameKey is set when the
// source is an RSA key too, so a Deny on it being false stops moving an
// RSA ciphertext to another key (it was never set on that path).
func TestReEncryptOnSameKeyRSASource(t *testing.T) {
	e := newEnv(t, fakeDevice)
	rsaKey := e.createAsymmetric(t, "RSA_2048", "ENCRYPT_DECRYPT")
	pol := `{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + testAccount + `:root"},"Action":"kms:*","Resource":"*"},
	 {"Effect":"Deny","Principal":"*","Action":"kms:ReEncryptFrom","Resource":"*",
	  "Condition":{"Bool":{"kms:ReEncryptOnSameKey":"false"}}}]}`
	if _, err := e.svc.PutKeyPolicy(e.ctx, &kms.PutKeyPolicyInput{KeyId: ptr(rsaKey.KeyId), Policy: ptr(pol)}); err != nil {
		t.Fatal(err)
	}
	enc, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(rsaKey.KeyId), Plaintext: []byte("x"), EncryptionAlgorithm: ptr("RSAES_OAEP_SHA_256")})
	if err != nil {
		t.Fatal(err)
	}
	sym := e.createKey(t)
	_, err = e.svc.ReEncrypt(e.ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceKeyId: ptr(rsaKey.KeyId),
		SourceEncryptionAlgorithm: ptr("RSAES_OAEP_SHA_256"), DestinationKeyId: ptr(sym.KeyId)})
	wantCode(t, err, kms.CodeAccessDenied)
	// Onto the same RSA key the Deny does not apply.
	if _, err := e.svc.ReEncrypt(e.ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceKeyId: ptr(rsaKey.KeyId),
		SourceEncryptionAlgorithm: ptr("RSAES_OAEP_SHA_256"), DestinationKeyId: ptr(rsaKey.KeyId),
		DestinationEncryptionAlgorithm: ptr("RSAES_OAEP_SHA_256")}); err != nil {
		t.Fatalf("ReEncrypt onto the same RSA key: %v", err)
	}
}

// TestHMACKeyIdOnDecryptIsIncorrectKey: an HMAC key named as Decrypt's
// KeyId or ReEncrypt's SourceKeyId never made the blob, so the answer is
// IncorrectKeyException, as AWS answers (before: InvalidKeyUsageException
// from the asymmetric path).
func TestHMACKeyIdOnDecryptIsIncorrectKey(t *testing.T) {
	e := newEnv(t, fakeDevice)
	sym := e.createKey(t)
	mac := e.createAsymmetric(t, "HMAC_256", "GENERATE_VERIFY_MAC")
	enc, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(sym.KeyId), Plaintext: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, errOf(e.svc.Decrypt(e.ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, KeyId: ptr(mac.Arn)})), kms.CodeIncorrectKey)
	wantCode(t, errOf(e.svc.ReEncrypt(e.ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceKeyId: ptr(mac.Arn),
		DestinationKeyId: ptr(sym.KeyId)})), kms.CodeIncorrectKey)
}

// TestShapeValidatedBeforeTheKey: Encrypt's plaintext and algorithm and a
// data key's length are validated before the key is looked up or
// authorized, as AWS validates a request's shape first (before, a missing
// key or a caller without access hid the ValidationException).
func TestShapeValidatedBeforeTheKey(t *testing.T) {
	e := newEnv(t, fakeDevice)
	absent := ptr("alias/absent")
	wantCode(t, errOf(e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: absent, Plaintext: make([]byte, 4097)})), kms.CodeValidation)
	wantCode(t, errOf(e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: absent})), kms.CodeValidation)
	wantCode(t, errOf(e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: absent, Plaintext: []byte("x"), EncryptionAlgorithm: ptr("AES_GCM")})), kms.CodeValidation)
	wantCode(t, errOf(e.svc.GenerateDataKey(e.ctx, &kms.GenerateDataKeyInput{KeyId: absent, NumberOfBytes: ptr(int32(0))})), kms.CodeValidation)
	wantCode(t, errOf(e.svc.GenerateDataKeyWithoutPlaintext(e.ctx, &kms.GenerateDataKeyInput{KeyId: absent, KeySpec: ptr("AES_512")})), kms.CodeValidation)
	// A well-formed request still reaches the key.
	wantCode(t, errOf(e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: absent, Plaintext: []byte("x")})), kms.CodeNotFound)
}

// TestKeysPerAccountQuota: CreateKey answers LimitExceededException once
// the account holds the quota's worth of keys (AWS: 100,000 per account and
// Region, every key state counting, pending deletion included); before,
// nothing bounded the keys, each a token object in the HSM.
func TestKeysPerAccountQuota(t *testing.T) {
	defer kms.SetMaxKeysPerAccount(2)()
	e := newEnv(t, fakeDevice)
	first := e.createKey(t)
	e.createKey(t)
	wantCode(t, errOf(e.svc.CreateKey(e.ctx, &kms.CreateKeyInput{})), kms.CodeLimitExceeded)
	wantCode(t, errOf(e.svc.CreateKey(e.ctx, &kms.CreateKeyInput{Origin: ptr("EXTERNAL")})), kms.CodeLimitExceeded)
	if _, err := e.svc.ScheduleKeyDeletion(e.ctx, &kms.ScheduleKeyDeletionInput{KeyId: ptr(first.KeyId), PendingWindowInDays: ptr(int32(7))}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, errOf(e.svc.CreateKey(e.ctx, &kms.CreateKeyInput{})), kms.CodeLimitExceeded)
	// Another account has its own quota.
	if _, err := e.svc.CreateKey(rootOf(t, "210987654321"), &kms.CreateKeyInput{}); err != nil {
		t.Fatalf("another account's first key: %v", err)
	}
}

// TestGrantOperationsAreASet: repeated operations in CreateGrant are
// stored once; before, a grant could carry thousands of copies, walked by
// every later grant check and cache reload.
func TestGrantOperationsAreASet(t *testing.T) {
	e := newEnv(t, fakeDevice)
	md := e.createKey(t)
	ops := []string{"Encrypt", "Encrypt", "Decrypt"}
	for range 1000 {
		ops = append(ops, "Encrypt")
	}
	if _, err := e.svc.CreateGrant(e.ctx, &kms.CreateGrantInput{KeyId: ptr(md.KeyId), GranteePrincipal: ptr("arn:aws:iam::" + testAccount + ":root"), Operations: ops}); err != nil {
		t.Fatal(err)
	}
	out, err := e.svc.ListGrants(e.ctx, &kms.ListGrantsInput{KeyId: ptr(md.KeyId)})
	if err != nil || len(out.Grants) != 1 || !slices.Equal(out.Grants[0].Operations, []string{"Encrypt", "Decrypt"}) {
		t.Fatalf("grants %+v, %v", out, err)
	}
}

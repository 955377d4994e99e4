package kms_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"hsmkms/kms"
)

// runSuite runs the operation tests against one kind of device. The same
// suite runs against the fake and against SoftHSM2.
func runSuite(t *testing.T, newDevice deviceFactory) {
	t.Run("CreateDescribeList", func(t *testing.T) { testCreateDescribeList(t, newDevice) })
	t.Run("EncryptDecrypt", func(t *testing.T) { testEncryptDecrypt(t, newDevice) })
	t.Run("KeyStates", func(t *testing.T) { testKeyStates(t, newDevice) })
	t.Run("ReEncrypt", func(t *testing.T) { testReEncrypt(t, newDevice) })
	t.Run("DataKeysAndRandom", func(t *testing.T) { testDataKeysAndRandom(t, newDevice) })
	t.Run("Aliases", func(t *testing.T) { testAliases(t, newDevice) })
	t.Run("Tags", func(t *testing.T) { testTags(t, newDevice) })
	t.Run("Deletion", func(t *testing.T) { testDeletion(t, newDevice) })
	t.Run("NonceBound", func(t *testing.T) { testNonceBound(t, newDevice) })
}

func TestServiceWithFakeDevice(t *testing.T) { runSuite(t, fakeDevice) }

func testCreateDescribeList(t *testing.T, newDevice deviceFactory) {
	e := newEnv(t, newDevice)
	md := e.createKey(t)
	if md.KeyState != "Enabled" || !md.Enabled || md.KeySpec != "SYMMETRIC_DEFAULT" || md.KeyUsage != "ENCRYPT_DECRYPT" ||
		md.Origin != "AWS_KMS" || md.KeyManager != "CUSTOMER" || md.AWSAccountId != testAccount || md.Description != "test key" {
		t.Fatalf("unexpected metadata %+v", md)
	}
	if want := "arn:aws:kms:us-east-1:" + testAccount + ":key/" + md.KeyId; md.Arn != want {
		t.Fatalf("Arn = %s, want %s", md.Arn, want)
	}
	if len(md.CurrentKeyMaterialId) != 64 || len(md.EncryptionAlgorithms) != 1 || md.EncryptionAlgorithms[0] != "SYMMETRIC_DEFAULT" {
		t.Fatalf("material id / algorithms wrong: %+v", md)
	}
	for _, id := range []string{md.KeyId, md.Arn} {
		out, err := e.svc.DescribeKey(e.ctx, &kms.DescribeKeyInput{KeyId: ptr(id)})
		if err != nil {
			t.Fatalf("DescribeKey(%s): %v", id, err)
		}
		if out.KeyMetadata.KeyId != md.KeyId {
			t.Fatalf("DescribeKey(%s) = %s", id, out.KeyMetadata.KeyId)
		}
	}
	_, err := e.svc.DescribeKey(e.ctx, &kms.DescribeKeyInput{KeyId: ptr("arn:aws:kms:eu-west-1:" + testAccount + ":key/" + md.KeyId)})
	if kerr := wantCode(t, err, kms.CodeNotFound); kerr.Message != "Invalid arn eu-west-1" {
		t.Fatalf("message %q", kerr.Message)
	}
	_, err = e.svc.DescribeKey(e.ctx, &kms.DescribeKeyInput{KeyId: ptr("00000000-0000-4000-8000-000000000000")})
	if kerr := wantCode(t, err, kms.CodeNotFound); !strings.Contains(kerr.Message, "arn:aws:kms:us-east-1:"+testAccount+":key/00000000-0000-4000-8000-000000000000") {
		t.Fatalf("message %q", kerr.Message)
	}
	wantCode(t, errOf(e.svc.DescribeKey(e.ctx, &kms.DescribeKeyInput{KeyId: ptr("not-a-key")})), kms.CodeNotFound)
	wantCode(t, errOf(e.svc.DescribeKey(e.ctx, &kms.DescribeKeyInput{})), kms.CodeValidation)

	// Other key specs answer clearly until they are built.
	wantCode(t, errOf(e.svc.CreateKey(e.ctx, &kms.CreateKeyInput{KeySpec: ptr("ECC_NIST_EDWARDS25519"), KeyUsage: ptr("SIGN_VERIFY")})), kms.CodeUnsupportedOperation)
	wantCode(t, errOf(e.svc.CreateKey(e.ctx, &kms.CreateKeyInput{KeySpec: ptr("RSA_2048")})), kms.CodeValidation)
	wantCode(t, errOf(e.svc.CreateKey(e.ctx, &kms.CreateKeyInput{KeySpec: ptr("AES_999")})), kms.CodeValidation)
	wantCode(t, errOf(e.svc.CreateKey(e.ctx, &kms.CreateKeyInput{KeyUsage: ptr("SIGN_VERIFY")})), kms.CodeValidation)
	wantCode(t, errOf(e.svc.CreateKey(e.ctx, &kms.CreateKeyInput{Description: ptr(strings.Repeat("d", 8193))})), kms.CodeValidation)

	// Pagination: 7 keys in all, pages of 3.
	for range 6 {
		e.createKey(t)
	}
	seen := map[string]bool{}
	var marker *string
	pages := 0
	for {
		out, err := e.svc.ListKeys(e.ctx, &kms.ListKeysInput{Limit: ptr(int32(3)), Marker: marker})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, k := range out.Keys {
			if seen[k.KeyId] {
				t.Fatalf("key %s listed twice", k.KeyId)
			}
			seen[k.KeyId] = true
		}
		if !out.Truncated {
			if out.NextMarker != "" {
				t.Fatal("NextMarker on the last page")
			}
			break
		}
		marker = ptr(out.NextMarker)
	}
	if len(seen) != 7 || pages != 3 {
		t.Fatalf("listed %d keys in %d pages, want 7 in 3", len(seen), pages)
	}
	wantCode(t, errOf(e.svc.ListKeys(e.ctx, &kms.ListKeysInput{Marker: ptr("garbage!")})), kms.CodeInvalidMarker)
	wantCode(t, errOf(e.svc.ListKeys(e.ctx, &kms.ListKeysInput{Limit: ptr(int32(1001))})), kms.CodeValidation)

	if _, err := e.svc.UpdateKeyDescription(e.ctx, &kms.UpdateKeyDescriptionInput{KeyId: ptr(md.KeyId), Description: ptr("")}); err != nil {
		t.Fatal(err)
	}
	out, _ := e.svc.DescribeKey(e.ctx, &kms.DescribeKeyInput{KeyId: ptr(md.KeyId)})
	if out.KeyMetadata.Description != "" {
		t.Fatalf("description not updated: %q", out.KeyMetadata.Description)
	}
}

func errOf[T any](_ T, err error) error { return err }

func testEncryptDecrypt(t *testing.T, newDevice deviceFactory) {
	e := newEnv(t, newDevice)
	md := e.createKey(t)
	other := e.createKey(t)
	ec := map[string]string{"purpose": "test", "tenant": "a"}
	for _, size := range []int{1, 32, 4096} {
		plaintext := bytes.Repeat([]byte{byte(size)}, size)
		enc, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: plaintext, EncryptionContext: ec})
		if err != nil {
			t.Fatalf("Encrypt %d bytes: %v", size, err)
		}
		if enc.KeyId != md.Arn || enc.EncryptionAlgorithm != "SYMMETRIC_DEFAULT" {
			t.Fatalf("Encrypt output %+v", enc)
		}
		dec, err := e.svc.Decrypt(e.ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
		if err != nil {
			t.Fatalf("Decrypt %d bytes: %v", size, err)
		}
		if !bytes.Equal(dec.Plaintext, plaintext) || dec.KeyId != md.Arn || dec.KeyMaterialId != md.CurrentKeyMaterialId {
			t.Fatalf("Decrypt output wrong for %d bytes", size)
		}
	}
	enc, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.Arn), Plaintext: []byte("secret"), EncryptionContext: ec})
	if err != nil {
		t.Fatal(err)
	}
	again, _ := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.Arn), Plaintext: []byte("secret"), EncryptionContext: ec})
	if bytes.Equal(enc.CiphertextBlob, again.CiphertextBlob) {
		t.Fatal("two encryptions of the same plaintext are identical: IVs repeat")
	}
	// The context is bound: missing, changed or extra pairs fail.
	for name, bad := range map[string]map[string]string{
		"none":    nil,
		"changed": {"purpose": "test", "tenant": "b"},
		"extra":   {"purpose": "test", "tenant": "a", "x": "y"},
		"case":    {"Purpose": "test", "tenant": "a"},
	} {
		_, err := e.svc.Decrypt(e.ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: bad})
		if kerr := wantCode(t, err, kms.CodeInvalidCiphertext); kerr.Message != "" {
			t.Fatalf("context %s: InvalidCiphertextException carries a message %q", name, kerr.Message)
		}
	}
	// Every byte of the blob is authenticated.
	for i := range enc.CiphertextBlob {
		tampered := bytes.Clone(enc.CiphertextBlob)
		tampered[i] ^= 0x01
		_, err := e.svc.Decrypt(e.ctx, &kms.DecryptInput{CiphertextBlob: tampered, EncryptionContext: ec})
		var kerr *kms.Error
		if err == nil || !errorsAs(err, &kerr) || (kerr.Code != kms.CodeInvalidCiphertext && kerr.Code != kms.CodeAccessDenied) {
			t.Fatalf("tampering byte %d: err = %v", i, err)
		}
	}
	wantCode(t, errOf(e.svc.Decrypt(e.ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob[:20]})), kms.CodeInvalidCiphertext)
	// KeyId on Decrypt must name the blob's key.
	_, err = e.svc.Decrypt(e.ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec, KeyId: ptr(other.KeyId)})
	wantCode(t, err, kms.CodeIncorrectKey)
	if _, err := e.svc.Decrypt(e.ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec, KeyId: ptr(md.Arn)}); err != nil {
		t.Fatalf("Decrypt with the right KeyId: %v", err)
	}
	// Limits and validation.
	wantCode(t, errOf(e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: make([]byte, 4097)})), kms.CodeValidation)
	wantCode(t, errOf(e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte{}})), kms.CodeValidation)
	wantCode(t, errOf(e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId)})), kms.CodeValidation)
	wantCode(t, errOf(e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("x"), EncryptionAlgorithm: ptr("RSAES_OAEP_SHA_256")})), kms.CodeInvalidKeyUsage)
	wantCode(t, errOf(e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("x"), DryRun: ptr(true)})), kms.CodeDryRun)
	wantCode(t, errOf(e.svc.Decrypt(e.ctx, &kms.DecryptInput{CiphertextBlob: make([]byte, 6145)})), kms.CodeValidation)
	// A blob naming a key the caller cannot see is AccessDenied, as in AWS.
	stranger := e.createKey(t)
	blob, _ := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(stranger.KeyId), Plaintext: []byte("x")})
	e.deleteNow(t, stranger.KeyId)
	wantCode(t, errOf(e.svc.Decrypt(e.ctx, &kms.DecryptInput{CiphertextBlob: blob.CiphertextBlob})), kms.CodeAccessDenied)
}

func testKeyStates(t *testing.T, newDevice deviceFactory) {
	e := newEnv(t, newDevice)
	md := e.createKey(t)
	enc, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.DisableKey(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)}); err != nil {
		t.Fatal(err)
	}
	kerr := wantCode(t, errOf(e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("x")})), kms.CodeDisabled)
	if kerr.Message != md.Arn+" is disabled." {
		t.Fatalf("message %q", kerr.Message)
	}
	wantCode(t, errOf(e.svc.Decrypt(e.ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})), kms.CodeDisabled)
	desc, _ := e.svc.DescribeKey(e.ctx, &kms.DescribeKeyInput{KeyId: ptr(md.KeyId)})
	if desc.KeyMetadata.Enabled || desc.KeyMetadata.KeyState != "Disabled" {
		t.Fatalf("after DisableKey: %+v", desc.KeyMetadata)
	}
	if _, err := e.svc.EnableKey(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.Arn)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Decrypt(e.ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}); err != nil {
		t.Fatalf("Decrypt after EnableKey: %v", err)
	}
	// Management operations take key ids and ARNs, not aliases.
	wantCode(t, errOf(e.svc.EnableKey(e.ctx, &kms.KeyIdInput{KeyId: ptr("alias/x")})), kms.CodeNotFound)

	// Deletion window rules.
	for _, days := range []int32{6, 31} {
		wantCode(t, errOf(e.svc.ScheduleKeyDeletion(e.ctx, &kms.ScheduleKeyDeletionInput{KeyId: ptr(md.KeyId), PendingWindowInDays: ptr(days)})), kms.CodeValidation)
	}
	sched, err := e.svc.ScheduleKeyDeletion(e.ctx, &kms.ScheduleKeyDeletionInput{KeyId: ptr(md.KeyId)})
	if err != nil {
		t.Fatal(err)
	}
	if sched.PendingWindowInDays != 30 || sched.KeyState != "PendingDeletion" || sched.KeyId != md.Arn ||
		!sched.DeletionDate.Time().Equal(e.clock.Now().Add(30*24*3600e9)) {
		t.Fatalf("ScheduleKeyDeletion output %+v", sched)
	}
	kerr = wantCode(t, errOf(e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("x")})), kms.CodeInvalidState)
	if kerr.Message != md.Arn+" is pending deletion." {
		t.Fatalf("message %q", kerr.Message)
	}
	wantCode(t, errOf(e.svc.ScheduleKeyDeletion(e.ctx, &kms.ScheduleKeyDeletionInput{KeyId: ptr(md.KeyId)})), kms.CodeInvalidState)
	wantCode(t, errOf(e.svc.EnableKey(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)})), kms.CodeInvalidState)
	wantCode(t, errOf(e.svc.UpdateKeyDescription(e.ctx, &kms.UpdateKeyDescriptionInput{KeyId: ptr(md.KeyId), Description: ptr("x")})), kms.CodeInvalidState)
	desc, _ = e.svc.DescribeKey(e.ctx, &kms.DescribeKeyInput{KeyId: ptr(md.KeyId)})
	if desc.KeyMetadata.DeletionDate == nil || desc.KeyMetadata.KeyState != "PendingDeletion" {
		t.Fatalf("DescribeKey while pending deletion: %+v", desc.KeyMetadata)
	}
	if _, err := e.svc.CancelKeyDeletion(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)}); err != nil {
		t.Fatal(err)
	}
	desc, _ = e.svc.DescribeKey(e.ctx, &kms.DescribeKeyInput{KeyId: ptr(md.KeyId)})
	if desc.KeyMetadata.KeyState != "Disabled" || desc.KeyMetadata.DeletionDate != nil {
		t.Fatalf("after CancelKeyDeletion: %+v", desc.KeyMetadata)
	}
	kerr = wantCode(t, errOf(e.svc.CancelKeyDeletion(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)})), kms.CodeInvalidState)
	if kerr.Message != md.Arn+" is not pending deletion." {
		t.Fatalf("message %q", kerr.Message)
	}
}

func testReEncrypt(t *testing.T, newDevice deviceFactory) {
	e := newEnv(t, newDevice)
	a, b := e.createKey(t), e.createKey(t)
	enc, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(a.KeyId), Plaintext: []byte("move me"), EncryptionContext: map[string]string{"k": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	re, err := e.svc.ReEncrypt(e.ctx, &kms.ReEncryptInput{
		CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: map[string]string{"k": "1"},
		DestinationKeyId: ptr(b.Arn), DestinationEncryptionContext: map[string]string{"k": "2"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if re.SourceKeyId != a.Arn || re.KeyId != b.Arn || re.SourceKeyMaterialId != a.CurrentKeyMaterialId || re.DestinationKeyMaterialId != b.CurrentKeyMaterialId {
		t.Fatalf("ReEncrypt output %+v", re)
	}
	dec, err := e.svc.Decrypt(e.ctx, &kms.DecryptInput{CiphertextBlob: re.CiphertextBlob, EncryptionContext: map[string]string{"k": "2"}})
	if err != nil || string(dec.Plaintext) != "move me" || dec.KeyId != b.Arn {
		t.Fatalf("Decrypt of re-encrypted blob: %v %+v", err, dec)
	}
	// Source context is checked; SourceKeyId must match.
	wantCode(t, errOf(e.svc.ReEncrypt(e.ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: ptr(b.KeyId)})), kms.CodeInvalidCiphertext)
	wantCode(t, errOf(e.svc.ReEncrypt(e.ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: map[string]string{"k": "1"},
		SourceKeyId: ptr(b.KeyId), DestinationKeyId: ptr(b.KeyId)})), kms.CodeIncorrectKey)
	wantCode(t, errOf(e.svc.ReEncrypt(e.ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob})), kms.CodeValidation)
}

func testDataKeysAndRandom(t *testing.T, newDevice deviceFactory) {
	e := newEnv(t, newDevice)
	md := e.createKey(t)
	for _, tc := range []struct {
		spec *string
		n    *int32
		want int
	}{{ptr("AES_256"), nil, 32}, {ptr("AES_128"), nil, 16}, {nil, ptr(int32(1)), 1}, {nil, ptr(int32(1024)), 1024}} {
		out, err := e.svc.GenerateDataKey(e.ctx, &kms.GenerateDataKeyInput{KeyId: ptr(md.KeyId), KeySpec: tc.spec, NumberOfBytes: tc.n, EncryptionContext: map[string]string{"a": "b"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Plaintext) != tc.want || out.KeyId != md.Arn {
			t.Fatalf("GenerateDataKey: %d bytes, KeyId %s", len(out.Plaintext), out.KeyId)
		}
		dec, err := e.svc.Decrypt(e.ctx, &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: map[string]string{"a": "b"}})
		if err != nil || !bytes.Equal(dec.Plaintext, out.Plaintext) {
			t.Fatalf("data key does not decrypt to itself: %v", err)
		}
	}
	for _, in := range []*kms.GenerateDataKeyInput{
		{KeyId: ptr(md.KeyId)},
		{KeyId: ptr(md.KeyId), KeySpec: ptr("AES_256"), NumberOfBytes: ptr(int32(32))},
		{KeyId: ptr(md.KeyId), NumberOfBytes: ptr(int32(0))},
		{KeyId: ptr(md.KeyId), NumberOfBytes: ptr(int32(1025))},
		{KeyId: ptr(md.KeyId), KeySpec: ptr("AES_512")},
	} {
		wantCode(t, errOf(e.svc.GenerateDataKey(e.ctx, in)), kms.CodeValidation)
	}
	wp, err := e.svc.GenerateDataKeyWithoutPlaintext(e.ctx, &kms.GenerateDataKeyInput{KeyId: ptr(md.KeyId), KeySpec: ptr("AES_256")})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := e.svc.Decrypt(e.ctx, &kms.DecryptInput{CiphertextBlob: wp.CiphertextBlob})
	if err != nil || len(dec.Plaintext) != 32 {
		t.Fatalf("GenerateDataKeyWithoutPlaintext blob: %v", err)
	}
	r1, err := e.svc.GenerateRandom(e.ctx, &kms.GenerateRandomInput{NumberOfBytes: ptr(int32(64))})
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := e.svc.GenerateRandom(e.ctx, &kms.GenerateRandomInput{NumberOfBytes: ptr(int32(64))})
	if len(r1.Plaintext) != 64 || bytes.Equal(r1.Plaintext, r2.Plaintext) {
		t.Fatal("GenerateRandom repeated itself or has the wrong length")
	}
	for _, n := range []*int32{nil, ptr(int32(0)), ptr(int32(1025))} {
		wantCode(t, errOf(e.svc.GenerateRandom(e.ctx, &kms.GenerateRandomInput{NumberOfBytes: n})), kms.CodeValidation)
	}
	kerr := wantCode(t, errOf(e.svc.GenerateRandom(e.ctx, &kms.GenerateRandomInput{NumberOfBytes: ptr(int32(0))})), kms.CodeValidation)
	if kerr.Message != "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1" {
		t.Fatalf("message %q", kerr.Message)
	}
}

func testAliases(t *testing.T, newDevice deviceFactory) {
	e := newEnv(t, newDevice)
	a, b := e.createKey(t), e.createKey(t)
	if _, err := e.svc.CreateAlias(e.ctx, &kms.AliasInput{AliasName: ptr("alias/app"), TargetKeyId: ptr(a.KeyId)}); err != nil {
		t.Fatal(err)
	}
	kerr := wantCode(t, errOf(e.svc.CreateAlias(e.ctx, &kms.AliasInput{AliasName: ptr("alias/app"), TargetKeyId: ptr(b.KeyId)})), kms.CodeAlreadyExists)
	if !strings.Contains(kerr.Message, "arn:aws:kms:us-east-1:"+testAccount+":alias/app") {
		t.Fatalf("message %q", kerr.Message)
	}
	wantCode(t, errOf(e.svc.CreateAlias(e.ctx, &kms.AliasInput{AliasName: ptr("app"), TargetKeyId: ptr(a.KeyId)})), kms.CodeValidation)
	wantCode(t, errOf(e.svc.CreateAlias(e.ctx, &kms.AliasInput{AliasName: ptr("alias/aws/s3"), TargetKeyId: ptr(a.KeyId)})), kms.CodeInvalidAliasName)
	wantCode(t, errOf(e.svc.CreateAlias(e.ctx, &kms.AliasInput{AliasName: ptr("alias/bad name"), TargetKeyId: ptr(a.KeyId)})), kms.CodeValidation)
	wantCode(t, errOf(e.svc.CreateAlias(e.ctx, &kms.AliasInput{AliasName: ptr("alias/x"), TargetKeyId: ptr("alias/app")})), kms.CodeNotFound)

	// Every KeyId form works in cryptographic operations.
	aliasARN := "arn:aws:kms:us-east-1:" + testAccount + ":alias/app"
	for _, id := range []string{a.KeyId, a.Arn, "alias/app", aliasARN} {
		enc, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(id), Plaintext: []byte("x")})
		if err != nil {
			t.Fatalf("Encrypt with %s: %v", id, err)
		}
		if enc.KeyId != a.Arn {
			t.Fatalf("Encrypt with %s used %s", id, enc.KeyId)
		}
		if _, err := e.svc.Decrypt(e.ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, KeyId: ptr(id)}); err != nil {
			t.Fatalf("Decrypt with KeyId %s: %v", id, err)
		}
	}
	wantCode(t, errOf(e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr("alias/missing"), Plaintext: []byte("x")})), kms.CodeNotFound)

	if _, err := e.svc.UpdateAlias(e.ctx, &kms.AliasInput{AliasName: ptr("alias/app"), TargetKeyId: ptr(b.Arn)}); err != nil {
		t.Fatal(err)
	}
	enc, _ := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr("alias/app"), Plaintext: []byte("x")})
	if enc.KeyId != b.Arn {
		t.Fatalf("alias not moved: %s", enc.KeyId)
	}
	wantCode(t, errOf(e.svc.UpdateAlias(e.ctx, &kms.AliasInput{AliasName: ptr("alias/none"), TargetKeyId: ptr(b.KeyId)})), kms.CodeNotFound)

	for i := range 4 {
		if _, err := e.svc.CreateAlias(e.ctx, &kms.AliasInput{AliasName: ptr(fmt.Sprintf("alias/extra-%d", i)), TargetKeyId: ptr(a.KeyId)}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := e.svc.ListAliases(e.ctx, &kms.ListAliasesInput{Limit: ptr(int32(2))})
	if err != nil || len(all.Aliases) != 2 || !all.Truncated {
		t.Fatalf("ListAliases page: %v %+v", err, all)
	}
	rest, err := e.svc.ListAliases(e.ctx, &kms.ListAliasesInput{Marker: ptr(all.NextMarker)})
	if err != nil || len(rest.Aliases) != 3 || rest.Truncated {
		t.Fatalf("ListAliases rest: %v %+v", err, rest)
	}
	ofA, err := e.svc.ListAliases(e.ctx, &kms.ListAliasesInput{KeyId: ptr(a.KeyId)})
	if err != nil || len(ofA.Aliases) != 4 {
		t.Fatalf("ListAliases for key: %v %+v", err, ofA)
	}
	for _, al := range ofA.Aliases {
		if al.TargetKeyId != a.KeyId || al.AliasArn != "arn:aws:kms:us-east-1:"+testAccount+":"+al.AliasName || al.CreationDate == nil {
			t.Fatalf("alias entry %+v", al)
		}
	}
	if _, err := e.svc.DeleteAlias(e.ctx, &kms.DeleteAliasInput{AliasName: ptr("alias/app")}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, errOf(e.svc.DeleteAlias(e.ctx, &kms.DeleteAliasInput{AliasName: ptr("alias/app")})), kms.CodeNotFound)
}

func testTags(t *testing.T, newDevice deviceFactory) {
	e := newEnv(t, newDevice)
	md := e.createKey(t)
	tag := func(k, v string) kms.Tag { return kms.Tag{TagKey: ptr(k), TagValue: ptr(v)} }
	if _, err := e.svc.TagResource(e.ctx, &kms.TagResourceInput{KeyId: ptr(md.KeyId), Tags: []kms.Tag{tag("b", "2"), tag("a", "1"), tag("c", "")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.TagResource(e.ctx, &kms.TagResourceInput{KeyId: ptr(md.Arn), Tags: []kms.Tag{tag("a", "one")}}); err != nil {
		t.Fatal(err)
	}
	out, err := e.svc.ListResourceTags(e.ctx, &kms.ListResourceTagsInput{KeyId: ptr(md.KeyId)})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, tg := range out.Tags {
		got = append(got, *tg.TagKey+"="+*tg.TagValue)
	}
	if strings.Join(got, ",") != "a=one,b=2,c=" {
		t.Fatalf("tags %v", got)
	}
	if _, err := e.svc.UntagResource(e.ctx, &kms.UntagResourceInput{KeyId: ptr(md.KeyId), TagKeys: []string{"b", "absent"}}); err != nil {
		t.Fatal(err)
	}
	out, _ = e.svc.ListResourceTags(e.ctx, &kms.ListResourceTagsInput{KeyId: ptr(md.KeyId), Limit: ptr(int32(1))})
	if len(out.Tags) != 1 || !out.Truncated || *out.Tags[0].TagKey != "a" {
		t.Fatalf("paged tags %+v", out)
	}
	out, _ = e.svc.ListResourceTags(e.ctx, &kms.ListResourceTagsInput{KeyId: ptr(md.KeyId), Marker: ptr(out.NextMarker)})
	if len(out.Tags) != 1 || out.Truncated || *out.Tags[0].TagKey != "c" {
		t.Fatalf("second page %+v", out)
	}
	for name, tc := range map[string]struct {
		tags []kms.Tag
		code kms.Code
	}{
		"reserved":  {[]kms.Tag{tag("aws:x", "1")}, kms.CodeTag},
		"duplicate": {[]kms.Tag{tag("d", "1"), tag("d", "2")}, kms.CodeTag},
		"long key":  {[]kms.Tag{tag(strings.Repeat("k", 129), "1")}, kms.CodeValidation},
		"long val":  {[]kms.Tag{tag("k", strings.Repeat("v", 257))}, kms.CodeValidation},
		"empty key": {[]kms.Tag{tag("", "v")}, kms.CodeValidation},
	} {
		t.Run(name, func(t *testing.T) {
			wantCode(t, errOf(e.svc.TagResource(e.ctx, &kms.TagResourceInput{KeyId: ptr(md.KeyId), Tags: tc.tags})), tc.code)
		})
	}
	many := []kms.Tag{}
	for i := range 49 {
		many = append(many, tag(fmt.Sprintf("t%02d", i), "v"))
	}
	// 2 existing + 49 = 51 > 50.
	kerr := wantCode(t, errOf(e.svc.TagResource(e.ctx, &kms.TagResourceInput{KeyId: ptr(md.KeyId), Tags: many})), kms.CodeTag)
	if kerr.Message != "Too many tags" {
		t.Fatalf("message %q", kerr.Message)
	}
}

// deleteNow schedules a key's deletion and runs the deletion worker past its
// window.
func (e *env) deleteNow(t *testing.T, keyID string) {
	t.Helper()
	if _, err := e.svc.ScheduleKeyDeletion(e.ctx, &kms.ScheduleKeyDeletionInput{KeyId: ptr(keyID), PendingWindowInDays: ptr(int32(7))}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(7*24*3600e9 + 1e9)
	if _, err := e.svc.DeleteDueKeys(e.ctx); err != nil {
		t.Fatal(err)
	}
}

func testDeletion(t *testing.T, newDevice deviceFactory) {
	e := newEnv(t, newDevice)
	md := e.createKey(t)
	keep := e.createKey(t)
	if _, err := e.svc.CreateAlias(e.ctx, &kms.AliasInput{AliasName: ptr("alias/doomed"), TargetKeyId: ptr(md.KeyId)}); err != nil {
		t.Fatal(err)
	}
	before, err := e.device.ObjectIDs(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ScheduleKeyDeletion(e.ctx, &kms.ScheduleKeyDeletionInput{KeyId: ptr(md.KeyId), PendingWindowInDays: ptr(int32(7))}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(6 * 24 * 3600e9)
	if n, err := e.svc.DeleteDueKeys(e.ctx); err != nil || n != 0 {
		t.Fatalf("deleted %d keys before the window ended (%v)", n, err)
	}
	e.clock.Advance(24*3600e9 + 1e9)
	if n, err := e.svc.DeleteDueKeys(e.ctx); err != nil || n != 1 {
		t.Fatalf("DeleteDueKeys = %d, %v; want 1", n, err)
	}
	wantCode(t, errOf(e.svc.DescribeKey(e.ctx, &kms.DescribeKeyInput{KeyId: ptr(md.KeyId)})), kms.CodeNotFound)
	wantCode(t, errOf(e.svc.DescribeKey(e.ctx, &kms.DescribeKeyInput{KeyId: ptr("alias/doomed")})), kms.CodeNotFound)
	after, err := e.device.ObjectIDs(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before)-1 {
		t.Fatalf("token objects: %d before, %d after; want one destroyed", len(before), len(after))
	}
	list, _ := e.svc.ListKeys(e.ctx, &kms.ListKeysInput{})
	if len(list.Keys) != 1 || list.Keys[0].KeyId != keep.KeyId {
		t.Fatalf("ListKeys after deletion: %+v", list.Keys)
	}
	if _, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(keep.KeyId), Plaintext: []byte("x")}); err != nil {
		t.Fatalf("the other key broke: %v", err)
	}
}

func testNonceBound(t *testing.T, newDevice deviceFactory) {
	const bound, block = 10, 3
	e := newEnv(t, newDevice, func(c *kms.Config) { c.InvocationBound = bound; c.ReserveBlock = block })
	md := e.createKey(t)
	var blobs [][]byte
	materials := map[string]bool{}
	for i := range 35 {
		enc, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte{byte(i)}})
		if err != nil {
			t.Fatalf("Encrypt %d: %v", i, err)
		}
		blobs = append(blobs, enc.CiphertextBlob)
		dec, err := e.svc.Decrypt(e.ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
		if err != nil {
			t.Fatal(err)
		}
		materials[dec.KeyMaterialId] = true
	}
	versions, err := e.store.ListVersions(e.ctx, md.KeyId)
	if err != nil {
		t.Fatal(err)
	}
	// 35 encryptions at 10 per version need 4 versions; none may pass the bound.
	if len(versions) != 4 || len(materials) != 4 {
		t.Fatalf("%d versions, %d materials; want 4", len(versions), len(materials))
	}
	for _, v := range versions {
		if v.Reserved > bound {
			t.Fatalf("version %d reserved %d invocations, bound %d", v.Version, v.Reserved, bound)
		}
	}
	// Every ciphertext, of every version, still decrypts; the id is unchanged.
	for i, b := range blobs {
		dec, err := e.svc.Decrypt(e.ctx, &kms.DecryptInput{CiphertextBlob: b})
		if err != nil || dec.Plaintext[0] != byte(i) || dec.KeyId != md.Arn {
			t.Fatalf("blob %d after rotations: %v", i, err)
		}
	}
	desc, _ := e.svc.DescribeKey(e.ctx, &kms.DescribeKeyInput{KeyId: ptr(md.KeyId)})
	if desc.KeyMetadata.CurrentKeyMaterialId == md.CurrentKeyMaterialId {
		t.Fatal("CurrentKeyMaterialId did not follow the new version")
	}
}

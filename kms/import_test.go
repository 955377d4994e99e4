package kms_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"testing"
	"time"

	"hsmkms/hsm"
	"hsmkms/kms"
)

func oaepSHA1(t *testing.T, spki, material []byte) []byte {
	t.Helper()
	pub, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		t.Fatal(err)
	}
	out, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub.(*rsa.PublicKey), material, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestImportTokensAndWrappingKeys covers what needs a clock the test
// controls: import tokens expire after 24 hours, expired wrapping keys are
// destroyed, live ones are not orphans, and material expires at ValidTo.
func TestImportTokensAndWrappingKeys(t *testing.T) {
	fake := hsm.NewFake()
	fake.RefuseWrapAlgorithm(hsm.WrapOAEPSHA256)
	e := newEnv(t, func(testing.TB) hsm.Device { return fake })
	ext, err := e.svc.CreateKey(e.ctx, &kms.CreateKeyInput{Origin: ptr("EXTERNAL")})
	if err != nil {
		t.Fatal(err)
	}
	id := ptr(ext.KeyMetadata.KeyId)
	wantCode(t, errOf(e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("x")})), kms.CodeInvalidState)
	get := func(alg string) (*kms.GetParametersForImportOutput, error) {
		return e.svc.GetParametersForImport(e.ctx, &kms.GetParametersForImportInput{KeyId: id, WrappingAlgorithm: ptr(alg), WrappingKeySpec: ptr("RSA_2048")})
	}
	wantCode(t, errOf(get("RSAES_OAEP_SHA_256")), kms.CodeUnsupportedOperation)
	wantCode(t, errOf(get("RSAES_OAEP_SHA_512")), kms.CodeValidation)
	p, err := get("RSAES_OAEP_SHA_1")
	if err != nil {
		t.Fatal(err)
	}
	// A live wrapping key is not an orphan.
	rep, err := e.svc.Reconcile(e.ctx)
	if err != nil || len(rep.OrphanObjects) != 0 {
		t.Fatalf("reconcile: %+v, %v", rep, err)
	}
	material := make([]byte, 32)
	rand.Read(material)
	imp := func(p *kms.GetParametersForImportOutput, validTo time.Time) error {
		_, err := e.svc.ImportKeyMaterial(e.ctx, &kms.ImportKeyMaterialInput{KeyId: id, ImportToken: p.ImportToken,
			EncryptedKeyMaterial: oaepSHA1(t, p.PublicKey, material), ValidTo: ptr(kms.Timestamp(validTo))})
		return err
	}
	// Tampered token: invalid. After 24 hours: expired, and destroyed.
	bad := *p
	bad.ImportToken = append([]byte(nil), p.ImportToken...)
	bad.ImportToken[len(bad.ImportToken)-1] ^= 1
	wantCode(t, imp(&bad, e.clock.Now().Add(time.Hour)), kms.CodeInvalidImportToken)
	e.clock.Advance(24 * time.Hour)
	wantCode(t, imp(p, e.clock.Now().Add(time.Hour)), kms.CodeExpiredImportToken)
	before, _ := fake.ObjectIDs(e.ctx)
	if err := e.svc.ExpireImports(e.ctx); err != nil {
		t.Fatal(err)
	}
	if after, _ := fake.ObjectIDs(e.ctx); len(after) != len(before)-1 {
		t.Fatalf("expired wrapping key not destroyed: %d -> %d objects", len(before), len(after))
	}
	// Material with ValidTo expires there.
	if _, err := get("RSA_AES_KEY_WRAP_SHA_1"); err != nil { // never used: expires
		t.Fatal(err)
	}
	p, _ = get("RSAES_OAEP_SHA_1")
	if err := imp(p, e.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	desc, _ := e.svc.DescribeKey(e.ctx, &kms.DescribeKeyInput{KeyId: id})
	if desc.KeyMetadata.KeyState != "Enabled" || desc.KeyMetadata.ExpirationModel != "KEY_MATERIAL_EXPIRES" ||
		!desc.KeyMetadata.ValidTo.Time().Equal(e.clock.Now().Add(time.Hour)) {
		t.Fatalf("after import: %+v", desc.KeyMetadata)
	}
	enc, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	if err := e.svc.ExpireImports(e.ctx); err != nil {
		t.Fatal(err)
	}
	desc, _ = e.svc.DescribeKey(e.ctx, &kms.DescribeKeyInput{KeyId: id})
	if desc.KeyMetadata.KeyState != "PendingImport" || desc.KeyMetadata.Enabled {
		t.Fatalf("after expiry: %+v", desc.KeyMetadata)
	}
	wantCode(t, errOf(e.svc.Decrypt(e.ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})), kms.CodeInvalidState)
	// The expired RSA-AES parameters' key and the used one are gone; nothing
	// is left for the reconciler.
	e.clock.Advance(24 * time.Hour)
	if err := e.svc.ExpireImports(e.ctx); err != nil {
		t.Fatal(err)
	}
	rep, err = e.svc.Reconcile(e.ctx)
	if err != nil || len(rep.OrphanObjects) != 0 || len(rep.MissingObjects) != 0 || rep.CompletedDestroys != 0 {
		t.Fatalf("reconcile at the end: %+v, %v", rep, err)
	}
	if ids, _ := fake.ObjectIDs(e.ctx); len(ids) != 0 {
		t.Fatalf("%d token objects left", len(ids))
	}
}

package kms_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"hsmkms/kms"
)

// pauseAlreadyImported pauses an ImportKeyMaterial that found the material
// present (a re-import of the same material to change its expiration).
type pauseAlreadyImported struct {
	kms.Store
	armed       bool
	hit, resume chan struct{}
}

func (p *pauseAlreadyImported) BeginImport(ctx context.Context, keyID string, backingID []byte, createdAt time.Time, model string, validTo time.Time) (kms.KeyVersion, error) {
	v, err := p.Store.BeginImport(ctx, keyID, backingID, createdAt, model, validTo)
	if p.armed && errors.Is(err, kms.ErrStoreAlreadyExists) {
		p.armed = false
		close(p.hit)
		<-p.resume
	}
	return v, err
}

// TestReimportRacingExpiryIsNotASuccess: kmsd B re-imports expired material
// to extend it while kmsd A's expiry pass deletes that material. B must not
// answer success for material that is gone (it answered success, and the
// key was PendingImport with nothing in the token); it answers
// KMSInvalidStateException, and importing again works.
func TestReimportRacingExpiryIsNotASuccess(t *testing.T) {
	c, dev, open := newClock(), fakeDevice(t), raceStores(t)
	stA := open()
	stB := &pauseAlreadyImported{Store: open(), hit: make(chan struct{}), resume: make(chan struct{})}
	a, ctxA := svcOn(t, dev, stA, c)
	b, ctxB := svcOn(t, dev, stB, c)
	keyID := newExternalKey(t, a, ctxA)
	material := newMaterial()
	p := importParams(t, a, ctxA, keyID)
	if _, err := a.ImportKeyMaterial(ctxA, &kms.ImportKeyMaterialInput{KeyId: ptr(keyID), ImportToken: p.ImportToken,
		EncryptedKeyMaterial: oaepSHA1(t, p.PublicKey, material), ExpirationModel: ptr("KEY_MATERIAL_EXPIRES"),
		ValidTo: kms.NewTimestamp(c.Now().Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	c.Advance(2 * time.Hour)
	stB.armed = true
	done := make(chan error, 1)
	go func() {
		_, err := importMaterial(t, b, ctxB, keyID, material) // KEY_MATERIAL_DOES_NOT_EXPIRE: extends it
		done <- err
	}()
	<-stB.hit
	if err := a.ExpireImports(ctxA); err != nil {
		t.Fatal(err)
	}
	close(stB.resume)
	err := <-done
	v, _ := stA.GetVersion(t.Context(), keyID, 1)
	k, _ := stA.GetKey(t.Context(), keyID)
	if err == nil {
		t.Fatalf("re-import answered success; version 1 is %s, key %s", v.State, k.State)
	}
	wantCode(t, err, kms.CodeInvalidState)
	if k.State != kms.StatePendingImport {
		t.Fatalf("key is %s after the expiry, want %s", k.State, kms.StatePendingImport)
	}
	if _, err := importMaterial(t, b, ctxB, keyID, material); err != nil {
		t.Fatalf("importing again: %v", err)
	}
	if _, err := b.Encrypt(ctxB, &kms.EncryptInput{KeyId: ptr(keyID), Plaintext: []byte("x")}); err != nil {
		t.Fatalf("Encrypt after importing again: %v", err)
	}
}

package hsm_test

import (
	"context"
	"errors"
	"testing"

	"hsmkms/hsm"
	"hsmkms/hsm/softhsmtest"
)

// A creation retried after a session fault that hit after the object was
// made must not leave two objects with one CKA_ID.
func TestRetriedCreationLeavesOneObject(t *testing.T) {
	d := openDevice(t, softhsmtest.NewToken(t))
	ctx := t.Context()
	id := randBytes(t, hsm.BackingIDSize)
	if err := hsm.CreateWithLostReply(ctx, d, id); err != nil {
		t.Fatal(err)
	}
	if n, err := hsm.CountObjects(ctx, d, id); err != nil || n != 1 {
		t.Fatalf("objects with the id after a retried creation: %d (%v), want 1", n, err)
	}
}

// Two key objects with one id (left by an older version, another process
// or an operator) make the key unavailable, loudly; neither is picked, at
// Open (buildIndex) or on a lookup (lookupKey).
func TestDuplicateIDIsUnavailableNotPicked(t *testing.T) {
	cfg := softhsmtest.NewToken(t)
	cfg.Logger = testLogger(t)
	ctx := t.Context()
	d, err := hsm.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	id := randBytes(t, hsm.BackingIDSize)
	if err := hsm.RawGenerate(ctx, d, id); err != nil { // an object the index does not know
		t.Fatal(err)
	}
	if err := d.GenerateAESKey(ctx, id, "second"); err != nil {
		t.Fatal(err)
	}
	other := newKey(t, d)
	d.Close()

	d2, err := hsm.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	for range 2 { // the index leaves it out; the fallback lookup refuses too
		_, err = d2.EncryptGCM(ctx, id, randBytes(t, hsm.IVSize), []byte("data"), nil)
		if !errors.Is(err, hsm.ErrAmbiguousKey) || !errors.Is(err, hsm.ErrKeyNotFound) {
			t.Fatalf("encrypt under a duplicated id: %v, want ErrAmbiguousKey (a KeyUnavailable error)", err)
		}
	}
	if _, err := d2.EncryptGCM(ctx, other, randBytes(t, hsm.IVSize), []byte("data"), nil); err != nil {
		t.Errorf("another key: %v", err)
	}
}

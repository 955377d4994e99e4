package hsm_test

import (
	"errors"
	"testing"
	"time"

	"hsmkms/hsm"
	"hsmkms/hsm/softhsmtest"
)

// A key whose object is gone must not cost a full C_FindObjects on every
// request: misses are answered from memory and re-checked at most every
// MissRecheckInterval; creating the id forgets the miss at once.
func TestMissingKeyIsNotSearchedPerRequest(t *testing.T) {
	d := openDevice(t, softhsmtest.NewToken(t))
	ctx := t.Context()
	id := newKey(t, d)
	if err := d.Destroy(ctx, id); err != nil { // the object vanished
		t.Fatal(err)
	}
	before := d.FindObjectsCalls()
	for range 50 {
		_, err := d.EncryptGCM(ctx, id, randBytes(t, hsm.IVSize), []byte("x"), nil)
		if !errors.Is(err, hsm.ErrKeyNotFound) {
			t.Fatalf("encrypt under a missing key: %v", err)
		}
	}
	if got := d.FindObjectsCalls() - before; got != 1 {
		t.Errorf("50 requests for a missing key made %d C_FindObjects calls, want 1", got)
	}

	// After the interval, the token is searched again (once).
	restore := hsm.SetMissRecheckInterval(time.Millisecond)
	t.Cleanup(restore)
	gone := randBytes(t, hsm.BackingIDSize)
	_, _ = d.EncryptGCM(ctx, gone, randBytes(t, hsm.IVSize), []byte("x"), nil) // stores a 1 ms miss
	time.Sleep(5 * time.Millisecond)
	before = d.FindObjectsCalls()
	if _, err := d.EncryptGCM(ctx, gone, randBytes(t, hsm.IVSize), []byte("x"), nil); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatal(err)
	}
	if got := d.FindObjectsCalls() - before; got != 1 {
		t.Errorf("after the recheck interval: %d searches, want 1", got)
	}

	// Creating the id makes it usable at once.
	hsm.SetMissRecheckInterval(time.Hour)
	other := randBytes(t, hsm.BackingIDSize)
	if _, err := d.EncryptGCM(ctx, other, randBytes(t, hsm.IVSize), []byte("x"), nil); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatal(err)
	}
	if err := d.GenerateAESKey(ctx, other, "now"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.EncryptGCM(ctx, other, randBytes(t, hsm.IVSize), []byte("x"), nil); err != nil {
		t.Errorf("a key created after a miss: %v", err)
	}
}

package hsm_test

import (
	"errors"
	"testing"

	"hsmkms/hsm"
	"hsmkms/hsm/softhsmtest"
)

// wantHas fails the test unless HasObject(id) answers want.
func wantHas(t *testing.T, dev hsm.Device, id []byte, want bool, what string) {
	t.Helper()
	got, err := dev.HasObject(t.Context(), id)
	if err != nil || got != want {
		t.Fatalf("HasObject(%s) = %v, %v; want %v", what, got, err, want)
	}
}

// HasObject on both devices: present, absent, after Destroy, key pairs, and
// an empty id refused.
func TestHasObject(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) hsm.Device{
		"Fake":    func(*testing.T) hsm.Device { return hsm.NewFake() },
		"SoftHSM": func(t *testing.T) hsm.Device { return openDevice(t, softhsmtest.NewToken(t)) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dev := open(t)
			ctx := t.Context()
			aes := newKey(t, dev)
			wantHas(t, dev, aes, true, "an AES key")
			wantHas(t, dev, randBytes(t, hsm.BackingIDSize), false, "an id never used")

			pair := randBytes(t, hsm.BackingIDSize)
			if _, err := dev.GenerateECKeyPair(ctx, pair, t.Name(), hsm.CurveP256); err != nil {
				t.Fatal(err)
			}
			wantHas(t, dev, pair, true, "a key pair")

			for _, id := range [][]byte{aes, pair} {
				if err := dev.Destroy(ctx, id); err != nil {
					t.Fatal(err)
				}
				wantHas(t, dev, id, false, "a destroyed key")
			}
			if _, err := dev.HasObject(ctx, nil); err == nil {
				t.Fatal("HasObject(empty id) succeeded")
			}
		})
	}
}

// On PKCS#11, HasObject is one targeted search that sees the token as it
// is now, whatever the handle index holds, and leaves the index alone: a key
// another process made is found without being indexed, and one another
// process destroyed is absent although this device's index still maps it.
func TestHasObjectSearchesTheTokenNotTheIndex(t *testing.T) {
	t.Parallel()
	cfg := softhsmtest.NewToken(t)
	a, b := openDevice(t, cfg), openDevice(t, cfg)
	ctx := t.Context()

	mine := newKey(t, a) // indexed by a
	theirs := newKey(t, b)
	indexed := hsm.IndexedKeys(a)
	before := a.FindObjectsCalls()
	wantHas(t, a, theirs, true, "a key another process made")
	if n := a.FindObjectsCalls() - before; n != 1 {
		t.Fatalf("HasObject made %d searches, want 1", n)
	}
	if got := hsm.IndexedKeys(a); got != indexed {
		t.Fatalf("HasObject changed the index: %d keys, want %d", got, indexed)
	}

	if err := b.Destroy(ctx, mine); err != nil {
		t.Fatal(err)
	}
	wantHas(t, a, mine, false, "a key another process destroyed")

	// A closed device answers with its error, not "absent": the settlement
	// would tombstone a version on a false "absent".
	c := openDevice(t, cfg)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.HasObject(ctx, theirs); !errors.Is(err, hsm.ErrClosed) || ok {
		t.Fatalf("HasObject on a closed device = %v, %v; want ErrClosed", ok, err)
	}
}

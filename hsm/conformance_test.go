package hsm_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"testing"

	"hsmkms/hsm"
)

// runConformance is the behaviour every Device must share. newDevice returns
// a device that the suite may use freely (it need not be empty).
func runConformance(t *testing.T, newDevice func(t *testing.T) hsm.Device) {
	dev := newDevice(t)
	ctx := t.Context()

	t.Run("RoundTripWithAAD", func(t *testing.T) {
		id := newKey(t, dev)
		for _, tc := range []struct {
			name           string
			plaintext, aad []byte
		}{
			{"32 bytes with AAD", randBytes(t, 32), []byte("context")},
			{"empty plaintext", nil, []byte("context")},
			{"no AAD", []byte("hello"), nil},
			{"4 KiB", randBytes(t, 4096), randBytes(t, 100)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				iv := randBytes(t, hsm.IVSize)
				ct, err := dev.EncryptGCM(ctx, id, iv, tc.plaintext, tc.aad)
				if err != nil {
					t.Fatal(err)
				}
				if len(ct) != len(tc.plaintext)+hsm.TagSize {
					t.Fatalf("ciphertext is %d bytes, want %d", len(ct), len(tc.plaintext)+hsm.TagSize)
				}
				pt, err := dev.DecryptGCM(ctx, id, iv, ct, tc.aad)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(pt, tc.plaintext) {
					t.Fatal("round trip changed the plaintext")
				}
			})
		}
	})

	t.Run("AuthenticationFailures", func(t *testing.T) {
		id := newKey(t, dev)
		other := newKey(t, dev)
		iv := randBytes(t, hsm.IVSize)
		aad := []byte("aad")
		ct, err := dev.EncryptGCM(ctx, id, iv, []byte("secret message"), aad)
		if err != nil {
			t.Fatal(err)
		}
		flip := func(i int) []byte { c := bytes.Clone(ct); c[i] ^= 1; return c }
		for _, tc := range []struct {
			name    string
			id, iv  []byte
			ct, aad []byte
		}{
			{"tampered ciphertext", id, iv, flip(0), aad},
			{"tampered tag", id, iv, flip(len(ct) - 1), aad},
			{"wrong AAD", id, iv, ct, []byte("aae")},
			{"missing AAD", id, iv, ct, nil},
			{"other IV", id, randBytes(t, hsm.IVSize), ct, aad},
			{"other key", other, iv, ct, aad},
			{"truncated below tag", id, iv, ct[:hsm.TagSize-1], aad},
			{"empty ciphertext", id, iv, nil, aad},
		} {
			t.Run(tc.name, func(t *testing.T) {
				pt, err := dev.DecryptGCM(ctx, tc.id, tc.iv, tc.ct, tc.aad)
				if !errors.Is(err, hsm.ErrAuthFailed) {
					t.Fatalf("err = %v, want ErrAuthFailed", err)
				}
				if pt != nil {
					t.Fatal("plaintext returned with an error")
				}
			})
		}
	})

	t.Run("InvalidIV", func(t *testing.T) {
		id := newKey(t, dev)
		for _, n := range []int{0, 1, 11, 13, 16} {
			iv := make([]byte, n)
			if _, err := dev.EncryptGCM(ctx, id, iv, []byte("x"), nil); !errors.Is(err, hsm.ErrInvalidIV) {
				t.Errorf("EncryptGCM with %d-byte IV: err = %v, want ErrInvalidIV", n, err)
			}
			if _, err := dev.DecryptGCM(ctx, id, iv, make([]byte, 32), nil); !errors.Is(err, hsm.ErrInvalidIV) {
				t.Errorf("DecryptGCM with %d-byte IV: err = %v, want ErrInvalidIV", n, err)
			}
		}
		if _, err := dev.EncryptGCM(ctx, id, nil, []byte("x"), nil); !errors.Is(err, hsm.ErrInvalidIV) {
			t.Errorf("nil IV: err = %v, want ErrInvalidIV", err)
		}
	})

	t.Run("UnknownID", func(t *testing.T) {
		id := randBytes(t, hsm.BackingIDSize)
		iv := randBytes(t, hsm.IVSize)
		if _, err := dev.EncryptGCM(ctx, id, iv, []byte("x"), nil); !errors.Is(err, hsm.ErrKeyNotFound) {
			t.Errorf("EncryptGCM: err = %v, want ErrKeyNotFound", err)
		}
		if _, err := dev.DecryptGCM(ctx, id, iv, make([]byte, 32), nil); !errors.Is(err, hsm.ErrKeyNotFound) {
			t.Errorf("DecryptGCM: err = %v, want ErrKeyNotFound", err)
		}
		if err := dev.Destroy(ctx, id); !errors.Is(err, hsm.ErrKeyNotFound) {
			t.Errorf("Destroy: err = %v, want ErrKeyNotFound", err)
		}
	})

	t.Run("DuplicateAndMalformedID", func(t *testing.T) {
		id := newKey(t, dev)
		if err := dev.GenerateAESKey(ctx, id, "again"); !errors.Is(err, hsm.ErrDuplicateID) {
			t.Errorf("duplicate: err = %v, want ErrDuplicateID", err)
		}
		for _, n := range []int{0, hsm.BackingIDSize - 1, hsm.BackingIDSize + 1} {
			if err := dev.GenerateAESKey(ctx, make([]byte, n), "bad"); err == nil {
				t.Errorf("GenerateAESKey accepted a %d-byte id", n)
			}
		}
	})

	t.Run("DestroyThenUse", func(t *testing.T) {
		id := newKey(t, dev)
		iv := randBytes(t, hsm.IVSize)
		ct, err := dev.EncryptGCM(ctx, id, iv, []byte("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := dev.Destroy(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := dev.EncryptGCM(ctx, id, iv, []byte("x"), nil); !errors.Is(err, hsm.ErrKeyNotFound) {
			t.Errorf("EncryptGCM after Destroy: err = %v, want ErrKeyNotFound", err)
		}
		if _, err := dev.DecryptGCM(ctx, id, iv, ct, nil); !errors.Is(err, hsm.ErrKeyNotFound) {
			t.Errorf("DecryptGCM after Destroy: err = %v, want ErrKeyNotFound", err)
		}
		if err := dev.Destroy(ctx, id); !errors.Is(err, hsm.ErrKeyNotFound) {
			t.Errorf("second Destroy: err = %v, want ErrKeyNotFound", err)
		}
		if err := dev.GenerateAESKey(ctx, id, "reused id"); err != nil {
			t.Errorf("re-creating a destroyed id: %v", err)
		}
	})

	t.Run("GenerateRandom", func(t *testing.T) {
		for _, n := range []int{1, 12, 32, 1000, hsm.MaxRandom} {
			b, err := dev.GenerateRandom(ctx, n)
			if err != nil || len(b) != n {
				t.Fatalf("GenerateRandom(%d) = %d bytes, %v", n, len(b), err)
			}
		}
		a, _ := dev.GenerateRandom(ctx, 32)
		b, _ := dev.GenerateRandom(ctx, 32)
		if bytes.Equal(a, b) {
			t.Fatal("two 32-byte random outputs are equal")
		}
		for _, n := range []int{0, -1, hsm.MaxRandom + 1} {
			if _, err := dev.GenerateRandom(ctx, n); err == nil {
				t.Errorf("GenerateRandom(%d) succeeded", n)
			}
		}
	})

	t.Run("ObjectIDs", func(t *testing.T) {
		made := [][]byte{newKey(t, dev), newKey(t, dev), newKey(t, dev)}
		gone := newKey(t, dev)
		if err := dev.Destroy(ctx, gone); err != nil {
			t.Fatal(err)
		}
		ids, err := dev.ObjectIDs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range made {
			if !slices.ContainsFunc(ids, func(x []byte) bool { return bytes.Equal(x, id) }) {
				t.Errorf("ObjectIDs lacks %x", id)
			}
		}
		if slices.ContainsFunc(ids, func(x []byte) bool { return bytes.Equal(x, gone) }) {
			t.Errorf("ObjectIDs lists destroyed %x", gone)
		}
		if !slices.IsSortedFunc(ids, bytes.Compare) {
			t.Error("ObjectIDs is not sorted")
		}
	})

	t.Run("Health", func(t *testing.T) {
		if err := dev.Health(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("CanceledContext", func(t *testing.T) {
		canceled, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := dev.GenerateRandom(canceled, 8); !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})

	t.Run("Close", func(t *testing.T) {
		d := newDevice(t)
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		iv := randBytes(t, hsm.IVSize)
		id := randBytes(t, hsm.BackingIDSize)
		checks := map[string]error{
			"GenerateAESKey": d.GenerateAESKey(ctx, id, "x"),
			"Health":         d.Health(ctx),
			"Destroy":        d.Destroy(ctx, id),
		}
		_, checks["EncryptGCM"] = d.EncryptGCM(ctx, id, iv, nil, nil)
		_, checks["DecryptGCM"] = d.DecryptGCM(ctx, id, iv, make([]byte, 16), nil)
		_, checks["GenerateRandom"] = d.GenerateRandom(ctx, 8)
		_, checks["ObjectIDs"] = d.ObjectIDs(ctx)
		for name, err := range checks {
			if !errors.Is(err, hsm.ErrClosed) {
				t.Errorf("%s after Close: err = %v, want ErrClosed", name, err)
			}
		}
	})
}

func TestFakeConformance(t *testing.T) {
	runConformance(t, func(t *testing.T) hsm.Device {
		f := hsm.NewFake()
		t.Cleanup(func() { _ = f.Close() })
		return f
	})
}

// newKey creates a key with a random id and returns the id.
func newKey(t testing.TB, dev hsm.Device) []byte {
	t.Helper()
	id := randBytes(t, hsm.BackingIDSize)
	if err := dev.GenerateAESKey(context.Background(), id, t.Name()); err != nil {
		t.Fatal(err)
	}
	return id
}

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

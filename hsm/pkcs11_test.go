package hsm_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/pkcs11"

	"hsmkms/hsm"
	"hsmkms/hsm/softhsmtest"
)

// openDevice opens cfg and closes the device when the test ends.
func openDevice(t testing.TB, cfg hsm.Config) *hsm.PKCS11 {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	d, err := hsm.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

// testLogger sends the device's log to the test's output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func TestPKCS11Conformance(t *testing.T) {
	cfg := softhsmtest.NewToken(t)
	runConformance(t, func(t *testing.T) hsm.Device { return openDevice(t, cfg) })
}

func TestKeyAttributes(t *testing.T) {
	t.Parallel()
	d := openDevice(t, softhsmtest.NewToken(t))
	ctx := t.Context()
	id := newKey(t, d)

	want := map[uint]bool{
		pkcs11.CKA_TOKEN:             true,
		pkcs11.CKA_PRIVATE:           true,
		pkcs11.CKA_SENSITIVE:         true,
		pkcs11.CKA_ALWAYS_SENSITIVE:  true,
		pkcs11.CKA_EXTRACTABLE:       false,
		pkcs11.CKA_NEVER_EXTRACTABLE: true,
		pkcs11.CKA_LOCAL:             true,
		pkcs11.CKA_ENCRYPT:           true,
		pkcs11.CKA_DECRYPT:           true,
		pkcs11.CKA_WRAP:              false,
		pkcs11.CKA_UNWRAP:            false,
		pkcs11.CKA_SIGN:              false,
		pkcs11.CKA_VERIFY:            false,
		pkcs11.CKA_DERIVE:            false,
	}
	types := make([]uint, 0, len(want))
	for typ := range want {
		types = append(types, typ)
	}
	got, err := hsm.KeyAttributes(ctx, d, id, append(types, pkcs11.CKA_ID, pkcs11.CKA_VALUE_LEN, pkcs11.CKA_KEY_TYPE)...)
	if err != nil {
		t.Fatal(err)
	}
	for typ, w := range want {
		if v := got[typ]; len(v) != 1 || (v[0] == 1) != w {
			t.Errorf("attribute 0x%x = %v, want %v", typ, v, w)
		}
	}
	if !bytes.Equal(got[pkcs11.CKA_ID], id) {
		t.Errorf("CKA_ID = %x, want %x", got[pkcs11.CKA_ID], id)
	}
	if v := got[pkcs11.CKA_VALUE_LEN]; len(v) == 0 || v[0] != 32 {
		t.Errorf("CKA_VALUE_LEN = %v, want 32", v)
	}
	if v := got[pkcs11.CKA_KEY_TYPE]; len(v) == 0 || v[0] != byte(pkcs11.CKK_AES) {
		t.Errorf("CKA_KEY_TYPE = %v, want CKK_AES", v)
	}

	// The key material itself must be unreadable.
	_, err = hsm.KeyAttributes(ctx, d, id, pkcs11.CKA_VALUE)
	var rv pkcs11.Error
	if !errors.As(err, &rv) || rv != pkcs11.CKR_ATTRIBUTE_SENSITIVE {
		t.Fatalf("reading CKA_VALUE: err = %v, want CKR_ATTRIBUTE_SENSITIVE", err)
	}
}

// The key cannot be read, so interop with Go's GCM cannot be checked
// directly; this proves at least that the caller's IV is what the token uses.
func TestIVIsUsed(t *testing.T) {
	t.Parallel()
	d := openDevice(t, softhsmtest.NewToken(t))
	ctx := t.Context()
	id := newKey(t, d)
	pt := []byte("same plaintext, same key")
	iv1, iv2 := randBytes(t, hsm.IVSize), randBytes(t, hsm.IVSize)
	a, err := d.EncryptGCM(ctx, id, iv1, pt, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := d.EncryptGCM(ctx, id, iv2, pt, nil)
	c, _ := d.EncryptGCM(ctx, id, iv1, pt, nil)
	if bytes.Equal(a, b) {
		t.Error("different IVs gave the same ciphertext")
	}
	if !bytes.Equal(a, c) {
		t.Error("the same IV gave different ciphertexts")
	}
	if _, err := d.DecryptGCM(ctx, id, iv2, a, nil); !errors.Is(err, hsm.ErrAuthFailed) {
		t.Errorf("decrypt with the other IV: err = %v, want ErrAuthFailed", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	d := openDevice(t, softhsmtest.NewToken(t))
	ctx := t.Context()
	keys := [][]byte{newKey(t, d), newKey(t, d), newKey(t, d), newKey(t, d)}
	const goroutines, perGoroutine = 16, 200
	errs := make(chan error, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perGoroutine {
				id := keys[(g+i)%len(keys)]
				iv := randBytes(t, hsm.IVSize)
				pt := fmt.Appendf(nil, "goroutine %d op %d", g, i)
				ct, err := d.EncryptGCM(ctx, id, iv, pt, []byte("aad"))
				if err != nil {
					errs <- err
					return
				}
				got, err := d.DecryptGCM(ctx, id, iv, ct, []byte("aad"))
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, pt) {
					errs <- fmt.Errorf("goroutine %d op %d: wrong plaintext", g, i)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestRequestsDoNotSearchTheToken(t *testing.T) {
	t.Parallel()
	d := openDevice(t, softhsmtest.NewToken(t))
	ctx := t.Context()
	keys := [][]byte{newKey(t, d), newKey(t, d), newKey(t, d)}
	before := d.FindObjectsCalls()
	for i := range 500 {
		id := keys[i%len(keys)]
		iv := randBytes(t, hsm.IVSize)
		ct, err := d.EncryptGCM(ctx, id, iv, []byte("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.DecryptGCM(ctx, id, iv, ct, nil); err != nil {
			t.Fatal(err)
		}
	}
	if after := d.FindObjectsCalls(); after != before {
		t.Fatalf("1,000 requests made %d C_FindObjectsInit calls, want 0", after-before)
	}
}

// A key made by another user of the token (here a second device) is found
// by one targeted search on first use, then served from the index.
func TestIndexMissLooksUpOnce(t *testing.T) {
	t.Parallel()
	cfg := softhsmtest.NewToken(t)
	a, b := openDevice(t, cfg), openDevice(t, cfg)
	ctx := t.Context()
	id := newKey(t, b)
	before := a.FindObjectsCalls()
	for range 10 {
		if _, err := a.EncryptGCM(ctx, id, randBytes(t, hsm.IVSize), []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := a.FindObjectsCalls() - before; n != 1 {
		t.Fatalf("%d searches, want 1", n)
	}
}

func TestRecoveryAfterAllSessionsClosed(t *testing.T) {
	t.Parallel()
	d := openDevice(t, softhsmtest.NewToken(t))
	ctx := t.Context()
	id := newKey(t, d)
	iv := randBytes(t, hsm.IVSize)
	old, err := d.EncryptGCM(ctx, id, iv, []byte("before"), nil)
	if err != nil {
		t.Fatal(err)
	}

	for round := range 2 {
		// Closing every session logs the token out and kills every handle.
		if err := hsm.CloseAllSessions(d); err != nil {
			t.Fatal(err)
		}
		before := hsm.Recoveries(d)
		// Many goroutines fail at once; exactly one recovery must run.
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for range 16 {
			wg.Go(func() {
				iv := randBytes(t, hsm.IVSize)
				ct, err := d.EncryptGCM(ctx, id, iv, []byte("after"), nil)
				if err == nil {
					_, err = d.DecryptGCM(ctx, id, iv, ct, nil)
				}
				if err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
		if n := hsm.Recoveries(d) - before; n != 1 {
			t.Errorf("round %d: %d recoveries, want 1", round, n)
		}
		pt, err := d.DecryptGCM(ctx, id, iv, old, nil)
		if err != nil || string(pt) != "before" {
			t.Fatalf("round %d: old ciphertext: %q, %v", round, pt, err)
		}
		if err := d.Health(ctx); err != nil {
			t.Fatalf("round %d: Health: %v", round, err)
		}
	}
}

func TestHealthRecovers(t *testing.T) {
	t.Parallel()
	d := openDevice(t, softhsmtest.NewToken(t))
	ctx := t.Context()
	id := newKey(t, d)
	if err := hsm.CloseAllSessions(d); err != nil {
		t.Fatal(err)
	}
	if err := d.Health(ctx); err != nil {
		t.Fatalf("Health after losing every session: %v", err)
	}
	if hsm.IndexedKeys(d) != 1 {
		t.Fatalf("index holds %d keys after recovery, want 1", hsm.IndexedKeys(d))
	}
	before := d.FindObjectsCalls()
	if _, err := d.EncryptGCM(ctx, id, randBytes(t, hsm.IVSize), []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	if d.FindObjectsCalls() != before {
		t.Fatal("request after recovery searched the token")
	}
}

func TestWrongPIN(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	t.Run("fresh token", func(t *testing.T) {
		cfg := softhsmtest.NewToken(t)
		cfg.Logger = testLogger(t)
		cfg.PIN = "not-the-pin"
		d, err := hsm.Open(ctx, cfg)
		if !errors.Is(err, hsm.ErrPINIncorrect) {
			if d != nil {
				_ = d.Close()
			}
			t.Fatalf("err = %v, want ErrPINIncorrect", err)
		}
	})
	// SoftHSM answers CKR_USER_ALREADY_LOGGED_IN even to a wrong PIN while
	// the token is logged in; Open must still refuse it.
	t.Run("token already logged in", func(t *testing.T) {
		cfg := softhsmtest.NewToken(t)
		openDevice(t, cfg)
		cfg.PIN = "not-the-pin"
		d, err := hsm.Open(ctx, cfg)
		if !errors.Is(err, hsm.ErrPINIncorrect) {
			if d != nil {
				_ = d.Close()
			}
			t.Fatalf("err = %v, want ErrPINIncorrect", err)
		}
	})
	t.Run("unknown token", func(t *testing.T) {
		cfg := softhsmtest.NewToken(t)
		cfg.Logger = testLogger(t)
		cfg.TokenLabel = "no-such-token"
		if _, err := hsm.Open(ctx, cfg); !errors.Is(err, hsm.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
	})
}

func TestReopenUsesIndex(t *testing.T) {
	t.Parallel()
	cfg := softhsmtest.NewToken(t)
	cfg.Logger = testLogger(t)
	ctx := t.Context()
	first, err := hsm.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	type sealed struct{ id, iv, ct []byte }
	var kept []sealed
	for range 5 {
		id := newKey(t, first)
		iv := randBytes(t, hsm.IVSize)
		ct, err := first.EncryptGCM(ctx, id, iv, id, nil)
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, sealed{id, iv, ct})
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	d := openDevice(t, cfg)
	if n := hsm.IndexedKeys(d); n != len(kept) {
		t.Fatalf("index holds %d keys, want %d", n, len(kept))
	}
	if n := d.FindObjectsCalls(); n != 1 {
		t.Fatalf("Open made %d searches, want 1", n)
	}
	for _, s := range kept {
		pt, err := d.DecryptGCM(ctx, s.id, s.iv, s.ct, nil)
		if err != nil || !bytes.Equal(pt, s.id) {
			t.Fatalf("decrypt after reopen: %v", err)
		}
	}
	if n := d.FindObjectsCalls(); n != 1 {
		t.Fatalf("requests after reopen searched the token (%d searches)", n-1)
	}
}

func TestPoolWaitBounded(t *testing.T) {
	t.Parallel()
	cfg := softhsmtest.NewToken(t)
	cfg.PoolSize = 1
	cfg.PoolWait = 50 * time.Millisecond
	d := openDevice(t, cfg)
	ctx := t.Context()
	release, err := hsm.HoldSession(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := d.GenerateRandom(ctx, 8); !errors.Is(err, hsm.ErrUnavailable) {
		t.Errorf("exhausted pool: err = %v, want ErrUnavailable", err)
	}
	if waited := time.Since(start); waited < cfg.PoolWait || waited > 2*time.Second {
		t.Errorf("waited %v for a session, want about %v", waited, cfg.PoolWait)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := d.GenerateRandom(short, 8); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("expired context: err = %v, want DeadlineExceeded", err)
	}
	release()
	if _, err := d.GenerateRandom(ctx, 8); err != nil {
		t.Errorf("after release: %v", err)
	}
}

func TestConfigRedactsPIN(t *testing.T) {
	t.Parallel()
	cfg := hsm.Config{ModulePath: "/m.so", TokenLabel: "tok", PIN: "s3cr3t-pin"}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("open", "config", cfg)
	for name, text := range map[string]string{
		"%v": fmt.Sprintf("%v", cfg), "%+v": fmt.Sprintf("%+v", cfg), "%#v": fmt.Sprintf("%#v", cfg),
		"String": cfg.String(), "slog": logged.String(),
	} {
		if strings.Contains(text, "s3cr3t") {
			t.Errorf("%s prints the PIN: %s", name, text)
		}
		if !strings.Contains(text, "tok") {
			t.Errorf("%s lost the token label: %s", name, text)
		}
	}
}

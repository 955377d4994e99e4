package hsm_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"hash"
	"slices"
	"testing"

	"hsmkms/hsm"
	"hsmkms/hsm/aeskw"
	"hsmkms/hsm/softhsmtest"
)

// wrapForImport wraps material as a client would for alg, with Go's crypto.
func wrapForImport(t testing.TB, spki []byte, alg hsm.WrapAlgorithm, material []byte) []byte {
	t.Helper()
	pub, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		t.Fatal(err)
	}
	var h hash.Hash = sha1.New()
	if alg == hsm.WrapOAEPSHA256 || alg == hsm.WrapRSAAESSHA256 {
		h = sha256.New()
	}
	if alg == hsm.WrapOAEPSHA1 || alg == hsm.WrapOAEPSHA256 {
		out, err := rsa.EncryptOAEP(h, rand.Reader, pub.(*rsa.PublicKey), material, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	kek := randBytes(t, 32)
	head, err := rsa.EncryptOAEP(h, rand.Reader, pub.(*rsa.PublicKey), kek, nil)
	if err != nil {
		t.Fatal(err)
	}
	tail, err := aeskw.WrapPad(kek, material)
	if err != nil {
		t.Fatal(err)
	}
	return append(head, tail...)
}

func runImportConformance(t *testing.T, dev hsm.Device, wantSHA256 bool) {
	ctx := t.Context()
	wid := randBytes(t, hsm.BackingIDSize)
	spki, err := dev.GenerateWrappingKey(ctx, wid, "test wrapping key", 2048)
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := dev.ObjectIDs(ctx)
	if !slices.ContainsFunc(ids, func(id []byte) bool { return bytes.Equal(id, wid) }) {
		t.Fatal("the wrapping key is not a token object")
	}
	for _, alg := range []hsm.WrapAlgorithm{hsm.WrapOAEPSHA1, hsm.WrapOAEPSHA256, hsm.WrapRSAAESSHA1, hsm.WrapRSAAESSHA256} {
		t.Run(alg.String(), func(t *testing.T) {
			material := randBytes(t, 32)
			wrapped := wrapForImport(t, spki, alg, material)
			ok, err := dev.SupportsWrapAlgorithm(ctx, alg)
			if err != nil {
				t.Fatal(err)
			}
			sha256Alg := alg == hsm.WrapOAEPSHA256 || alg == hsm.WrapRSAAESSHA256
			if want := !sha256Alg || wantSHA256; ok != want {
				t.Fatalf("SupportsWrapAlgorithm = %v, want %v", ok, want)
			}
			id := randBytes(t, hsm.BackingIDSize)
			kcv, err := dev.UnwrapAESKey(ctx, wid, alg, wrapped, id, "imported")
			if !ok {
				if !errors.Is(err, hsm.ErrUnsupportedWrap) {
					t.Fatalf("unsupported algorithm: err = %v, want ErrUnsupportedWrap", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantKCV, _ := aeskw.CMAC(material, hsm.CheckValueMessage)
			if !bytes.Equal(kcv, wantKCV) {
				t.Fatalf("check value %x, want AES-CMAC %x", kcv, wantKCV)
			}
			if again, err := dev.KeyCheckValue(ctx, id); err != nil || !bytes.Equal(again, kcv) {
				t.Fatalf("KeyCheckValue = %x, %v", again, err)
			}
			// The token object is the known key: Go's AES-GCM opens what the
			// device sealed.
			iv := randBytes(t, hsm.IVSize)
			ct, err := dev.EncryptGCM(ctx, id, iv, []byte("imported"), []byte("aad"))
			if err != nil {
				t.Fatal(err)
			}
			block, _ := aes.NewCipher(material)
			gcm, _ := cipher.NewGCM(block)
			if pt, err := gcm.Open(nil, iv, ct, []byte("aad")); err != nil || string(pt) != "imported" {
				t.Fatalf("Go AES-GCM with the known key: %q, %v", pt, err)
			}
			// A session-only unwrap gives the same check value and leaves
			// nothing behind.
			before, _ := dev.ObjectIDs(ctx)
			kcv2, err := dev.UnwrapAESKey(ctx, wid, alg, wrapForImport(t, spki, alg, material), nil, "")
			if err != nil || !bytes.Equal(kcv2, kcv) {
				t.Fatalf("session unwrap: %x, %v", kcv2, err)
			}
			if after, _ := dev.ObjectIDs(ctx); len(after) != len(before) {
				t.Fatalf("session unwrap left a token object: %d -> %d", len(before), len(after))
			}
			// Garbage, and a 128-bit key, do not unwrap.
			if _, err := dev.UnwrapAESKey(ctx, wid, alg, randBytes(t, len(wrapped)), randBytes(t, hsm.BackingIDSize), "x"); !errors.Is(err, hsm.ErrUnwrapFailed) {
				t.Fatalf("garbage: err = %v, want ErrUnwrapFailed", err)
			}
			// Nor does key material of any length but 32 bytes, also where
			// the token does not report the length of an unwrapped key
			// (SoftHSM), and nothing is left behind.
			// Session objects, and sessions: the length check's copy
			// lives in a session of its own, which must be closed.
			sessionObjects := func() [2]uint {
				t.Helper()
				p, ok := dev.(*hsm.PKCS11)
				if !ok {
					return [2]uint{}
				}
				n, err := p.SessionObjects(ctx)
				if err != nil {
					t.Fatal(err)
				}
				return [2]uint{uint(n), uint(hsm.LengthCheckSessions())}
			}
			tokenObjects := func() int {
				t.Helper()
				ids, err := dev.ObjectIDs(ctx)
				if err != nil {
					t.Fatal(err)
				}
				return len(ids)
			}
			lengths := []int{0, 1, 8, 16, 24, 31, 33, 48}
			if alg.TwoStep() {
				lengths = lengths[1:] // RFC 5649 wraps at least one byte
			}
			for _, n := range lengths {
				short := wrapForImport(t, spki, alg, randBytes(t, n))
				tokenBefore, sessionBefore := tokenObjects(), sessionObjects()
				if _, err := dev.UnwrapAESKey(ctx, wid, alg, short, randBytes(t, hsm.BackingIDSize), "x"); !errors.Is(err, hsm.ErrUnwrapFailed) {
					t.Fatalf("%d-byte key: err = %v, want ErrUnwrapFailed", n, err)
				}
				if _, err := dev.UnwrapAESKey(ctx, wid, alg, short, nil, ""); !errors.Is(err, hsm.ErrUnwrapFailed) {
					t.Fatalf("%d-byte key, session unwrap: err = %v, want ErrUnwrapFailed", n, err)
				}
				if after := tokenObjects(); after != tokenBefore {
					t.Fatalf("%d-byte key left a token object: %d -> %d", n, tokenBefore, after)
				}
				if after := sessionObjects(); after != sessionBefore {
					t.Fatalf("%d-byte key left a session object or session (the length check's): %v -> %v", n, sessionBefore, after)
				}
			}
			// Nor does a successful import leave a session object behind.
			sessionBefore := sessionObjects()
			if _, err := dev.UnwrapAESKey(ctx, wid, alg, wrapForImport(t, spki, alg, randBytes(t, 32)), randBytes(t, hsm.BackingIDSize), "y"); err != nil {
				t.Fatal(err)
			}
			if after := sessionObjects(); after != sessionBefore {
				t.Fatalf("an import left a session object or session: %v -> %v", sessionBefore, after)
			}
		})
	}
	if err := dev.Destroy(ctx, wid); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.UnwrapAESKey(ctx, wid, hsm.WrapOAEPSHA1, make([]byte, 256), nil, ""); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("after Destroy: err = %v, want ErrKeyNotFound", err)
	}
}

func TestFakeImport(t *testing.T) { runImportConformance(t, hsm.NewFake(), true) }

// TestPKCS11Import runs the import path on SoftHSM2 2.6.1, which cannot
// unwrap with OAEP SHA-256: those algorithms must be reported unsupported
// and refused, and the others must work entirely inside the token.
func TestPKCS11Import(t *testing.T) {
	t.Parallel()
	d := openDevice(t, softhsmtest.NewToken(t))
	runImportConformance(t, d, false)
}

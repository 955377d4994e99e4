package hsm_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"hsmkms/hsm"
	"hsmkms/hsm/softhsmtest"
)

func newID(t testing.TB) []byte { return randBytes(t, hsm.BackingIDSize) }

func digestOf(h crypto.Hash, msg []byte) []byte {
	f := h.New()
	f.Write(msg)
	return f.Sum(nil)
}

// verifyOutside checks a device signature with Go's standard library (and
// decred for secp256k1), on the SPKI the device returned: an independent
// verifier, not the device's own Verify.
func verifyOutside(t *testing.T, spki []byte, p hsm.SignParams, digest, sig []byte) {
	t.Helper()
	if p.Curve == hsm.CurveSecp256k1 {
		pub, err := secp256k1.ParsePubKey(secp256k1SPKIPoint(t, spki))
		if err != nil {
			t.Fatal(err)
		}
		s, err := secpecdsa.ParseDERSignature(sig)
		if err != nil {
			t.Fatalf("secp256k1 signature is not DER: %v", err)
		}
		if !s.Verify(digest, pub) {
			t.Fatal("decred does not verify the secp256k1 signature")
		}
		return
	}
	pub, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		t.Fatal(err)
	}
	switch p.Scheme {
	case hsm.SchemeECDSA:
		if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest, sig) {
			t.Fatal("crypto/ecdsa does not verify the signature")
		}
	case hsm.SchemeRSAPSS:
		if err := rsa.VerifyPSS(pub.(*rsa.PublicKey), p.Hash, digest, sig, &rsa.PSSOptions{SaltLength: p.Hash.Size()}); err != nil {
			t.Fatalf("crypto/rsa PSS (salt = hash length): %v", err)
		}
	case hsm.SchemeRSAPKCS1v15:
		if err := rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), p.Hash, digest, sig); err != nil {
			t.Fatalf("crypto/rsa PKCS#1 v1.5: %v", err)
		}
	}
}

// secp256k1SPKIPoint extracts the point from a secp256k1 SPKI, checking
// the algorithm identifiers on the way.
func secp256k1SPKIPoint(t *testing.T, spki []byte) []byte {
	t.Helper()
	prefix := []byte{0x30, 0x56, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a, 0x03, 0x42, 0x00}
	if !bytes.HasPrefix(spki, prefix) || len(spki) != len(prefix)+65 {
		t.Fatalf("secp256k1 SPKI has an unexpected shape: %x", spki)
	}
	return spki[len(prefix):]
}

func runAsymmetricConformance(t *testing.T, dev hsm.Device, rsaBits int) {
	ctx := t.Context()
	t.Run("ECDSA", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			curve hsm.Curve
			hash  crypto.Hash
		}{
			{"P256", hsm.CurveP256, crypto.SHA256},
			{"P384", hsm.CurveP384, crypto.SHA384},
			{"P521", hsm.CurveP521, crypto.SHA512},
			{"secp256k1", hsm.CurveSecp256k1, crypto.SHA256},
		} {
			t.Run(tc.name, func(t *testing.T) {
				id := newID(t)
				spki, err := dev.GenerateECKeyPair(ctx, id, "test", tc.curve)
				if err != nil {
					t.Fatal(err)
				}
				got, err := dev.PublicKey(ctx, id)
				if err != nil || !bytes.Equal(got, spki) {
					t.Fatalf("PublicKey = %x, %v; want the SPKI from generation", got, err)
				}
				p := hsm.SignParams{Scheme: hsm.SchemeECDSA, Hash: tc.hash, Curve: tc.curve}
				digest := digestOf(tc.hash, []byte("message"))
				sig, err := dev.Sign(ctx, id, p, digest)
				if err != nil {
					t.Fatal(err)
				}
				verifyOutside(t, spki, p, digest, sig)
				if err := dev.Verify(ctx, id, p, digest, sig); err != nil {
					t.Fatalf("Verify of own signature: %v", err)
				}
				other := digestOf(tc.hash, []byte("other message"))
				if err := dev.Verify(ctx, id, p, other, sig); !errors.Is(err, hsm.ErrInvalidSignature) {
					t.Fatalf("Verify of another message = %v, want ErrInvalidSignature", err)
				}
				bad := bytes.Clone(sig)
				bad[len(bad)-1] ^= 1
				if err := dev.Verify(ctx, id, p, digest, bad); !errors.Is(err, hsm.ErrInvalidSignature) {
					t.Fatalf("Verify of tampered signature = %v, want ErrInvalidSignature", err)
				}
				if err := dev.Verify(ctx, id, p, digest, append(bytes.Clone(sig), 0)); !errors.Is(err, hsm.ErrInvalidSignature) {
					t.Fatalf("Verify with trailing byte = %v, want ErrInvalidSignature", err)
				}
			})
		}
	})
	t.Run("RSASign", func(t *testing.T) {
		id := newID(t)
		spki, err := dev.GenerateRSAKeyPair(ctx, id, "test", rsaBits, hsm.PairSign)
		if err != nil {
			t.Fatal(err)
		}
		for _, scheme := range []hsm.SignScheme{hsm.SchemeRSAPSS, hsm.SchemeRSAPKCS1v15} {
			for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512} {
				p := hsm.SignParams{Scheme: scheme, Hash: h}
				digest := digestOf(h, []byte("message"))
				sig, err := dev.Sign(ctx, id, p, digest)
				if err != nil {
					t.Fatal(err)
				}
				verifyOutside(t, spki, p, digest, sig)
				if err := dev.Verify(ctx, id, p, digest, sig); err != nil {
					t.Fatalf("Verify %v %v: %v", scheme, h, err)
				}
				sig[10] ^= 1
				if err := dev.Verify(ctx, id, p, digest, sig); !errors.Is(err, hsm.ErrInvalidSignature) {
					t.Fatalf("Verify tampered %v %v = %v", scheme, h, err)
				}
			}
		}
		if _, err := dev.DecryptOAEP(ctx, id, crypto.SHA1, make([]byte, rsaBits/8)); err == nil {
			t.Fatal("a signing key decrypted")
		}
	})
	t.Run("RSADecrypt", func(t *testing.T) {
		id := newID(t)
		spki, err := dev.GenerateRSAKeyPair(ctx, id, "test", rsaBits, hsm.PairDecrypt)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := x509.ParsePKIXPublicKey(spki)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
			msg := randBytes(t, 100)
			ct, err := rsa.EncryptOAEP(h.New(), rand.Reader, pub.(*rsa.PublicKey), msg, nil)
			if err != nil {
				t.Fatal(err)
			}
			pt, err := dev.DecryptOAEP(ctx, id, h, ct)
			if err != nil || !bytes.Equal(pt, msg) {
				t.Fatalf("DecryptOAEP %v = %x, %v", h, pt, err)
			}
			ct[5] ^= 1
			if _, err := dev.DecryptOAEP(ctx, id, h, ct); !errors.Is(err, hsm.ErrDecryptFailed) {
				t.Fatalf("DecryptOAEP %v of tampered ciphertext = %v, want ErrDecryptFailed", h, err)
			}
		}
		if _, err := dev.Sign(ctx, id, hsm.SignParams{Scheme: hsm.SchemeRSAPSS, Hash: crypto.SHA256}, make([]byte, 32)); err == nil {
			t.Fatal("an encryption key signed")
		}
	})
	t.Run("HMAC", func(t *testing.T) {
		for _, h := range []crypto.Hash{crypto.SHA224, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
			id := newID(t)
			if err := dev.GenerateHMACKey(ctx, id, "test", h.Size()); err != nil {
				t.Fatal(err)
			}
			mac, err := dev.MAC(ctx, id, h, []byte("message"))
			if err != nil {
				t.Fatal(err)
			}
			if len(mac) != h.Size() {
				t.Fatalf("%v MAC is %d bytes", h, len(mac))
			}
			again, _ := dev.MAC(ctx, id, h, []byte("message"))
			if !bytes.Equal(mac, again) {
				t.Fatal("MAC is not deterministic")
			}
			if err := dev.VerifyMAC(ctx, id, h, []byte("message"), mac); err != nil {
				t.Fatal(err)
			}
			mac[0] ^= 1
			if err := dev.VerifyMAC(ctx, id, h, []byte("message"), mac); !errors.Is(err, hsm.ErrInvalidMAC) {
				t.Fatalf("VerifyMAC tampered = %v", err)
			}
			if err := dev.VerifyMAC(ctx, id, h, []byte("message"), mac[:4]); !errors.Is(err, hsm.ErrInvalidMAC) {
				t.Fatalf("VerifyMAC truncated = %v", err)
			}
		}
	})
	t.Run("DuplicateAndDestroy", func(t *testing.T) {
		id := newID(t)
		if _, err := dev.GenerateECKeyPair(ctx, id, "test", hsm.CurveP256); err != nil {
			t.Fatal(err)
		}
		if _, err := dev.GenerateECKeyPair(ctx, id, "test", hsm.CurveP256); !errors.Is(err, hsm.ErrDuplicateID) {
			t.Fatalf("second pair with one id = %v", err)
		}
		if err := dev.GenerateHMACKey(ctx, id, "test", 32); !errors.Is(err, hsm.ErrDuplicateID) {
			t.Fatalf("HMAC key with a pair's id = %v", err)
		}
		if err := dev.Destroy(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := dev.PublicKey(ctx, id); !errors.Is(err, hsm.ErrKeyNotFound) {
			t.Fatalf("PublicKey after Destroy = %v", err)
		}
		if _, err := dev.Sign(ctx, id, hsm.SignParams{Scheme: hsm.SchemeECDSA, Hash: crypto.SHA256, Curve: hsm.CurveP256}, make([]byte, 32)); !errors.Is(err, hsm.ErrKeyNotFound) {
			t.Fatalf("Sign after Destroy = %v", err)
		}
	})
}

func TestFakeAsymmetric(t *testing.T) {
	t.Parallel()
	runAsymmetricConformance(t, hsm.NewFake(), 2048)
}

func TestPKCS11Asymmetric(t *testing.T) {
	t.Parallel()
	runAsymmetricConformance(t, openDevice(t, softhsmtest.NewToken(t)), 2048)
}

package hsm_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/miekg/pkcs11"

	"hsmkms/hsm"
	"hsmkms/hsm/softhsmtest"
)

// TestKeyPairAttributes proves the private halves and HMAC keys are made
// as the design says: sensitive, never extractable, token and private
// objects, with only the usage the key needs; and that the token refuses
// to reveal their value.
func TestKeyPairAttributes(t *testing.T) {
	t.Parallel()
	d := openDevice(t, softhsmtest.NewToken(t))
	ctx := t.Context()
	ec, rsaDec, mac := newID(t), newID(t), newID(t)
	if _, err := d.GenerateECKeyPair(ctx, ec, "ec", hsm.CurveP256); err != nil {
		t.Fatal(err)
	}
	if _, err := d.GenerateRSAKeyPair(ctx, rsaDec, "rsa", 2048, hsm.PairDecrypt); err != nil {
		t.Fatal(err)
	}
	if err := d.GenerateHMACKey(ctx, mac, "hmac", 32); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		id    []byte
		value uint
		want  map[uint]bool
	}{
		{"EC private", ec, pkcs11.CKA_VALUE, map[uint]bool{pkcs11.CKA_SIGN: true, pkcs11.CKA_DECRYPT: false, pkcs11.CKA_UNWRAP: false, pkcs11.CKA_DERIVE: false}},
		{"RSA decrypt private", rsaDec, pkcs11.CKA_PRIVATE_EXPONENT, map[uint]bool{pkcs11.CKA_SIGN: false, pkcs11.CKA_DECRYPT: true, pkcs11.CKA_UNWRAP: false, pkcs11.CKA_SIGN_RECOVER: false}},
		{"HMAC secret", mac, pkcs11.CKA_VALUE, map[uint]bool{pkcs11.CKA_SIGN: true, pkcs11.CKA_VERIFY: true, pkcs11.CKA_ENCRYPT: false, pkcs11.CKA_DECRYPT: false, pkcs11.CKA_WRAP: false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := map[uint]bool{pkcs11.CKA_TOKEN: true, pkcs11.CKA_PRIVATE: true, pkcs11.CKA_SENSITIVE: true,
				pkcs11.CKA_EXTRACTABLE: false, pkcs11.CKA_ALWAYS_SENSITIVE: true, pkcs11.CKA_NEVER_EXTRACTABLE: true}
			for k, v := range tc.want {
				want[k] = v
			}
			types := make([]uint, 0, len(want))
			for k := range want {
				types = append(types, k)
			}
			got, err := hsm.KeyAttributes(ctx, d, tc.id, types...)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range want {
				if b := got[k]; len(b) != 1 || (b[0] != 0) != v {
					t.Errorf("attribute %#x = %v, want %v", k, b, v)
				}
			}
			if _, err := hsm.KeyAttributes(ctx, d, tc.id, tc.value); err == nil {
				t.Fatal("the token revealed the key's secret value")
			}
		})
	}
}

// TestOAEPNativeAndFallbackAgree runs the same ciphertexts through the
// token's native CKM_RSA_PKCS_OAEP (SHA-1, which SoftHSM 2.6.1 has) and
// through the fallback (raw RSA in the token, OAEP decoding in the
// service) on the same key: the plaintexts must be identical, and both
// must refuse the same bad ciphertexts with the same error. SHA-256 has
// no native path on SoftHSM, so it is checked against Go's crypto/rsa.
func TestOAEPNativeAndFallbackAgree(t *testing.T) {
	t.Parallel()
	d := openDevice(t, softhsmtest.NewToken(t))
	ctx := t.Context()
	id := newID(t)
	spki, err := d.GenerateRSAKeyPair(ctx, id, "oaep", 2048, hsm.PairDecrypt)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		t.Fatal(err)
	}
	pub := pk.(*rsa.PublicKey)
	decrypt := func(fallback bool, h crypto.Hash, ct []byte) ([]byte, error) {
		d.ForceOAEPFallback(fallback)
		defer d.ForceOAEPFallback(false)
		return d.DecryptOAEP(ctx, id, h, ct)
	}
	for i, n := range []int{0, 1, 31, 100, 214} {
		msg := randBytes(t, n)
		ct, err := rsa.EncryptOAEP(crypto.SHA1.New(), rand.Reader, pub, msg, nil)
		if err != nil {
			t.Fatal(err)
		}
		native, nerr := decrypt(false, crypto.SHA1, ct)
		fallback, ferr := decrypt(true, crypto.SHA1, ct)
		if nerr != nil || ferr != nil || !bytes.Equal(native, fallback) || !bytes.Equal(native, msg) {
			t.Fatalf("case %d: native %x (%v), fallback %x (%v), want %x", i, native, nerr, fallback, ferr, msg)
		}
		// Every single-byte change of a valid ciphertext fails both ways.
		bad := bytes.Clone(ct)
		bad[i*7] ^= 0x80
		_, nerr = decrypt(false, crypto.SHA1, bad)
		_, ferr = decrypt(true, crypto.SHA1, bad)
		if !errors.Is(nerr, hsm.ErrDecryptFailed) || !errors.Is(ferr, hsm.ErrDecryptFailed) {
			t.Fatalf("case %d tampered: native %v, fallback %v; want ErrDecryptFailed from both", i, nerr, ferr)
		}
	}
	// Wrong hash, wrong length, c >= n.
	ct, _ := rsa.EncryptOAEP(crypto.SHA256.New(), rand.Reader, pub, []byte("x"), nil)
	for name, c := range map[string][]byte{
		"SHA-256 ciphertext as SHA-1": ct,
		"short":                       ct[1:],
		"c >= n":                      bytes.Repeat([]byte{0xff}, 256),
	} {
		_, nerr := decrypt(false, crypto.SHA1, c)
		_, ferr := decrypt(true, crypto.SHA1, c)
		if !errors.Is(nerr, hsm.ErrDecryptFailed) || !errors.Is(ferr, hsm.ErrDecryptFailed) {
			t.Errorf("%s: native %v, fallback %v; want ErrDecryptFailed from both", name, nerr, ferr)
		}
	}
	// SHA-256 both ways against Go: Go encrypts, the token decrypts, for
	// the longest plaintext too (190 bytes for 2048 bits).
	for _, n := range []int{1, 190} {
		msg := randBytes(t, n)
		ct, err := rsa.EncryptOAEP(crypto.SHA256.New(), rand.Reader, pub, msg, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decrypt(false, crypto.SHA256, ct)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("SHA-256 %d bytes: %x, %v", n, got, err)
		}
	}
}

// TestKeyPairsSurviveReopen proves the handle index is rebuilt for key
// pairs and HMAC keys from the token at Open, so requests after a restart
// do not search the token.
func TestKeyPairsSurviveReopen(t *testing.T) {
	t.Parallel()
	cfg := softhsmtest.NewToken(t)
	ctx := t.Context()
	ec, mac := newID(t), newID(t)
	d := openDevice(t, cfg)
	spki, err := d.GenerateECKeyPair(ctx, ec, "ec", hsm.CurveP384)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.GenerateHMACKey(ctx, mac, "hmac", 64); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = openDevice(t, cfg)
	before := d.FindObjectsCalls()
	p := hsm.SignParams{Scheme: hsm.SchemeECDSA, Hash: crypto.SHA384, Curve: hsm.CurveP384}
	digest := digestOf(crypto.SHA384, []byte("m"))
	for range 20 {
		sig, err := d.Sign(ctx, ec, p, digest)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Verify(ctx, ec, p, digest, sig); err != nil {
			t.Fatal(err)
		}
		got, err := d.PublicKey(ctx, ec)
		if err != nil || !bytes.Equal(got, spki) {
			t.Fatalf("PublicKey after reopen: %v", err)
		}
		m, err := d.MAC(ctx, mac, crypto.SHA512, []byte("m"))
		if err != nil {
			t.Fatal(err)
		}
		if err := d.VerifyMAC(ctx, mac, crypto.SHA512, []byte("m"), m); err != nil {
			t.Fatal(err)
		}
	}
	if n := d.FindObjectsCalls() - before; n != 0 {
		t.Fatalf("requests after reopen made %d C_FindObjects calls, want 0", n)
	}
}

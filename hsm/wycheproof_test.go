package hsm_test

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/pkcs11"

	"hsmkms/hsm"
	"hsmkms/hsm/softhsmtest"
)

// Project Wycheproof known-answer tests through the HSM path the service
// uses (Device.Verify with the strict DER parse, Device.DecryptOAEP native
// and fallback, Device.VerifyMAC), with key objects created in a SoftHSM
// token from the vectors' key material. The vectors come from the Go
// module proxy (github.com/C2SP/wycheproof, testvectors_v1), fetched with
// `go mod download` into the module cache; nothing is committed.

const wycheproofModule = "github.com/C2SP/wycheproof@v0.0.0-20250901140545-b51abcfb8daf"

func wycheproofDir(t *testing.T) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", "mod", "download", "-json", wycheproofModule)
	cmd.Dir = t.TempDir() // outside the module: no go.mod change
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v", wycheproofModule, err)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		t.Fatalf("go mod download: %s %v", info.Error, err)
	}
	return filepath.Join(info.Dir, "testvectors_v1")
}

type wpFile struct {
	TestGroups []struct {
		Sha       string `json:"sha"`
		MgfSha    string `json:"mgfSha"`
		SLen      int    `json:"sLen"`
		KeySize   int    `json:"keySize"`
		TagSize   int    `json:"tagSize"`
		PublicKey struct {
			Curve        string `json:"curve"`
			Uncompressed string `json:"uncompressed"`
		} `json:"publicKey"`
		PublicKeyDer    string `json:"publicKeyDer"`
		PrivateKeyPkcs8 string `json:"privateKeyPkcs8"`
		Tests           []struct {
			TcID   int    `json:"tcId"`
			Msg    string `json:"msg"`
			Sig    string `json:"sig"`
			Ct     string `json:"ct"`
			Label  string `json:"label"`
			Key    string `json:"key"`
			Tag    string `json:"tag"`
			Result string `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var wpHashes = map[string]crypto.Hash{"SHA-1": crypto.SHA1, "SHA-224": crypto.SHA224, "SHA-256": crypto.SHA256, "SHA-384": crypto.SHA384, "SHA-512": crypto.SHA512}

// wpCounts are the totals of one file.
type wpCounts struct{ ran, passed, notApplicable atomic.Int64 }

func TestWycheproof(t *testing.T) {
	t.Parallel()
	dir := wycheproofDir(t)
	d := openDevice(t, softhsmtest.NewToken(t))
	ctx := t.Context()
	var mu sync.Mutex
	totals := map[string]*wpCounts{}
	load := func(t *testing.T, name string) *wpFile {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		var f wpFile
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatal(err)
		}
		return &f
	}
	counts := func(name string) *wpCounts {
		mu.Lock()
		defer mu.Unlock()
		c := &wpCounts{}
		totals[name] = c
		return c
	}
	// check records one vector: valid must succeed, invalid must fail,
	// acceptable may do either.
	check := func(t *testing.T, c *wpCounts, name string, tcID int, result string, err error, wantFailure error) {
		c.ran.Add(1)
		switch {
		case result == "acceptable":
			c.passed.Add(1)
		case result == "valid" && err == nil:
			c.passed.Add(1)
		case result == "invalid" && err != nil && errors.Is(err, wantFailure):
			c.passed.Add(1)
		default:
			t.Errorf("%s tcId %d: result %s, got %v", name, tcID, result, err)
		}
	}
	curves := map[string]hsm.Curve{"secp256r1": hsm.CurveP256, "secp384r1": hsm.CurveP384, "secp521r1": hsm.CurveP521, "secp256k1": hsm.CurveSecp256k1}
	oids := map[hsm.Curve]asn1.ObjectIdentifier{hsm.CurveP256: {1, 2, 840, 10045, 3, 1, 7}, hsm.CurveP384: {1, 3, 132, 0, 34}, hsm.CurveP521: {1, 3, 132, 0, 35}, hsm.CurveSecp256k1: {1, 3, 132, 0, 10}}
	publicRSA := func(t *testing.T, der string) []*pkcs11.Attribute {
		pk, err := x509.ParsePKIXPublicKey(unhex(t, der))
		if err != nil {
			t.Fatal(err)
		}
		k := pk.(*rsa.PublicKey)
		return []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, k.N.Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, big.NewInt(int64(k.E)).Bytes()),
		}
	}

	for _, name := range []string{"ecdsa_secp256r1_sha256_test.json", "ecdsa_secp384r1_sha384_test.json", "ecdsa_secp521r1_sha512_test.json", "ecdsa_secp256k1_sha256_test.json"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f, c := load(t, name), counts(name)
			for _, g := range f.TestGroups {
				curve := curves[g.PublicKey.Curve]
				params, _ := asn1.Marshal(oids[curve])
				point, _ := asn1.Marshal(unhex(t, g.PublicKey.Uncompressed))
				id := newID(t)
				if err := hsm.CreateTestObject(ctx, d, id, []*pkcs11.Attribute{
					pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
					pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
					pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
					pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
					pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
					pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, point),
				}); err != nil {
					t.Fatal(err)
				}
				h := wpHashes[g.Sha]
				p := hsm.SignParams{Scheme: hsm.SchemeECDSA, Hash: h, Curve: curve}
				for _, tc := range g.Tests {
					err := d.Verify(ctx, id, p, digestOf(h, unhex(t, tc.Msg)), unhex(t, tc.Sig))
					check(t, c, name, tc.TcID, tc.Result, err, hsm.ErrInvalidSignature)
				}
			}
		})
	}

	for _, name := range []string{"rsa_pss_2048_sha256_mgf1_32_test.json", "rsa_pss_3072_sha256_mgf1_32_test.json", "rsa_pss_4096_sha256_mgf1_32_test.json",
		"rsa_pss_2048_sha384_mgf1_48_test.json", "rsa_pss_4096_sha384_mgf1_48_test.json", "rsa_pss_4096_sha512_mgf1_64_test.json",
		"rsa_signature_2048_sha256_test.json", "rsa_signature_2048_sha384_test.json", "rsa_signature_2048_sha512_test.json",
		"rsa_signature_3072_sha256_test.json", "rsa_signature_3072_sha384_test.json", "rsa_signature_3072_sha512_test.json",
		"rsa_signature_4096_sha256_test.json", "rsa_signature_4096_sha384_test.json", "rsa_signature_4096_sha512_test.json"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f, c := load(t, name), counts(name)
			scheme := hsm.SchemeRSAPKCS1v15
			if name[:7] == "rsa_pss" {
				scheme = hsm.SchemeRSAPSS
			}
			for _, g := range f.TestGroups {
				h := wpHashes[g.Sha]
				if scheme == hsm.SchemeRSAPSS && (wpHashes[g.MgfSha] != h || g.SLen != h.Size()) {
					for range g.Tests {
						c.notApplicable.Add(1)
					}
					continue
				}
				id := newID(t)
				if err := hsm.CreateTestObject(ctx, d, id, publicRSA(t, g.PublicKeyDer)); err != nil {
					t.Fatal(err)
				}
				p := hsm.SignParams{Scheme: scheme, Hash: h}
				for _, tc := range g.Tests {
					err := d.Verify(ctx, id, p, digestOf(h, unhex(t, tc.Msg)), unhex(t, tc.Sig))
					check(t, c, name, tc.TcID, tc.Result, err, hsm.ErrInvalidSignature)
				}
			}
		})
	}

	for _, name := range []string{"rsa_oaep_2048_sha1_mgf1sha1_test.json", "rsa_oaep_2048_sha256_mgf1sha256_test.json", "rsa_oaep_3072_sha256_mgf1sha256_test.json", "rsa_oaep_4096_sha256_mgf1sha256_test.json"} {
		t.Run(name, func(t *testing.T) {
			f := load(t, name)
			// SHA-1 runs twice on the same key: natively and through the
			// fallback. SHA-256 takes whichever path the token needs.
			modes := []bool{false}
			if f.TestGroups[0].Sha == "SHA-1" {
				modes = []bool{false, true}
			}
			for _, fallback := range modes {
				label := name
				if fallback {
					label += " (forced fallback)"
				}
				c := counts(label)
				for _, g := range f.TestGroups {
					priv, err := x509.ParsePKCS8PrivateKey(unhex(t, g.PrivateKeyPkcs8))
					if err != nil {
						t.Fatal(err)
					}
					k := priv.(*rsa.PrivateKey)
					id := newID(t)
					if err := hsm.CreateTestObject(ctx, d, id, []*pkcs11.Attribute{
						pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
						pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
						pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
						pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
						pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
						pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
						pkcs11.NewAttribute(pkcs11.CKA_MODULUS, k.N.Bytes()),
						pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, big.NewInt(int64(k.E)).Bytes()),
						pkcs11.NewAttribute(pkcs11.CKA_PRIVATE_EXPONENT, k.D.Bytes()),
						pkcs11.NewAttribute(pkcs11.CKA_PRIME_1, k.Primes[0].Bytes()),
						pkcs11.NewAttribute(pkcs11.CKA_PRIME_2, k.Primes[1].Bytes()),
						pkcs11.NewAttribute(pkcs11.CKA_EXPONENT_1, k.Precomputed.Dp.Bytes()),
						pkcs11.NewAttribute(pkcs11.CKA_EXPONENT_2, k.Precomputed.Dq.Bytes()),
						pkcs11.NewAttribute(pkcs11.CKA_COEFFICIENT, k.Precomputed.Qinv.Bytes()),
					}); err != nil {
						t.Fatal(err)
					}
					h := wpHashes[g.Sha]
					d.ForceOAEPFallback(fallback)
					for _, tc := range g.Tests {
						if tc.Label != "" { // AWS (and this service) use the empty label only
							c.notApplicable.Add(1)
							continue
						}
						pt, err := d.DecryptOAEP(ctx, id, h, unhex(t, tc.Ct))
						if err == nil && hex.EncodeToString(pt) != tc.Msg {
							err = errors.New("wrong plaintext")
						}
						check(t, c, label, tc.TcID, tc.Result, err, hsm.ErrDecryptFailed)
					}
					d.ForceOAEPFallback(false)
				}
			}
		})
	}

	for _, name := range []string{"hmac_sha224_test.json", "hmac_sha256_test.json", "hmac_sha384_test.json", "hmac_sha512_test.json"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f, c := load(t, name), counts(name)
			h := map[string]crypto.Hash{"hmac_sha224_test.json": crypto.SHA224, "hmac_sha256_test.json": crypto.SHA256, "hmac_sha384_test.json": crypto.SHA384, "hmac_sha512_test.json": crypto.SHA512}[name]
			for _, g := range f.TestGroups {
				// AWS MACs are never truncated and its HMAC keys are as long
				// as the hash (also SoftHSM's minimum key size).
				if g.TagSize != 8*h.Size() || g.KeySize < 8*h.Size() {
					for range g.Tests {
						c.notApplicable.Add(1)
					}
					continue
				}
				for _, tc := range g.Tests {
					id := newID(t)
					if err := hsm.CreateTestObject(ctx, d, id, []*pkcs11.Attribute{
						pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
						pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
						pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
						pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
						pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
						pkcs11.NewAttribute(pkcs11.CKA_VALUE, unhex(t, tc.Key)),
					}); err != nil {
						t.Fatal(err)
					}
					err := d.VerifyMAC(ctx, id, h, unhex(t, tc.Msg), unhex(t, tc.Tag))
					if err == nil && tc.Result == "valid" {
						mac, merr := d.MAC(ctx, id, h, unhex(t, tc.Msg))
						if merr != nil || hex.EncodeToString(mac) != tc.Tag {
							err = errors.New("MAC differs from the vector")
						}
					}
					check(t, c, name, tc.TcID, tc.Result, err, hsm.ErrInvalidMAC)
				}
			}
		})
	}

	t.Cleanup(func() {
		var ran, passed, na int64
		for name, c := range totals {
			t.Logf("wycheproof %-48s ran %4d passed %4d not applicable %3d", name, c.ran.Load(), c.passed.Load(), c.notApplicable.Load())
			ran, passed, na = ran+c.ran.Load(), passed+c.passed.Load(), na+c.notApplicable.Load()
			if c.ran.Load() < 20 {
				t.Errorf("%s: only %d vectors ran", name, c.ran.Load())
			}
		}
		t.Logf("wycheproof total: %d vectors ran, %d passed, %d not applicable, %d files", ran, passed, na, len(totals))
		if ran < 5000 || passed != ran {
			t.Errorf("wycheproof: %d ran, %d passed; want every one of at least 5000 to pass", ran, passed)
		}
	})
}

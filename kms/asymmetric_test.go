package kms_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"hsmkms/kms"
)

// keyRow is one KeySpec/KeyUsage row of the table with the
// algorithm lists AWS reports for it.
type keyRow struct {
	spec, usage string
	enc, sig    []string
	mac         []string
}

var rsaSigning = []string{"RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",
	"RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512"}

var keyRows = []keyRow{
	{spec: "RSA_2048", usage: "SIGN_VERIFY", sig: rsaSigning},
	{spec: "RSA_3072", usage: "SIGN_VERIFY", sig: rsaSigning},
	{spec: "RSA_4096", usage: "SIGN_VERIFY", sig: rsaSigning},
	{spec: "RSA_2048", usage: "ENCRYPT_DECRYPT", enc: []string{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"}},
	{spec: "RSA_3072", usage: "ENCRYPT_DECRYPT", enc: []string{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"}},
	{spec: "RSA_4096", usage: "ENCRYPT_DECRYPT", enc: []string{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"}},
	{spec: "ECC_NIST_P256", usage: "SIGN_VERIFY", sig: []string{"ECDSA_SHA_256"}},
	{spec: "ECC_NIST_P384", usage: "SIGN_VERIFY", sig: []string{"ECDSA_SHA_384"}},
	{spec: "ECC_NIST_P521", usage: "SIGN_VERIFY", sig: []string{"ECDSA_SHA_512"}},
	{spec: "ECC_SECG_P256K1", usage: "SIGN_VERIFY", sig: []string{"ECDSA_SHA_256"}},
	{spec: "HMAC_224", usage: "GENERATE_VERIFY_MAC", mac: []string{"HMAC_SHA_224"}},
	{spec: "HMAC_256", usage: "GENERATE_VERIFY_MAC", mac: []string{"HMAC_SHA_256"}},
	{spec: "HMAC_384", usage: "GENERATE_VERIFY_MAC", mac: []string{"HMAC_SHA_384"}},
	{spec: "HMAC_512", usage: "GENERATE_VERIFY_MAC", mac: []string{"HMAC_SHA_512"}},
}

func algHash(alg string) crypto.Hash {
	switch {
	case strings.HasSuffix(alg, "_1"):
		return crypto.SHA1
	case strings.HasSuffix(alg, "224"):
		return crypto.SHA224
	case strings.HasSuffix(alg, "256"):
		return crypto.SHA256
	case strings.HasSuffix(alg, "384"):
		return crypto.SHA384
	}
	return crypto.SHA512
}

func hashOf(h crypto.Hash, m []byte) []byte {
	f := h.New()
	f.Write(m)
	return f.Sum(nil)
}

func (e *env) createAsymmetric(t *testing.T, spec, usage string) *kms.KeyMetadata {
	t.Helper()
	out, err := e.svc.CreateKey(e.ctx, &kms.CreateKeyInput{KeySpec: ptr(spec), KeyUsage: ptr(usage)})
	if err != nil {
		t.Fatalf("CreateKey %s %s: %v", spec, usage, err)
	}
	return out.KeyMetadata
}

// requireOpenSSL returns the openssl path. Under scripts/test (which sets
// HSMKMS_REQUIRE_OPENSSL) a missing openssl fails the test.
func requireOpenSSL(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("HSMKMS_REQUIRE_OPENSSL") != "" || os.Getenv("CI") == "true" {
			t.Fatalf("openssl is required for the independent verification: %v", err)
		}
		t.Skip("openssl not installed; scripts/test installs it")
	}
	return path
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func pemPublic(spki []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})
}

// opensslVerify checks a signature with `openssl dgst -verify`.
func opensslVerify(t *testing.T, spki []byte, alg string, message, sig []byte) {
	t.Helper()
	bin := requireOpenSSL(t)
	dir := t.TempDir()
	args := []string{"dgst", "-" + strings.ToLower(strings.ReplaceAll(algHash(alg).String(), "-", "")),
		"-verify", writeFile(t, dir, "pub.pem", pemPublic(spki)), "-signature", writeFile(t, dir, "sig", sig)}
	if strings.HasPrefix(alg, "RSASSA_PSS") {
		// Salt length -1: equal to the digest length, as AWS signs.
		args = append(args, "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1")
	}
	args = append(args, writeFile(t, dir, "msg", message))
	out, err := exec.CommandContext(t.Context(), bin, args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verified OK") {
		t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
}

// opensslEncrypt encrypts with `openssl pkeyutl` and the downloaded key.
func opensslEncrypt(t *testing.T, spki []byte, alg string, message []byte) []byte {
	t.Helper()
	bin := requireOpenSSL(t)
	dir := t.TempDir()
	md := "sha1"
	if alg == "RSAES_OAEP_SHA_256" {
		md = "sha256"
	}
	out := filepath.Join(dir, "ct")
	args := []string{"pkeyutl", "-encrypt", "-pubin", "-inkey", writeFile(t, dir, "pub.pem", pemPublic(spki)),
		"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:" + md, "-pkeyopt", "rsa_mgf1_md:" + md,
		"-in", writeFile(t, dir, "msg", message), "-out", out}
	if msg, err := exec.CommandContext(t.Context(), bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, msg)
	}
	ct, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

// goVerify checks a signature with Go's standard library (decred for
// secp256k1), on the public key from GetPublicKey.
func goVerify(t *testing.T, spec string, spki []byte, alg string, message, sig []byte) {
	t.Helper()
	h := algHash(alg)
	digest := hashOf(h, message)
	if spec == "ECC_SECG_P256K1" {
		var info struct {
			Algorithm struct{ Algorithm, Curve asn1.ObjectIdentifier }
			PublicKey asn1.BitString
		}
		if _, err := asn1.Unmarshal(spki, &info); err != nil {
			t.Fatal(err)
		}
		if !info.Algorithm.Curve.Equal(asn1.ObjectIdentifier{1, 3, 132, 0, 10}) {
			t.Fatalf("secp256k1 SPKI names curve %v", info.Algorithm.Curve)
		}
		pub, err := secp256k1.ParsePubKey(info.PublicKey.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		s, err := secpecdsa.ParseDERSignature(sig)
		if err != nil || !s.Verify(digest, pub) {
			t.Fatalf("decred does not verify the secp256k1 signature: %v", err)
		}
		return
	}
	pk, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case strings.HasPrefix(alg, "ECDSA"):
		if !ecdsa.VerifyASN1(pk.(*ecdsa.PublicKey), digest, sig) {
			t.Fatal("crypto/ecdsa does not verify")
		}
	case strings.HasPrefix(alg, "RSASSA_PSS"):
		if err := rsa.VerifyPSS(pk.(*rsa.PublicKey), h, digest, sig, &rsa.PSSOptions{SaltLength: h.Size()}); err != nil {
			t.Fatal(err)
		}
	default:
		if err := rsa.VerifyPKCS1v15(pk.(*rsa.PublicKey), h, digest, sig); err != nil {
			t.Fatal(err)
		}
	}
}

// runKeyRows drives every row of the table through its operations and
// failures. withOpenSSL adds the openssl checks (the SoftHSM run).
func runKeyRows(t *testing.T, e *env, withOpenSSL bool) {
	for _, row := range keyRows {
		t.Run(row.spec+"_"+row.usage, func(t *testing.T) {
			t.Parallel()
			md := e.createAsymmetric(t, row.spec, row.usage)
			if md.KeySpec != row.spec || md.CustomerMasterKeySpec != row.spec || md.KeyUsage != row.usage || md.KeyState != "Enabled" {
				t.Fatalf("metadata %+v", md)
			}
			if !slices.Equal(md.EncryptionAlgorithms, row.enc) || !slices.Equal(md.SigningAlgorithms, row.sig) || !slices.Equal(md.MacAlgorithms, row.mac) {
				t.Fatalf("algorithms enc %v sig %v mac %v; want %v %v %v", md.EncryptionAlgorithms, md.SigningAlgorithms, md.MacAlgorithms, row.enc, row.sig, row.mac)
			}
			if md.CurrentKeyMaterialId != "" {
				t.Fatal("an asymmetric key reports CurrentKeyMaterialId")
			}
			d, err := e.svc.DescribeKey(e.ctx, &kms.DescribeKeyInput{KeyId: ptr(md.KeyId)})
			if err != nil || !slices.Equal(d.KeyMetadata.SigningAlgorithms, row.sig) || !slices.Equal(d.KeyMetadata.MacAlgorithms, row.mac) || !slices.Equal(d.KeyMetadata.EncryptionAlgorithms, row.enc) {
				t.Fatalf("DescribeKey: %+v, %v", d, err)
			}
			// Symmetric operations refuse every one of these keys.
			_, err = e.svc.GenerateDataKey(e.ctx, &kms.GenerateDataKeyInput{KeyId: ptr(md.KeyId), KeySpec: ptr("AES_256")})
			wantCode(t, err, kms.CodeInvalidKeyUsage)
			switch row.usage {
			case "SIGN_VERIFY":
				testSignRow(t, e, row, md, withOpenSSL)
			case "ENCRYPT_DECRYPT":
				testEncryptRow(t, e, row, md, withOpenSSL)
			default:
				testMacRow(t, e, row, md)
			}
		})
	}
}

func testSignRow(t *testing.T, e *env, row keyRow, md *kms.KeyMetadata, withOpenSSL bool) {
	pub, err := e.svc.GetPublicKey(e.ctx, &kms.GetPublicKeyInput{KeyId: ptr(md.KeyId)})
	if err != nil {
		t.Fatal(err)
	}
	if pub.KeyId != md.Arn || pub.KeySpec != row.spec || pub.KeyUsage != row.usage || !slices.Equal(pub.SigningAlgorithms, row.sig) || pub.EncryptionAlgorithms != nil {
		t.Fatalf("GetPublicKey %+v", pub)
	}
	message := []byte("message to sign, " + row.spec)
	for _, alg := range row.sig {
		h := algHash(alg)
		raw, err := e.svc.Sign(e.ctx, &kms.SignInput{KeyId: ptr(md.KeyId), Message: message, SigningAlgorithm: ptr(alg)})
		if err != nil {
			t.Fatalf("Sign %s: %v", alg, err)
		}
		if raw.KeyId != md.Arn || raw.SigningAlgorithm != alg {
			t.Fatalf("Sign output %+v", raw)
		}
		goVerify(t, row.spec, pub.PublicKey, alg, message, raw.Signature)
		if withOpenSSL {
			opensslVerify(t, pub.PublicKey, alg, message, raw.Signature)
		}
		// A DIGEST signature verifies as RAW on the message and vice versa.
		dig, err := e.svc.Sign(e.ctx, &kms.SignInput{KeyId: ptr(md.KeyId), Message: hashOf(h, message), MessageType: ptr("DIGEST"), SigningAlgorithm: ptr(alg)})
		if err != nil {
			t.Fatal(err)
		}
		goVerify(t, row.spec, pub.PublicKey, alg, message, dig.Signature)
		for _, sig := range [][]byte{raw.Signature, dig.Signature} {
			v, err := e.svc.Verify(e.ctx, &kms.VerifyInput{KeyId: ptr(md.KeyId), Message: message, Signature: sig, SigningAlgorithm: ptr(alg)})
			if err != nil || !v.SignatureValid || v.KeyId != md.Arn {
				t.Fatalf("Verify RAW %s: %+v, %v", alg, v, err)
			}
			if _, err := e.svc.Verify(e.ctx, &kms.VerifyInput{KeyId: ptr(md.KeyId), Message: hashOf(h, message), MessageType: ptr("DIGEST"), Signature: sig, SigningAlgorithm: ptr(alg)}); err != nil {
				t.Fatalf("Verify DIGEST %s: %v", alg, err)
			}
		}
		bad := bytes.Clone(raw.Signature)
		bad[len(bad)/2] ^= 1
		_, err = e.svc.Verify(e.ctx, &kms.VerifyInput{KeyId: ptr(md.KeyId), Message: message, Signature: bad, SigningAlgorithm: ptr(alg)})
		if kerr := wantCode(t, err, kms.CodeKMSInvalidSignature); kerr.Message != "" {
			t.Fatalf("KMSInvalidSignatureException has a message: %q", kerr.Message)
		}
		_, err = e.svc.Verify(e.ctx, &kms.VerifyInput{KeyId: ptr(md.KeyId), Message: []byte("other"), Signature: raw.Signature, SigningAlgorithm: ptr(alg)})
		wantCode(t, err, kms.CodeKMSInvalidSignature)
		_, err = e.svc.Sign(e.ctx, &kms.SignInput{KeyId: ptr(md.KeyId), Message: hashOf(h, message)[1:], MessageType: ptr("DIGEST"), SigningAlgorithm: ptr(alg)})
		if kerr := wantCode(t, err, kms.CodeValidation); kerr.Message != "Digest is invalid length for algorithm "+alg+"." {
			t.Fatalf("message %q", kerr.Message)
		}
	}
	// Algorithms of another key type, and wrong operations.
	other := "ECDSA_SHA_384"
	if row.spec == "ECC_NIST_P384" {
		other = "RSASSA_PSS_SHA_256"
	}
	_, err = e.svc.Sign(e.ctx, &kms.SignInput{KeyId: ptr(md.KeyId), Message: message, SigningAlgorithm: ptr(other)})
	if kerr := wantCode(t, err, kms.CodeInvalidKeyUsage); kerr.Message != fmt.Sprintf("Algorithm %s is incompatible with key spec %s.", other, row.spec) {
		t.Fatalf("message %q", kerr.Message)
	}
	_, err = e.svc.Sign(e.ctx, &kms.SignInput{KeyId: ptr(md.KeyId), Message: message})
	wantCode(t, err, kms.CodeValidation)
	_, err = e.svc.Sign(e.ctx, &kms.SignInput{KeyId: ptr(md.KeyId), Message: make([]byte, 4097), SigningAlgorithm: ptr(row.sig[0])})
	wantCode(t, err, kms.CodeValidation)
	_, err = e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("x")})
	if kerr := wantCode(t, err, kms.CodeInvalidKeyUsage); kerr.Message != md.Arn+" key usage is SIGN_VERIFY which is not valid for Encrypt." {
		t.Fatalf("message %q", kerr.Message)
	}
	_, err = e.svc.GenerateMac(e.ctx, &kms.GenerateMacInput{KeyId: ptr(md.KeyId), Message: message, MacAlgorithm: ptr("HMAC_SHA_256")})
	wantCode(t, err, kms.CodeInvalidKeyUsage)
	_, err = e.svc.Sign(e.ctx, &kms.SignInput{KeyId: ptr(md.KeyId), Message: message, SigningAlgorithm: ptr(row.sig[0]), DryRun: ptr(true)})
	wantCode(t, err, kms.CodeDryRun)
}

func testEncryptRow(t *testing.T, e *env, row keyRow, md *kms.KeyMetadata, withOpenSSL bool) {
	pub, err := e.svc.GetPublicKey(e.ctx, &kms.GetPublicKeyInput{KeyId: ptr(md.KeyId)})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pub.EncryptionAlgorithms, row.enc) || pub.SigningAlgorithms != nil {
		t.Fatalf("GetPublicKey %+v", pub)
	}
	pk, err := x509.ParsePKIXPublicKey(pub.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	rsaPub := pk.(*rsa.PublicKey)
	for _, alg := range row.enc {
		h := algHash(alg)
		limit := rsaPub.Size() - 2*h.Size() - 2
		// Through the service both ways, at the limit.
		msg := make([]byte, limit)
		rand.Read(msg)
		enc, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: msg, EncryptionAlgorithm: ptr(alg)})
		if err != nil {
			t.Fatalf("Encrypt %s: %v", alg, err)
		}
		if len(enc.CiphertextBlob) != rsaPub.Size() || enc.EncryptionAlgorithm != alg || enc.KeyId != md.Arn {
			t.Fatalf("Encrypt output: %d bytes, %+v", len(enc.CiphertextBlob), enc.EncryptionAlgorithm)
		}
		dec, err := e.svc.Decrypt(e.ctx, &kms.DecryptInput{KeyId: ptr(md.KeyId), CiphertextBlob: enc.CiphertextBlob, EncryptionAlgorithm: ptr(alg)})
		if err != nil || !bytes.Equal(dec.Plaintext, msg) || dec.EncryptionAlgorithm != alg || dec.KeyMaterialId != "" {
			t.Fatalf("Decrypt %s: %v", alg, err)
		}
		// The service's ciphertext is plain OAEP: Go decrypts nothing
		// (no private key), but Go's ciphertext decrypts in the service.
		goCT, err := rsa.EncryptOAEP(h.New(), rand.Reader, rsaPub, []byte("from Go"), nil)
		if err != nil {
			t.Fatal(err)
		}
		dec, err = e.svc.Decrypt(e.ctx, &kms.DecryptInput{KeyId: ptr(md.KeyId), CiphertextBlob: goCT, EncryptionAlgorithm: ptr(alg)})
		if err != nil || string(dec.Plaintext) != "from Go" {
			t.Fatalf("Decrypt of Go's %s ciphertext: %v", alg, err)
		}
		if withOpenSSL {
			sslCT := opensslEncrypt(t, pub.PublicKey, alg, []byte("from openssl"))
			dec, err = e.svc.Decrypt(e.ctx, &kms.DecryptInput{KeyId: ptr(md.KeyId), CiphertextBlob: sslCT, EncryptionAlgorithm: ptr(alg)})
			if err != nil || string(dec.Plaintext) != "from openssl" {
				t.Fatalf("Decrypt of openssl's %s ciphertext: %v", alg, err)
			}
		}
		_, err = e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: make([]byte, limit+1), EncryptionAlgorithm: ptr(alg)})
		if kerr := wantCode(t, err, kms.CodeValidation); kerr.Message != fmt.Sprintf("Algorithm %s and key spec %s cannot encrypt data larger than %d bytes.", alg, row.spec, limit) {
			t.Fatalf("message %q", kerr.Message)
		}
		bad := bytes.Clone(enc.CiphertextBlob)
		bad[7] ^= 1
		_, err = e.svc.Decrypt(e.ctx, &kms.DecryptInput{KeyId: ptr(md.KeyId), CiphertextBlob: bad, EncryptionAlgorithm: ptr(alg)})
		wantCode(t, err, kms.CodeInvalidCiphertext)
		_, err = e.svc.Decrypt(e.ctx, &kms.DecryptInput{KeyId: ptr(md.KeyId), CiphertextBlob: enc.CiphertextBlob[1:], EncryptionAlgorithm: ptr(alg)})
		wantCode(t, err, kms.CodeInvalidCiphertext)
	}
	ct, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, rsaPub, []byte("x"), nil)
	// Decrypt needs the algorithm (and KeyId) for asymmetric ciphertext.
	_, err = e.svc.Decrypt(e.ctx, &kms.DecryptInput{KeyId: ptr(md.KeyId), CiphertextBlob: ct})
	wantCode(t, err, kms.CodeInvalidKeyUsage)
	_, err = e.svc.Decrypt(e.ctx, &kms.DecryptInput{CiphertextBlob: ct, EncryptionAlgorithm: ptr("RSAES_OAEP_SHA_256")})
	wantCode(t, err, kms.CodeInvalidCiphertext)
	_, err = e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("x")})
	wantCode(t, err, kms.CodeInvalidKeyUsage)
	_, err = e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("x"), EncryptionAlgorithm: ptr("RSAES_OAEP_SHA_1"), EncryptionContext: map[string]string{"a": "b"}})
	wantCode(t, err, kms.CodeValidation)
	_, err = e.svc.Sign(e.ctx, &kms.SignInput{KeyId: ptr(md.KeyId), Message: []byte("m"), SigningAlgorithm: ptr("RSASSA_PSS_SHA_256")})
	if kerr := wantCode(t, err, kms.CodeInvalidKeyUsage); kerr.Message != md.Arn+" key usage is ENCRYPT_DECRYPT which is not valid for Sign." {
		t.Fatalf("message %q", kerr.Message)
	}
}

func testMacRow(t *testing.T, e *env, row keyRow, md *kms.KeyMetadata) {
	alg := row.mac[0]
	message := []byte("message to authenticate")
	out, err := e.svc.GenerateMac(e.ctx, &kms.GenerateMacInput{KeyId: ptr(md.KeyId), Message: message, MacAlgorithm: ptr(alg)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Mac) != algHash(alg).Size() || out.MacAlgorithm != alg || out.KeyId != md.Arn {
		t.Fatalf("GenerateMac %+v", out)
	}
	v, err := e.svc.VerifyMac(e.ctx, &kms.VerifyMacInput{KeyId: ptr(md.KeyId), Message: message, Mac: out.Mac, MacAlgorithm: ptr(alg)})
	if err != nil || !v.MacValid {
		t.Fatalf("VerifyMac %+v, %v", v, err)
	}
	bad := bytes.Clone(out.Mac)
	bad[0] ^= 1
	_, err = e.svc.VerifyMac(e.ctx, &kms.VerifyMacInput{KeyId: ptr(md.KeyId), Message: message, Mac: bad, MacAlgorithm: ptr(alg)})
	if kerr := wantCode(t, err, kms.CodeKMSInvalidMac); kerr.Message != "" {
		t.Fatalf("KMSInvalidMacException has a message %q", kerr.Message)
	}
	_, err = e.svc.VerifyMac(e.ctx, &kms.VerifyMacInput{KeyId: ptr(md.KeyId), Message: []byte("other"), Mac: out.Mac, MacAlgorithm: ptr(alg)})
	wantCode(t, err, kms.CodeKMSInvalidMac)
	other := "HMAC_SHA_256"
	if alg == other {
		other = "HMAC_SHA_224"
	}
	_, err = e.svc.GenerateMac(e.ctx, &kms.GenerateMacInput{KeyId: ptr(md.KeyId), Message: message, MacAlgorithm: ptr(other)})
	if kerr := wantCode(t, err, kms.CodeInvalidKeyUsage); kerr.Message != fmt.Sprintf("Algorithm %s is incompatible with key spec %s.", other, row.spec) {
		t.Fatalf("message %q", kerr.Message)
	}
	_, err = e.svc.GenerateMac(e.ctx, &kms.GenerateMacInput{KeyId: ptr(md.KeyId), Message: make([]byte, 4097), MacAlgorithm: ptr(alg)})
	wantCode(t, err, kms.CodeValidation)
	_, err = e.svc.GetPublicKey(e.ctx, &kms.GetPublicKeyInput{KeyId: ptr(md.KeyId)})
	wantCode(t, err, kms.CodeUnsupportedOperation)
	_, err = e.svc.Sign(e.ctx, &kms.SignInput{KeyId: ptr(md.KeyId), Message: message, SigningAlgorithm: ptr("ECDSA_SHA_256")})
	wantCode(t, err, kms.CodeInvalidKeyUsage)
}

func TestAsymmetricKeysFake(t *testing.T) {
	t.Parallel()
	runKeyRows(t, newEnv(t, fakeDevice), false)
}

func TestAsymmetricKeysSoftHSM(t *testing.T) {
	t.Parallel()
	runKeyRows(t, newEnv(t, softHSMDevice), true)
}

func TestCreateKeySpecUsageRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fakeDevice)
	for _, tc := range []struct {
		spec, usage string
		code        kms.Code
		message     string
	}{
		{"RSA_2048", "", kms.CodeValidation, "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."},
		{"HMAC_256", "", kms.CodeValidation, "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."},
		{"RSA_2048", "KEY_AGREEMENT", kms.CodeValidation, "KeyUsage KEY_AGREEMENT is not compatible with KeySpec RSA_2048"},
		{"RSA_2048", "GENERATE_VERIFY_MAC", kms.CodeValidation, "KeyUsage GENERATE_VERIFY_MAC is not compatible with KeySpec RSA_2048"},
		{"ECC_NIST_P256", "ENCRYPT_DECRYPT", kms.CodeValidation, "KeyUsage ENCRYPT_DECRYPT is not compatible with KeySpec ECC_NIST_P256"},
		{"ECC_SECG_P256K1", "KEY_AGREEMENT", kms.CodeValidation, "KeyUsage KEY_AGREEMENT is not compatible with KeySpec ECC_SECG_P256K1"},
		{"HMAC_512", "SIGN_VERIFY", kms.CodeValidation, "KeyUsage SIGN_VERIFY is not compatible with KeySpec HMAC_512"},
		{"SYMMETRIC_DEFAULT", "SIGN_VERIFY", kms.CodeValidation, "KeyUsage SIGN_VERIFY is not compatible with KeySpec SYMMETRIC_DEFAULT"},
		{"ECC_NIST_P256", "KEY_AGREEMENT", kms.CodeUnsupportedOperation, ""},
		{"ECC_NIST_EDWARDS25519", "SIGN_VERIFY", kms.CodeUnsupportedOperation, ""},
	} {
		in := &kms.CreateKeyInput{KeySpec: ptr(tc.spec)}
		if tc.usage != "" {
			in.KeyUsage = ptr(tc.usage)
		}
		_, err := e.svc.CreateKey(e.ctx, in)
		kerr := wantCode(t, err, tc.code)
		if tc.message != "" && kerr.Message != tc.message {
			t.Errorf("%s/%s: message %q, want %q", tc.spec, tc.usage, kerr.Message, tc.message)
		}
	}
	// The deprecated CustomerMasterKeySpec works like KeySpec.
	out, err := e.svc.CreateKey(e.ctx, &kms.CreateKeyInput{CustomerMasterKeySpec: ptr("ECC_NIST_P256"), KeyUsage: ptr("SIGN_VERIFY")})
	if err != nil || out.KeyMetadata.KeySpec != "ECC_NIST_P256" {
		t.Fatalf("CustomerMasterKeySpec: %v", err)
	}
	// Symmetric keys are unchanged.
	md := e.createKey(t)
	if !slices.Equal(md.EncryptionAlgorithms, []string{"SYMMETRIC_DEFAULT"}) || md.SigningAlgorithms != nil || md.CurrentKeyMaterialId == "" {
		t.Fatalf("symmetric metadata %+v", md)
	}
	_, err = e.svc.GetPublicKey(e.ctx, &kms.GetPublicKeyInput{KeyId: ptr(md.KeyId)})
	wantCode(t, err, kms.CodeUnsupportedOperation)
	_, err = e.svc.Sign(e.ctx, &kms.SignInput{KeyId: ptr(md.KeyId), Message: []byte("m"), SigningAlgorithm: ptr("ECDSA_SHA_256")})
	if kerr := wantCode(t, err, kms.CodeInvalidKeyUsage); kerr.Message != md.Arn+" key usage is ENCRYPT_DECRYPT which is not valid for Sign." {
		t.Fatalf("message %q", kerr.Message)
	}
}

// TestDataKeyPairs checks every pair spec: the public key matches the
// private key, the encrypted private key decrypts (under its encryption
// context) to the same PKCS#8 bytes, and the refusals.
func TestDataKeyPairs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fakeDevice)
	cmk := e.createKey(t)
	ctxMap := map[string]string{"purpose": "test"}
	for _, spec := range []string{"RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521", "ECC_SECG_P256K1", "ECC_NIST_EDWARDS25519"} {
		t.Run(spec, func(t *testing.T) {
			t.Parallel()
			out, err := e.svc.GenerateDataKeyPair(e.ctx, &kms.GenerateDataKeyPairInput{KeyId: ptr(cmk.KeyId), KeyPairSpec: ptr(spec), EncryptionContext: ctxMap})
			if err != nil {
				t.Fatal(err)
			}
			if out.KeyPairSpec != spec || out.KeyId != cmk.Arn || out.KeyMaterialId == "" {
				t.Fatalf("output %s %s %s", out.KeyPairSpec, out.KeyId, out.KeyMaterialId)
			}
			dec, err := e.svc.Decrypt(e.ctx, &kms.DecryptInput{CiphertextBlob: out.PrivateKeyCiphertextBlob, EncryptionContext: ctxMap})
			if err != nil || !bytes.Equal(dec.Plaintext, out.PrivateKeyPlaintext) {
				t.Fatalf("Decrypt of the private key blob: %v", err)
			}
			msg := []byte("pair check")
			digest := sha256.Sum256(msg)
			if spec == "ECC_SECG_P256K1" {
				var p8 struct {
					Version    int
					Algorithm  struct{ Algorithm, Curve asn1.ObjectIdentifier }
					PrivateKey []byte
				}
				if rest, err := asn1.Unmarshal(out.PrivateKeyPlaintext, &p8); err != nil || len(rest) != 0 {
					t.Fatalf("PKCS#8: %v", err)
				}
				var ec struct {
					Version    int
					PrivateKey []byte
					PublicKey  asn1.BitString `asn1:"optional,explicit,tag:1"`
				}
				if _, err := asn1.Unmarshal(p8.PrivateKey, &ec); err != nil || len(ec.PrivateKey) != 32 {
					t.Fatalf("ECPrivateKey: %v", err)
				}
				priv := secp256k1.PrivKeyFromBytes(ec.PrivateKey)
				sig := secpecdsa.Sign(priv, digest[:]).Serialize()
				goVerify(t, spec, out.PublicKey, "ECDSA_SHA_256", msg, sig)
				if w, err := e.svc.GenerateDataKeyPairWithoutPlaintext(e.ctx, &kms.GenerateDataKeyPairInput{KeyId: ptr(cmk.KeyId), KeyPairSpec: ptr(spec)}); err != nil || len(w.PublicKey) == 0 {
					t.Fatal(err)
				}
				return
			}
			priv, err := x509.ParsePKCS8PrivateKey(out.PrivateKeyPlaintext)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			if !priv.(interface{ Public() crypto.PublicKey }).Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
				t.Fatal("public key does not match the private key")
			}
			if k, ok := priv.(ed25519.PrivateKey); ok && !ed25519.Verify(pub.(ed25519.PublicKey), msg, ed25519.Sign(k, msg)) {
				t.Fatal("ed25519 pair does not work")
			}
			w, err := e.svc.GenerateDataKeyPairWithoutPlaintext(e.ctx, &kms.GenerateDataKeyPairInput{KeyId: ptr(cmk.KeyId), KeyPairSpec: ptr(spec)})
			if err != nil || len(w.PublicKey) == 0 || len(w.PrivateKeyCiphertextBlob) == 0 {
				t.Fatalf("WithoutPlaintext: %v", err)
			}
		})
	}
	t.Run("Refusals", func(t *testing.T) {
		_, err := e.svc.GenerateDataKeyPair(e.ctx, &kms.GenerateDataKeyPairInput{KeyId: ptr(cmk.KeyId)})
		wantCode(t, err, kms.CodeValidation)
		_, err = e.svc.GenerateDataKeyPair(e.ctx, &kms.GenerateDataKeyPairInput{KeyId: ptr(cmk.KeyId), KeyPairSpec: ptr("RSA_1024")})
		wantCode(t, err, kms.CodeValidation)
		_, err = e.svc.GenerateDataKeyPair(e.ctx, &kms.GenerateDataKeyPairInput{KeyId: ptr(cmk.KeyId), KeyPairSpec: ptr("SM2")})
		wantCode(t, err, kms.CodeUnsupportedOperation)
		_, err = e.svc.GenerateDataKeyPair(e.ctx, &kms.GenerateDataKeyPairInput{KeyId: ptr(cmk.KeyId), KeyPairSpec: ptr("ECC_NIST_P256"), DryRun: ptr(true)})
		wantCode(t, err, kms.CodeDryRun)
		ec := e.createAsymmetric(t, "ECC_NIST_P256", "SIGN_VERIFY")
		_, err = e.svc.GenerateDataKeyPair(e.ctx, &kms.GenerateDataKeyPairInput{KeyId: ptr(ec.KeyId), KeyPairSpec: ptr("ECC_NIST_P256")})
		wantCode(t, err, kms.CodeInvalidKeyUsage)
		rsaKey := e.createAsymmetric(t, "RSA_2048", "ENCRYPT_DECRYPT")
		_, err = e.svc.GenerateDataKeyPairWithoutPlaintext(e.ctx, &kms.GenerateDataKeyPairInput{KeyId: ptr(rsaKey.KeyId), KeyPairSpec: ptr("ECC_NIST_P256")})
		wantCode(t, err, kms.CodeInvalidKeyUsage)
	})
}

// TestReEncryptAcrossKeyTypes moves a plaintext symmetric -> RSA -> RSA
// (other algorithm) -> symmetric and checks it arrives unchanged.
func TestReEncryptAcrossKeyTypes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fakeDevice)
	sym := e.createKey(t)
	rsa1 := e.createAsymmetric(t, "RSA_2048", "ENCRYPT_DECRYPT")
	rsa2 := e.createAsymmetric(t, "RSA_3072", "ENCRYPT_DECRYPT")
	plaintext := []byte("travelling plaintext")
	enc, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(sym.KeyId), Plaintext: plaintext, EncryptionContext: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	r1, err := e.svc.ReEncrypt(e.ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: map[string]string{"k": "v"},
		DestinationKeyId: ptr(rsa1.KeyId), DestinationEncryptionAlgorithm: ptr("RSAES_OAEP_SHA_256")})
	if err != nil {
		t.Fatal(err)
	}
	if r1.SourceKeyId != sym.Arn || r1.KeyId != rsa1.Arn || r1.SourceEncryptionAlgorithm != "SYMMETRIC_DEFAULT" || r1.DestinationEncryptionAlgorithm != "RSAES_OAEP_SHA_256" || r1.SourceKeyMaterialId == "" || r1.DestinationKeyMaterialId != "" {
		t.Fatalf("sym -> RSA output %+v", r1)
	}
	r2, err := e.svc.ReEncrypt(e.ctx, &kms.ReEncryptInput{CiphertextBlob: r1.CiphertextBlob, SourceKeyId: ptr(rsa1.KeyId), SourceEncryptionAlgorithm: ptr("RSAES_OAEP_SHA_256"),
		DestinationKeyId: ptr(rsa2.KeyId), DestinationEncryptionAlgorithm: ptr("RSAES_OAEP_SHA_1")})
	if err != nil {
		t.Fatal(err)
	}
	r3, err := e.svc.ReEncrypt(e.ctx, &kms.ReEncryptInput{CiphertextBlob: r2.CiphertextBlob, SourceKeyId: ptr(rsa2.KeyId), SourceEncryptionAlgorithm: ptr("RSAES_OAEP_SHA_1"),
		DestinationKeyId: ptr(sym.KeyId), DestinationEncryptionContext: map[string]string{"new": "ctx"}})
	if err != nil {
		t.Fatal(err)
	}
	if r3.SourceKeyId != rsa2.Arn || r3.SourceEncryptionAlgorithm != "RSAES_OAEP_SHA_1" || r3.DestinationKeyMaterialId == "" {
		t.Fatalf("RSA -> sym output %+v", r3)
	}
	dec, err := e.svc.Decrypt(e.ctx, &kms.DecryptInput{CiphertextBlob: r3.CiphertextBlob, EncryptionContext: map[string]string{"new": "ctx"}})
	if err != nil || !bytes.Equal(dec.Plaintext, plaintext) {
		t.Fatalf("final Decrypt: %v", err)
	}
	// Asymmetric source without its algorithm, or with a context, fails.
	_, err = e.svc.ReEncrypt(e.ctx, &kms.ReEncryptInput{CiphertextBlob: r1.CiphertextBlob, SourceKeyId: ptr(rsa1.KeyId), DestinationKeyId: ptr(sym.KeyId)})
	wantCode(t, err, kms.CodeInvalidKeyUsage)
	_, err = e.svc.ReEncrypt(e.ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: map[string]string{"k": "v"},
		DestinationKeyId: ptr(rsa1.KeyId), DestinationEncryptionAlgorithm: ptr("RSAES_OAEP_SHA_1"), DestinationEncryptionContext: map[string]string{"a": "b"}})
	wantCode(t, err, kms.CodeValidation)
	// A plaintext too large for the RSA destination is refused like Encrypt.
	big, _ := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(sym.KeyId), Plaintext: make([]byte, 300)})
	_, err = e.svc.ReEncrypt(e.ctx, &kms.ReEncryptInput{CiphertextBlob: big.CiphertextBlob, DestinationKeyId: ptr(rsa1.KeyId), DestinationEncryptionAlgorithm: ptr("RSAES_OAEP_SHA_1")})
	wantCode(t, err, kms.CodeValidation)
}

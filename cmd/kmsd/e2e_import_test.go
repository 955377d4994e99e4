package main

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"hash"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"hsmkms/hsm/aeskw"
	"hsmkms/kms/ciphertext"
)

// wrapKeyMaterial wraps material with the public key as the AWS docs tell a
// client to, using only Go's crypto (and RFC 5649 for the RSA-AES forms).
func wrapKeyMaterial(t *testing.T, spki []byte, alg types.AlgorithmSpec, material []byte) []byte {
	t.Helper()
	pub, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		t.Fatal(err)
	}
	var h hash.Hash = sha1.New()
	if alg == types.AlgorithmSpecRsaesOaepSha256 || alg == types.AlgorithmSpecRsaAesKeyWrapSha256 {
		h = sha256.New()
	}
	if alg == types.AlgorithmSpecRsaesOaepSha1 || alg == types.AlgorithmSpecRsaesOaepSha256 {
		out, err := rsa.EncryptOAEP(h, rand.Reader, pub.(*rsa.PublicKey), material, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	kek := make([]byte, 32)
	rand.Read(kek)
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

// openWithKnownKey decrypts a service ciphertext blob with Go's AES-GCM and
// the key material the test imported: proof that the imported key, and no
// other, is the one the service used.
func openWithKnownKey(t *testing.T, material, blob []byte, ec map[string]string) []byte {
	t.Helper()
	parsed, err := ciphertext.Parse(blob)
	if err != nil {
		t.Fatal(err)
	}
	header, err := parsed.Header()
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(material)
	gcm, _ := cipher.NewGCM(block)
	pt, err := gcm.Open(nil, parsed.IV, parsed.Sealed, ciphertext.AAD(header, ec))
	if err != nil {
		t.Fatalf("the blob does not open with the imported key: %v", err)
	}
	return pt
}

// TestE2EImportKeyMaterial drives the whole import flow through the AWS SDK
// against kmsd on SoftHSM2.
func TestE2EImportKeyMaterial(t *testing.T) {
	st := newE2EState(t)
	conf := filepath.Join(st.dir, "kmsd.yaml")
	if err := os.WriteFile(conf, []byte("rotation_check_interval: 200ms\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := st.start(t, "-config", conf)
	c, ctx := s.client, t.Context()

	newExternal := func() string {
		out, err := c.CreateKey(ctx, &awskms.CreateKeyInput{Origin: types.OriginTypeExternal, Description: aws.String("imported")})
		if err != nil {
			t.Fatal(err)
		}
		md := out.KeyMetadata
		if md.KeyState != types.KeyStatePendingImport || md.Enabled || md.Origin != types.OriginTypeExternal || md.ExpirationModel != "" {
			t.Fatalf("new EXTERNAL key: %+v", md)
		}
		return *md.KeyId
	}
	params := func(keyID string, alg types.AlgorithmSpec) *awskms.GetParametersForImportOutput {
		t.Helper()
		p, err := c.GetParametersForImport(ctx, &awskms.GetParametersForImportInput{
			KeyId: aws.String(keyID), WrappingAlgorithm: alg, WrappingKeySpec: types.WrappingKeySpecRsa2048})
		if err != nil {
			t.Fatalf("GetParametersForImport(%s): %v", alg, err)
		}
		if *p.KeyId != s.keyARN(keyID) || p.ParametersValidTo == nil || !within(*p.ParametersValidTo, time.Now().Add(24*time.Hour), time.Minute) {
			t.Fatalf("parameters: %+v", p)
		}
		return p
	}

	// Every algorithm SoftHSM2 2.6.1 can unwrap inside the token.
	for _, alg := range []types.AlgorithmSpec{types.AlgorithmSpecRsaesOaepSha1, types.AlgorithmSpecRsaAesKeyWrapSha1} {
		t.Run(string(alg), func(t *testing.T) {
			keyID := newExternal()
			// A 128-bit key is refused, also where the token does not
			// report the length of what it unwrapped (SoftHSM, plain
			// OAEP), and the key stays waiting for its material.
			short := make([]byte, 16)
			rand.Read(short)
			p := params(keyID, alg)
			_, err := c.ImportKeyMaterial(ctx, &awskms.ImportKeyMaterialInput{
				KeyId: aws.String(keyID), ImportToken: p.ImportToken,
				EncryptedKeyMaterial: wrapKeyMaterial(t, p.PublicKey, alg, short),
				ExpirationModel:      types.ExpirationModelTypeKeyMaterialDoesNotExpire,
			})
			expectErr[*types.InvalidCiphertextException](t, err, "InvalidCiphertextException",
				"The encrypted key material could not be unwrapped with the wrapping key and algorithm of the import token, or it is not a 256-bit key.")
			if desc, err := c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String(keyID)}); err != nil || desc.KeyMetadata.KeyState != types.KeyStatePendingImport {
				t.Fatalf("after a 128-bit import: %+v, %v", desc, err)
			}

			material := make([]byte, 32)
			rand.Read(material)
			p = params(keyID, alg)
			imp, err := c.ImportKeyMaterial(ctx, &awskms.ImportKeyMaterialInput{
				KeyId: aws.String(keyID), ImportToken: p.ImportToken,
				EncryptedKeyMaterial: wrapKeyMaterial(t, p.PublicKey, alg, material),
				ExpirationModel:      types.ExpirationModelTypeKeyMaterialDoesNotExpire,
			})
			if err != nil {
				t.Fatalf("ImportKeyMaterial: %v", err)
			}
			desc, _ := c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String(keyID)})
			md := desc.KeyMetadata
			if md.KeyState != types.KeyStateEnabled || md.ExpirationModel != types.ExpirationModelTypeKeyMaterialDoesNotExpire || md.ValidTo != nil ||
				md.Origin != types.OriginTypeExternal || aws.ToString(md.CurrentKeyMaterialId) != aws.ToString(imp.KeyMaterialId) {
				t.Fatalf("after import: %+v", md)
			}
			ec := map[string]string{"purpose": "import test"}
			enc, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("secret"), EncryptionContext: ec})
			if err != nil {
				t.Fatal(err)
			}
			if pt := openWithKnownKey(t, material, enc.CiphertextBlob, ec); string(pt) != "secret" {
				t.Fatalf("plaintext %q", pt)
			}
			// The import token was used up with its wrapping key.
			_, err = c.ImportKeyMaterial(ctx, &awskms.ImportKeyMaterialInput{KeyId: aws.String(keyID), ImportToken: p.ImportToken,
				EncryptedKeyMaterial: wrapKeyMaterial(t, p.PublicKey, alg, material), ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire})
			expectErr[*types.InvalidImportTokenException](t, err, "InvalidImportTokenException", anyMessage)
		})
	}

	// The algorithms the token cannot do are refused, never done in memory.
	keyID := newExternal()
	for _, alg := range []types.AlgorithmSpec{types.AlgorithmSpecRsaesOaepSha256, types.AlgorithmSpecRsaAesKeyWrapSha256} {
		_, err := c.GetParametersForImport(ctx, &awskms.GetParametersForImportInput{
			KeyId: aws.String(keyID), WrappingAlgorithm: alg, WrappingKeySpec: types.WrappingKeySpecRsa2048})
		expectErr[*types.UnsupportedOperationException](t, err, "UnsupportedOperationException", anyMessage)
	}
	// A key of origin AWS_KMS has no import.
	kmsKey, _ := c.CreateKey(ctx, &awskms.CreateKeyInput{})
	_, err := c.GetParametersForImport(ctx, &awskms.GetParametersForImportInput{
		KeyId: kmsKey.KeyMetadata.KeyId, WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha1, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	expectErr[*types.UnsupportedOperationException](t, err, "UnsupportedOperationException",
		s.keyARN(*kmsKey.KeyMetadata.KeyId)+" origin is AWS_KMS which is not valid for this operation.")

	// Expiry, deletion and re-import on one key.
	material := make([]byte, 32)
	rand.Read(material)
	importInto := func(m []byte, model types.ExpirationModelType, validTo *time.Time) error {
		p := params(keyID, types.AlgorithmSpecRsaesOaepSha1)
		_, err := c.ImportKeyMaterial(ctx, &awskms.ImportKeyMaterialInput{KeyId: aws.String(keyID), ImportToken: p.ImportToken,
			EncryptedKeyMaterial: wrapKeyMaterial(t, p.PublicKey, types.AlgorithmSpecRsaesOaepSha1, m), ExpirationModel: model, ValidTo: validTo})
		return err
	}
	// A token for another key is refused.
	other := newExternal()
	po := params(other, types.AlgorithmSpecRsaesOaepSha1)
	_, err = c.ImportKeyMaterial(ctx, &awskms.ImportKeyMaterialInput{KeyId: aws.String(keyID), ImportToken: po.ImportToken,
		EncryptedKeyMaterial: wrapKeyMaterial(t, po.PublicKey, types.AlgorithmSpecRsaesOaepSha1, material),
		ExpirationModel:      types.ExpirationModelTypeKeyMaterialDoesNotExpire})
	expectErr[*types.InvalidImportTokenException](t, err, "InvalidImportTokenException", anyMessage)
	err = importInto(material, types.ExpirationModelTypeKeyMaterialExpires, nil)
	expectErr[*smithy.GenericAPIError](t, err, "ValidationException", "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES")

	validTo := time.Now().Add(3 * time.Second)
	if err := importInto(material, types.ExpirationModelTypeKeyMaterialExpires, &validTo); err != nil {
		t.Fatal(err)
	}
	desc, _ := c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String(keyID)})
	if desc.KeyMetadata.ExpirationModel != types.ExpirationModelTypeKeyMaterialExpires || desc.KeyMetadata.ValidTo == nil ||
		!within(*desc.KeyMetadata.ValidTo, validTo, time.Second) {
		t.Fatalf("expiring import: %+v", desc.KeyMetadata)
	}
	enc, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("before expiry")})
	if err != nil {
		t.Fatal(err)
	}
	// The scheduler deletes the material at ValidTo.
	deadline := time.Now().Add(15 * time.Second)
	for {
		desc, _ = c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String(keyID)})
		if desc.KeyMetadata.KeyState == types.KeyStatePendingImport {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("material did not expire: %+v", desc.KeyMetadata)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, err = c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	expectErr[*types.KMSInvalidStateException](t, err, "KMSInvalidStateException", s.keyARN(keyID)+" is pending import.")

	// Different material is refused; the same material brings the key and
	// its old ciphertexts back.
	different := make([]byte, 32)
	rand.Read(different)
	err = importInto(different, types.ExpirationModelTypeKeyMaterialDoesNotExpire, nil)
	expectErr[*types.IncorrectKeyMaterialException](t, err, "IncorrectKeyMaterialException", anyMessage)
	if err := importInto(material, types.ExpirationModelTypeKeyMaterialDoesNotExpire, nil); err != nil {
		t.Fatal(err)
	}
	dec, err := c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	if err != nil || !bytes.Equal(dec.Plaintext, []byte("before expiry")) {
		t.Fatalf("old ciphertext after re-import: %v", err)
	}
	// Different material while the material is present is refused too.
	err = importInto(different, types.ExpirationModelTypeKeyMaterialDoesNotExpire, nil)
	expectErr[*types.IncorrectKeyMaterialException](t, err, "IncorrectKeyMaterialException", anyMessage)

	// DeleteImportedKeyMaterial: PendingImport, and a second call finds none.
	del, err := c.DeleteImportedKeyMaterial(ctx, &awskms.DeleteImportedKeyMaterialInput{KeyId: aws.String(keyID)})
	if err != nil || *del.KeyId != s.keyARN(keyID) {
		t.Fatalf("DeleteImportedKeyMaterial: %+v, %v", del, err)
	}
	desc, _ = c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String(keyID)})
	if desc.KeyMetadata.KeyState != types.KeyStatePendingImport || desc.KeyMetadata.Enabled {
		t.Fatalf("after deletion: %+v", desc.KeyMetadata)
	}
	_, err = c.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("x")})
	expectErr[*types.KMSInvalidStateException](t, err, "KMSInvalidStateException", s.keyARN(keyID)+" is pending import.")
	_, err = c.DeleteImportedKeyMaterial(ctx, &awskms.DeleteImportedKeyMaterialInput{KeyId: aws.String(keyID)})
	expectErr[*types.KMSInvalidStateException](t, err, "KMSInvalidStateException", anyMessage)
}

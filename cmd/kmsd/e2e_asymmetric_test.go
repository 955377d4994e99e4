package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
)

// TestE2EAsymmetric drives every asymmetric and HMAC operation through the
// official AWS SDK for Go v2 against a real kmsd on SoftHSM2, including the
// errors clients act on: InvalidKeyUsageException,
// KMSInvalidSignatureException and KMSInvalidMacException.
func TestE2EAsymmetric(t *testing.T) {
	st := newE2EState(t)
	s := st.start(t)
	c := s.client
	ctx := t.Context()
	create := func(spec types.KeySpec, usage types.KeyUsageType) *types.KeyMetadata {
		out, err := c.CreateKey(ctx, &awskms.CreateKeyInput{KeySpec: spec, KeyUsage: usage})
		if err != nil {
			t.Fatalf("CreateKey %s %s: %v", spec, usage, err)
		}
		return out.KeyMetadata
	}
	ec := create(types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
	rsaSign := create(types.KeySpecRsa2048, types.KeyUsageTypeSignVerify)
	rsaEnc := create(types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt)
	mac := create(types.KeySpecHmac256, types.KeyUsageTypeGenerateVerifyMac)
	sym, err := c.CreateKey(ctx, &awskms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("DescribeKey", func(t *testing.T) {
		out, err := c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: ec.KeyId})
		if err != nil {
			t.Fatal(err)
		}
		md := out.KeyMetadata
		if md.KeySpec != types.KeySpecEccNistP256 || len(md.SigningAlgorithms) != 1 || md.SigningAlgorithms[0] != types.SigningAlgorithmSpecEcdsaSha256 || md.EncryptionAlgorithms != nil || md.MacAlgorithms != nil {
			t.Fatalf("metadata %+v", md)
		}
		if len(mac.MacAlgorithms) != 1 || mac.MacAlgorithms[0] != types.MacAlgorithmSpecHmacSha256 {
			t.Fatalf("HMAC key MacAlgorithms %v", mac.MacAlgorithms)
		}
		if len(rsaEnc.EncryptionAlgorithms) != 2 || len(rsaSign.SigningAlgorithms) != 6 {
			t.Fatalf("RSA algorithms %v %v", rsaEnc.EncryptionAlgorithms, rsaSign.SigningAlgorithms)
		}
	})

	t.Run("SignVerifyGetPublicKey", func(t *testing.T) {
		msg := []byte("signed through the SDK")
		for _, tc := range []struct {
			key *types.KeyMetadata
			alg types.SigningAlgorithmSpec
		}{{ec, types.SigningAlgorithmSpecEcdsaSha256}, {rsaSign, types.SigningAlgorithmSpecRsassaPssSha256}, {rsaSign, types.SigningAlgorithmSpecRsassaPkcs1V15Sha256}} {
			sig, err := c.Sign(ctx, &awskms.SignInput{KeyId: tc.key.KeyId, Message: msg, SigningAlgorithm: tc.alg})
			if err != nil {
				t.Fatalf("Sign %s: %v", tc.alg, err)
			}
			pub, err := c.GetPublicKey(ctx, &awskms.GetPublicKeyInput{KeyId: tc.key.KeyId})
			if err != nil {
				t.Fatal(err)
			}
			pk, err := x509.ParsePKIXPublicKey(pub.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			digest := sha256.Sum256(msg)
			switch k := pk.(type) {
			case *ecdsa.PublicKey:
				if !ecdsa.VerifyASN1(k, digest[:], sig.Signature) {
					t.Fatal("Go does not verify the ECDSA signature")
				}
			case *rsa.PublicKey:
				if tc.alg == types.SigningAlgorithmSpecRsassaPssSha256 {
					err = rsa.VerifyPSS(k, crypto.SHA256, digest[:], sig.Signature, &rsa.PSSOptions{SaltLength: 32})
				} else {
					err = rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig.Signature)
				}
				if err != nil {
					t.Fatalf("Go does not verify %s: %v", tc.alg, err)
				}
			}
			v, err := c.Verify(ctx, &awskms.VerifyInput{KeyId: tc.key.KeyId, Message: digest[:], MessageType: types.MessageTypeDigest, Signature: sig.Signature, SigningAlgorithm: tc.alg})
			if err != nil || !v.SignatureValid {
				t.Fatalf("Verify: %v", err)
			}
			bad := bytes.Clone(sig.Signature)
			bad[len(bad)-2] ^= 1
			_, err = c.Verify(ctx, &awskms.VerifyInput{KeyId: tc.key.KeyId, Message: msg, Signature: bad, SigningAlgorithm: tc.alg})
			expectErr[*types.KMSInvalidSignatureException](t, err, "KMSInvalidSignatureException", "")
		}
		_, err := c.Sign(ctx, &awskms.SignInput{KeyId: ec.KeyId, Message: msg[:5], MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
		expectErr[*smithy.GenericAPIError](t, err, "ValidationException", "Digest is invalid length for algorithm ECDSA_SHA_256.")
		_, err = c.Sign(ctx, &awskms.SignInput{KeyId: ec.KeyId, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha384})
		expectErr[*types.InvalidKeyUsageException](t, err, "InvalidKeyUsageException", "Algorithm ECDSA_SHA_384 is incompatible with key spec ECC_NIST_P256.")
		_, err = c.Sign(ctx, &awskms.SignInput{KeyId: sym.KeyMetadata.KeyId, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
		expectErr[*types.InvalidKeyUsageException](t, err, "InvalidKeyUsageException", s.keyARN(aws.ToString(sym.KeyMetadata.KeyId))+" key usage is ENCRYPT_DECRYPT which is not valid for Sign.")
	})

	t.Run("RSAEncryptDecrypt", func(t *testing.T) {
		for _, alg := range []types.EncryptionAlgorithmSpec{types.EncryptionAlgorithmSpecRsaesOaepSha1, types.EncryptionAlgorithmSpecRsaesOaepSha256} {
			enc, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: rsaEnc.KeyId, Plaintext: []byte("secret"), EncryptionAlgorithm: alg})
			if err != nil {
				t.Fatalf("Encrypt %s: %v", alg, err)
			}
			dec, err := c.Decrypt(ctx, &awskms.DecryptInput{KeyId: rsaEnc.KeyId, CiphertextBlob: enc.CiphertextBlob, EncryptionAlgorithm: alg})
			if err != nil || string(dec.Plaintext) != "secret" || dec.EncryptionAlgorithm != alg {
				t.Fatalf("Decrypt %s: %v", alg, err)
			}
		}
		_, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: rsaEnc.KeyId, Plaintext: make([]byte, 191), EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
		expectErr[*smithy.GenericAPIError](t, err, "ValidationException", "Algorithm RSAES_OAEP_SHA_256 and key spec RSA_2048 cannot encrypt data larger than 190 bytes.")
		_, err = c.Encrypt(ctx, &awskms.EncryptInput{KeyId: ec.KeyId, Plaintext: []byte("x")})
		expectErr[*types.InvalidKeyUsageException](t, err, "InvalidKeyUsageException", s.keyARN(aws.ToString(ec.KeyId))+" key usage is SIGN_VERIFY which is not valid for Encrypt.")
		_, err = c.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: rsaEnc.KeyId, KeySpec: types.DataKeySpecAes256})
		expectErr[*types.InvalidKeyUsageException](t, err, "InvalidKeyUsageException", anyMessage)
		ct := make([]byte, 256)
		rand.Read(ct)
		ct[0] = 0
		_, err = c.Decrypt(ctx, &awskms.DecryptInput{KeyId: rsaEnc.KeyId, CiphertextBlob: ct, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
		expectErr[*types.InvalidCiphertextException](t, err, "InvalidCiphertextException", "")
	})

	t.Run("Mac", func(t *testing.T) {
		out, err := c.GenerateMac(ctx, &awskms.GenerateMacInput{KeyId: mac.KeyId, Message: []byte("m"), MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
		if err != nil || len(out.Mac) != 32 {
			t.Fatalf("GenerateMac: %v", err)
		}
		v, err := c.VerifyMac(ctx, &awskms.VerifyMacInput{KeyId: mac.KeyId, Message: []byte("m"), Mac: out.Mac, MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
		if err != nil || !v.MacValid {
			t.Fatalf("VerifyMac: %v", err)
		}
		out.Mac[0] ^= 1
		_, err = c.VerifyMac(ctx, &awskms.VerifyMacInput{KeyId: mac.KeyId, Message: []byte("m"), Mac: out.Mac, MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
		expectErr[*types.KMSInvalidMacException](t, err, "KMSInvalidMacException", "")
		_, err = c.GenerateMac(ctx, &awskms.GenerateMacInput{KeyId: mac.KeyId, Message: []byte("m"), MacAlgorithm: types.MacAlgorithmSpecHmacSha224})
		expectErr[*types.InvalidKeyUsageException](t, err, "InvalidKeyUsageException", "Algorithm HMAC_SHA_224 is incompatible with key spec HMAC_256.")
		_, err = c.GenerateMac(ctx, &awskms.GenerateMacInput{KeyId: rsaEnc.KeyId, Message: []byte("m"), MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
		expectErr[*types.InvalidKeyUsageException](t, err, "InvalidKeyUsageException", s.keyARN(aws.ToString(rsaEnc.KeyId))+" key usage is ENCRYPT_DECRYPT which is not valid for GenerateMac.")
	})

	t.Run("DataKeyPairs", func(t *testing.T) {
		out, err := c.GenerateDataKeyPair(ctx, &awskms.GenerateDataKeyPairInput{KeyId: sym.KeyMetadata.KeyId, KeyPairSpec: types.DataKeyPairSpecEccNistP256})
		if err != nil {
			t.Fatal(err)
		}
		dec, err := c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: out.PrivateKeyCiphertextBlob})
		if err != nil || !bytes.Equal(dec.Plaintext, out.PrivateKeyPlaintext) {
			t.Fatalf("Decrypt of the private key: %v", err)
		}
		if _, err := x509.ParsePKCS8PrivateKey(out.PrivateKeyPlaintext); err != nil {
			t.Fatal(err)
		}
		w, err := c.GenerateDataKeyPairWithoutPlaintext(ctx, &awskms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: sym.KeyMetadata.KeyId, KeyPairSpec: types.DataKeyPairSpecRsa2048})
		if err != nil || len(w.PublicKey) == 0 || w.KeyPairSpec != types.DataKeyPairSpecRsa2048 {
			t.Fatalf("WithoutPlaintext: %v", err)
		}
		_, err = c.GenerateDataKeyPair(ctx, &awskms.GenerateDataKeyPairInput{KeyId: ec.KeyId, KeyPairSpec: types.DataKeyPairSpecEccNistP256})
		expectErr[*types.InvalidKeyUsageException](t, err, "InvalidKeyUsageException", anyMessage)
	})

	t.Run("ReEncryptToRSA", func(t *testing.T) {
		enc, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: sym.KeyMetadata.KeyId, Plaintext: []byte("move me")})
		if err != nil {
			t.Fatal(err)
		}
		re, err := c.ReEncrypt(ctx, &awskms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: rsaEnc.KeyId, DestinationEncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha1})
		if err != nil {
			t.Fatal(err)
		}
		dec, err := c.Decrypt(ctx, &awskms.DecryptInput{KeyId: rsaEnc.KeyId, CiphertextBlob: re.CiphertextBlob, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha1})
		if err != nil || string(dec.Plaintext) != "move me" {
			t.Fatalf("Decrypt: %v", err)
		}
	})
}

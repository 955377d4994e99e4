package kms

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"hsmkms/hsm"

	"hsmkms/kms/policy"
)

// Data key pairs. Unlike a CMK, a data key pair is generated in the service
// with Go's crypto: it is returned to the caller (the private key in
// plaintext by GenerateDataKeyPair), so it is not HSM key material by
// design. Its private key is sealed under a symmetric CMK with the same
// path as Encrypt, so Decrypt of PrivateKeyCiphertextBlob returns the
// PKCS#8 DER bytes.

var dataKeyPairSpecs = []string{"RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384",
	"ECC_NIST_P521", "ECC_SECG_P256K1", "SM2", "ECC_NIST_EDWARDS25519"}

// newDataKeyPair returns (PKCS#8 DER private key, SPKI DER public key).
func newDataKeyPair(spec string) (private, public []byte, err error) {
	switch spec {
	case "RSA_2048", "RSA_3072", "RSA_4096":
		key, err := rsa.GenerateKey(rand.Reader, specTable[spec].bits)
		if err != nil {
			return nil, nil, err
		}
		return marshalPair(key, &key.PublicKey)
	case "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521":
		curve := map[string]elliptic.Curve{"ECC_NIST_P256": elliptic.P256(), "ECC_NIST_P384": elliptic.P384(), "ECC_NIST_P521": elliptic.P521()}[spec]
		key, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		return marshalPair(key, &key.PublicKey)
	case "ECC_NIST_EDWARDS25519":
		pub, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		return marshalPair(key, pub)
	case "ECC_SECG_P256K1":
		key, err := secp256k1.GeneratePrivateKey()
		if err != nil {
			return nil, nil, err
		}
		defer key.Zero()
		return secp256k1Pair(key)
	}
	return nil, nil, fmt.Errorf("no data key pair generator for %s", spec)
}

func marshalPair(private, public any) ([]byte, []byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(private)
	if err != nil {
		return nil, nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(public)
	if err != nil {
		clear(der)
		return nil, nil, err
	}
	return der, spki, nil
}

var (
	oidECPublicKey = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidSecp256k1   = asn1.ObjectIdentifier{1, 3, 132, 0, 10}
)

// secp256k1Pair encodes a secp256k1 key as PKCS#8 (RFC 5208 around the
// RFC 5915 ECPrivateKey, the layout openssl writes) and SPKI, by hand
// because Go's crypto/x509 does not know the curve.
func secp256k1Pair(key *secp256k1.PrivateKey) ([]byte, []byte, error) {
	point := key.PubKey().SerializeUncompressed()
	scalar := key.Key.Bytes()
	defer clear(scalar[:])
	inner, err := asn1.Marshal(struct {
		Version    int
		PrivateKey []byte
		PublicKey  asn1.BitString `asn1:"optional,explicit,tag:1"`
	}{1, scalar[:], asn1.BitString{Bytes: point, BitLength: 8 * len(point)}})
	if err != nil {
		return nil, nil, err
	}
	defer clear(inner)
	type algorithm struct {
		Algorithm asn1.ObjectIdentifier
		Curve     asn1.ObjectIdentifier
	}
	der, err := asn1.Marshal(struct {
		Version    int
		Algorithm  algorithm
		PrivateKey []byte
	}{0, algorithm{oidECPublicKey, oidSecp256k1}, inner})
	if err != nil {
		return nil, nil, err
	}
	spki, err := hsm.ECPublicKeySPKI(hsm.CurveSecp256k1, point)
	if err != nil {
		clear(der)
		return nil, nil, err
	}
	return der, spki, nil
}

// generateDataKeyPair validates the request, makes the pair and seals its
// private key under the symmetric CMK.
func (s *Service) generateDataKeyPair(ctx context.Context, in *GenerateDataKeyPairInput, operation string) (resolved, string, []byte, []byte, []byte, KeyVersion, error) {
	fail := func(err error) (resolved, string, []byte, []byte, []byte, KeyVersion, error) {
		return resolved{}, "", nil, nil, nil, KeyVersion{}, err
	}
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return fail(err)
	}
	if err := checkRecipient(in.Recipient); err != nil {
		return fail(err)
	}
	if in.KeyPairSpec == nil {
		return fail(validationf("Value null at 'keyPairSpec' failed to satisfy constraint: Member must not be null"))
	}
	spec, err := optionalEnum("keyPairSpec", in.KeyPairSpec, "", dataKeyPairSpecs)
	if err != nil {
		return fail(err)
	}
	a := cryptoAccess(operation, in.EncryptionContext, in.GrantTokens, nil)
	a.conds[policy.KeyDataKeyPairSpec] = []string{spec}
	r, err := s.resolveKeyFor(ctx, "keyId", in.KeyId, keyOrAlias, a)
	if err != nil {
		return fail(err)
	}
	if err := checkUsable(r); err != nil {
		return fail(err)
	}
	if err := checkSymmetricUse(r, nil, "", operation); err != nil {
		return fail(err)
	}
	if spec == "SM2" {
		return fail(Errorf(CodeUnsupportedOperation, "KeyPairSpec SM2 is only available in China Regions."))
	}
	if isTrue(in.DryRun) {
		return fail(errDryRun())
	}
	private, public, err := newDataKeyPair(spec)
	if err != nil {
		return fail(Internal(err))
	}
	blob, v, err := s.seal(ctx, r, private, in.EncryptionContext)
	if err != nil {
		clear(private)
		return fail(err)
	}
	return r, spec, private, public, blob, v, nil
}

// GenerateDataKeyPair returns a new key pair: the public key, the private
// key in plaintext, and the private key encrypted under a symmetric CMK.
func (s *Service) GenerateDataKeyPair(ctx context.Context, in *GenerateDataKeyPairInput) (*GenerateDataKeyPairOutput, error) {
	r, spec, private, public, blob, v, err := s.generateDataKeyPair(ctx, in, "GenerateDataKeyPair")
	if err != nil {
		return nil, err
	}
	return &GenerateDataKeyPairOutput{
		PrivateKeyCiphertextBlob: blob,
		PrivateKeyPlaintext:      private,
		PublicKey:                public,
		KeyId:                    r.arn,
		KeyPairSpec:              spec,
		KeyMaterialId:            materialID(r.key, v),
	}, nil
}

// GenerateDataKeyPairWithoutPlaintext is GenerateDataKeyPair without the
// plaintext private key.
func (s *Service) GenerateDataKeyPairWithoutPlaintext(ctx context.Context, in *GenerateDataKeyPairInput) (*GenerateDataKeyPairWithoutPlaintextOutput, error) {
	r, spec, private, public, blob, v, err := s.generateDataKeyPair(ctx, in, "GenerateDataKeyPairWithoutPlaintext")
	if err != nil {
		return nil, err
	}
	clear(private)
	return &GenerateDataKeyPairWithoutPlaintextOutput{
		PrivateKeyCiphertextBlob: blob,
		PublicKey:                public,
		KeyId:                    r.arn,
		KeyPairSpec:              spec,
		KeyMaterialId:            materialID(r.key, v),
	}, nil
}

package hsm

import (
	"context"
	"crypto"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	// The hashes SignParams and OAEP name must be linked in for crypto.Hash.New.
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
)

// AsymmetricDevice is what the key service needs for asymmetric and HMAC
// keys: key pairs and generic secrets generated inside the token, and the
// private-key operations on them. Public-key operations that need no secret
// (RSA encryption) are done by the caller with the public key; signature
// verification runs in the token on the public object so that a token can
// be the only verifier.
type AsymmetricDevice interface {
	// GenerateRSAKeyPair creates an RSA key pair of the given size (2048,
	// 3072 or 4096) with the backing id on both objects. The private key is
	// CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE true, CKA_EXTRACTABLE false and
	// may only sign (PairSign) or only decrypt (PairDecrypt). It returns the
	// DER SubjectPublicKeyInfo. ErrDuplicateID if the id is in use.
	GenerateRSAKeyPair(ctx context.Context, id []byte, label string, bits int, usage PairUsage) ([]byte, error)

	// GenerateECKeyPair creates a signing EC key pair on the curve, like
	// GenerateRSAKeyPair, and returns the DER SubjectPublicKeyInfo.
	GenerateECKeyPair(ctx context.Context, id []byte, label string, curve Curve) ([]byte, error)

	// GenerateHMACKey creates a generic secret of size bytes that can only
	// sign and verify (HMAC), with the same protection attributes.
	GenerateHMACKey(ctx context.Context, id []byte, label string, size int) error

	// PublicKey returns the DER SubjectPublicKeyInfo of a key pair.
	PublicKey(ctx context.Context, id []byte) ([]byte, error)

	// Sign signs a digest (computed by the caller with p.Hash) with the
	// private key. ECDSA signatures are DER (X9.62); RSA signatures are
	// PKCS#1 v1.5 over the DigestInfo or PSS with MGF1(p.Hash) and a salt
	// as long as the hash.
	Sign(ctx context.Context, id []byte, p SignParams, digest []byte) ([]byte, error)

	// Verify checks a signature made as Sign makes it, in the token, with
	// the public key. A signature that does not verify, or is malformed,
	// returns ErrInvalidSignature.
	Verify(ctx context.Context, id []byte, p SignParams, digest, signature []byte) error

	// DecryptOAEP decrypts RSAES-OAEP ciphertext (MGF1 with the same hash,
	// empty label). Every failure caused by the ciphertext returns
	// ErrDecryptFailed, with no detail of why.
	DecryptOAEP(ctx context.Context, id []byte, hash crypto.Hash, ciphertext []byte) ([]byte, error)

	// MAC computes HMAC(hash) of message with a generic-secret key.
	MAC(ctx context.Context, id []byte, hash crypto.Hash, message []byte) ([]byte, error)

	// VerifyMAC checks a MAC in the token; a mismatch returns ErrInvalidMAC.
	VerifyMAC(ctx context.Context, id []byte, hash crypto.Hash, message, mac []byte) error
}

// Errors of AsymmetricDevice.
var (
	// ErrInvalidSignature: the signature does not verify or is malformed.
	ErrInvalidSignature = errors.New("hsm: invalid signature")
	// ErrInvalidMAC: the MAC does not verify.
	ErrInvalidMAC = errors.New("hsm: invalid MAC")
	// ErrDecryptFailed: the ciphertext does not decrypt (bad padding, out
	// of range). Deliberately one error for every cause: telling them
	// apart would be a padding oracle.
	ErrDecryptFailed = errors.New("hsm: decryption failed")
	// ErrUnsupported: the parameters name something the device does not do.
	ErrUnsupported = errors.New("hsm: unsupported parameters")
)

// PairUsage is the one private-key operation an RSA key pair allows.
type PairUsage int

// RSA key pair usages.
const (
	PairSign PairUsage = iota + 1
	PairDecrypt
)

// Curve is an elliptic curve for ECDSA key pairs.
type Curve int

// Supported curves.
const (
	CurveP256 Curve = iota + 1
	CurveP384
	CurveP521
	CurveSecp256k1
)

// SignScheme is a signature scheme.
type SignScheme int

// Signature schemes.
const (
	SchemeECDSA SignScheme = iota + 1
	SchemeRSAPSS
	SchemeRSAPKCS1v15
)

// SignParams says how to sign or verify: the scheme, the hash the digest
// was made with, and for ECDSA the key's curve (which fixes the size of the
// raw r||s form the token uses).
type SignParams struct {
	Scheme SignScheme
	Hash   crypto.Hash
	Curve  Curve
}

// curveInfo describes a curve: its OID (CKA_EC_PARAMS is its DER), its
// field size in bytes and its group order.
type curveInfo struct {
	oid  asn1.ObjectIdentifier
	size int
	n    *big.Int
}

var oidECPublicKey = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}

func mustInt(hex string) *big.Int {
	n, ok := new(big.Int).SetString(hex, 16)
	if !ok {
		panic("hsm: bad curve constant")
	}
	return n
}

// curves holds the constants of each curve. The orders are from SEC 2 and
// FIPS 186-4; secp256k1 is written out because Go's crypto/elliptic does
// not know the curve.
var curves = map[Curve]curveInfo{
	CurveP256: {asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}, 32,
		mustInt("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")},
	CurveP384: {asn1.ObjectIdentifier{1, 3, 132, 0, 34}, 48,
		mustInt("ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973")},
	CurveP521: {asn1.ObjectIdentifier{1, 3, 132, 0, 35}, 66,
		mustInt("01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409")},
	CurveSecp256k1: {asn1.ObjectIdentifier{1, 3, 132, 0, 10}, 32,
		mustInt("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")},
}

func curveOf(c Curve) (curveInfo, error) {
	info, ok := curves[c]
	if !ok {
		return curveInfo{}, fmt.Errorf("%w: curve %d", ErrUnsupported, c)
	}
	return info, nil
}

// ECPublicKeySPKI builds the DER SubjectPublicKeyInfo of an EC public key
// from its uncompressed point (04||X||Y). It is written by hand because
// Go's crypto/x509 refuses secp256k1.
func ECPublicKeySPKI(c Curve, point []byte) ([]byte, error) {
	info, err := curveOf(c)
	if err != nil {
		return nil, err
	}
	if len(point) != 1+2*info.size || point[0] != 4 {
		return nil, fmt.Errorf("hsm: EC point is not an uncompressed point of the curve")
	}
	return asn1.Marshal(struct {
		Algorithm struct {
			Algorithm asn1.ObjectIdentifier
			Curve     asn1.ObjectIdentifier
		}
		PublicKey asn1.BitString
	}{
		Algorithm: struct {
			Algorithm asn1.ObjectIdentifier
			Curve     asn1.ObjectIdentifier
		}{oidECPublicKey, info.oid},
		PublicKey: asn1.BitString{Bytes: point, BitLength: 8 * len(point)},
	})
}

// hashLen returns the digest size of a hash the device supports.
func hashLen(h crypto.Hash) (int, error) {
	switch h {
	case crypto.SHA1, crypto.SHA224, crypto.SHA256, crypto.SHA384, crypto.SHA512:
		return h.Size(), nil
	}
	return 0, fmt.Errorf("%w: hash %v", ErrUnsupported, h)
}

// checkDigest rejects a digest whose length is not the hash's.
func checkDigest(p SignParams, digest []byte) error {
	n, err := hashLen(p.Hash)
	if err != nil {
		return err
	}
	if len(digest) != n {
		return fmt.Errorf("%w: digest is %d bytes, want %d for %v", ErrUnsupported, len(digest), n, p.Hash)
	}
	return nil
}

// digestInfoPrefix is the DER prefix of the PKCS#1 v1.5 DigestInfo for each
// hash (RFC 8017 section 9.2, note 1): CKM_RSA_PKCS signs DigestInfo||digest.
var digestInfoPrefix = map[crypto.Hash][]byte{
	crypto.SHA224: {0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00, 0x04, 0x1c},
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

func digestInfo(h crypto.Hash, digest []byte) ([]byte, error) {
	prefix, ok := digestInfoPrefix[h]
	if !ok {
		return nil, fmt.Errorf("%w: PKCS#1 v1.5 with %v", ErrUnsupported, h)
	}
	return append(append([]byte{}, prefix...), digest...), nil
}

package envelope

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"strings"

	"hsmkms/kms/envelope/format"
)

// PublicKeyContextKey is the encryption context key under which signed
// suites carry the verification key (base64 of the compressed point).
const PublicKeyContextKey = "aws-crypto-public-key"

// reservedPrefix is reserved for the ESDK's own context keys.
const reservedPrefix = "aws-crypto-"

// EncryptionMaterials are what a message is encrypted with. DataKey is
// secret; the struct redacts itself when formatted.
type EncryptionMaterials struct {
	Suite             *format.Suite
	EncryptionContext map[string]string
	DataKey           []byte
	EncryptedDataKeys []format.EDK
	SigningKey        *ecdsa.PrivateKey
}

// String never shows the data key or signing key.
func (m *EncryptionMaterials) String() string {
	return fmt.Sprintf("EncryptionMaterials{suite %s, %d EDKs}", m.Suite, len(m.EncryptedDataKeys))
}

// Clone returns a deep copy (the caching CMM hands out copies so that no
// caller can change a cached entry).
func (m *EncryptionMaterials) Clone() *EncryptionMaterials {
	c := *m
	c.EncryptionContext = maps.Clone(m.EncryptionContext)
	c.DataKey = append([]byte(nil), m.DataKey...)
	c.EncryptedDataKeys = append([]format.EDK(nil), m.EncryptedDataKeys...)
	return &c
}

// Validate refuses materials a message cannot be made with: the CMM interface
// is public, so a custom CMM's output is checked as the spec asks of the
// client (a signed suite needs its signing key, the data key its suite's
// length, a message at least one encrypted data key).
func (m *EncryptionMaterials) Validate() error {
	switch {
	case m == nil || m.Suite == nil:
		return newErr(KindInvalidArgument, "the CMM returned no materials or no suite")
	case len(m.DataKey) != m.Suite.KeyLen:
		return newErr(KindInvalidArgument, "the CMM returned a data key of %d bytes; suite %s needs %d", len(m.DataKey), m.Suite, m.Suite.KeyLen)
	case len(m.EncryptedDataKeys) == 0:
		return newErr(KindInvalidArgument, "the CMM returned no encrypted data key; nobody could decrypt the message")
	case m.Suite.Signed() && m.SigningKey == nil:
		return newErr(KindInvalidArgument, "the CMM returned no signing key for signed suite %s", m.Suite)
	}
	return nil
}

// DecryptionMaterials are what a message is decrypted with.
type DecryptionMaterials struct {
	Suite             *format.Suite
	EncryptionContext map[string]string
	DataKey           []byte
	VerificationKey   *ecdsa.PublicKey
}

// Validate refuses materials that cannot decrypt a message of suite s (from
// a custom CMM): another suite, a data key of the wrong length, or no
// verification key for a signed suite.
func (m *DecryptionMaterials) Validate(s *format.Suite) error {
	switch {
	case m == nil:
		return newErr(KindInvalidArgument, "the CMM returned no materials")
	case m.Suite != nil && m.Suite.ID != s.ID:
		return newErr(KindInvalidArgument, "the CMM returned materials for suite %s; the message uses %s", m.Suite, s)
	case len(m.DataKey) != s.KeyLen:
		return newErr(KindInvalidArgument, "the CMM returned a data key of %d bytes; suite %s needs %d", len(m.DataKey), s, s.KeyLen)
	case s.Signed() && m.VerificationKey == nil:
		return newErr(KindInvalidArgument, "the CMM returned no verification key for signed suite %s", s)
	}
	return nil
}

// String never shows the data key.
func (m *DecryptionMaterials) String() string {
	return fmt.Sprintf("DecryptionMaterials{suite %s}", m.Suite)
}

// Clone returns a deep copy.
func (m *DecryptionMaterials) Clone() *DecryptionMaterials {
	c := *m
	c.EncryptionContext = maps.Clone(m.EncryptionContext)
	c.DataKey = append([]byte(nil), m.DataKey...)
	return &c
}

// EncryptionRequest asks a CMM for encryption materials.
type EncryptionRequest struct {
	EncryptionContext map[string]string
	// Suite is nil for the CMM's default.
	Suite *format.Suite
	// PlaintextLength is the number of bytes to be encrypted, or -1 when
	// unknown (a stream). The caching CMM needs it to count bytes.
	PlaintextLength int64
}

// DecryptionRequest asks a CMM for decryption materials.
type DecryptionRequest struct {
	Suite             *format.Suite
	EncryptedDataKeys []format.EDK
	EncryptionContext map[string]string
}

// CMM is a cryptographic materials manager (framework/cmm-interface.md).
// Implementations must be safe for concurrent use.
type CMM interface {
	GetEncryptionMaterials(ctx context.Context, req EncryptionRequest) (*EncryptionMaterials, error)
	DecryptMaterials(ctx context.Context, req DecryptionRequest) (*DecryptionMaterials, error)
}

// Keyring generates, encrypts and decrypts data keys
// (framework/keyring-interface.md). Implementations must be safe for
// concurrent use.
type Keyring interface {
	// OnEncrypt fills m.DataKey if it is nil and appends EDKs.
	OnEncrypt(ctx context.Context, m *EncryptionMaterials) error
	// OnDecrypt sets m.DataKey from one of edks, or returns an error of
	// KindWrongKey.
	OnDecrypt(ctx context.Context, m *DecryptionMaterials, edks []format.EDK) error
}

// DefaultCMM is the ESDK's default CMM over a keyring: it picks the suite,
// makes the signing key pair of signed suites and puts the public key in
// the encryption context.
type DefaultCMM struct {
	Keyring Keyring
}

var _ CMM = (*DefaultCMM)(nil)

// NewDefaultCMM returns a DefaultCMM over kr.
func NewDefaultCMM(kr Keyring) *DefaultCMM { return &DefaultCMM{Keyring: kr} }

// GetEncryptionMaterials implements CMM.
func (c *DefaultCMM) GetEncryptionMaterials(ctx context.Context, req EncryptionRequest) (*EncryptionMaterials, error) {
	suite := req.Suite
	if suite == nil {
		suite = format.DefaultSuite
	}
	ec := maps.Clone(req.EncryptionContext)
	if ec == nil {
		ec = map[string]string{}
	}
	if _, ok := ec[PublicKeyContextKey]; ok {
		return nil, newErr(KindEncryptionContext, "the key %q is reserved", PublicKeyContextKey)
	}
	m := &EncryptionMaterials{Suite: suite, EncryptionContext: ec}
	if suite.Signed() {
		k, err := ecdsa.GenerateKey(suite.Curve, rand.Reader)
		if err != nil {
			return nil, err
		}
		m.SigningKey = k
		ec[PublicKeyContextKey] = base64.StdEncoding.EncodeToString(compressPoint(&k.PublicKey))
	}
	if err := c.Keyring.OnEncrypt(ctx, m); err != nil {
		return nil, err
	}
	if len(m.DataKey) != suite.KeyLen || len(m.EncryptedDataKeys) == 0 {
		return nil, newErr(KindKMS, "keyring returned no data key or no encrypted data key")
	}
	return m, nil
}

// DecryptMaterials implements CMM.
func (c *DefaultCMM) DecryptMaterials(ctx context.Context, req DecryptionRequest) (*DecryptionMaterials, error) {
	m := &DecryptionMaterials{Suite: req.Suite, EncryptionContext: req.EncryptionContext}
	pub, has := req.EncryptionContext[PublicKeyContextKey]
	switch {
	case req.Suite.Signed() && !has:
		return nil, newErr(KindMalformed, "signed suite without %s in the encryption context", PublicKeyContextKey)
	case !req.Suite.Signed() && has:
		return nil, newErr(KindMalformed, "unsigned suite with %s in the encryption context", PublicKeyContextKey)
	case has:
		raw, err := base64.StdEncoding.DecodeString(pub)
		if err != nil {
			return nil, newErr(KindMalformed, "%s is not base64", PublicKeyContextKey)
		}
		k, err := decompressPoint(req.Suite.Curve, raw)
		if err != nil {
			return nil, &Error{Kind: KindMalformed, Detail: "verification key", Err: err}
		}
		m.VerificationKey = k
	}
	if err := c.Keyring.OnDecrypt(ctx, m, req.EncryptedDataKeys); err != nil {
		return nil, err
	}
	if len(m.DataKey) != req.Suite.KeyLen {
		return nil, newErr(KindWrongKey, "keyring returned a data key of the wrong length")
	}
	return m, nil
}

// checkUserContext rejects caller context keys in the reserved namespace.
func checkUserContext(ec map[string]string) error {
	for k := range ec {
		if strings.HasPrefix(k, reservedPrefix) {
			return newErr(KindEncryptionContext, "encryption context key %q uses the reserved prefix %q", k, reservedPrefix)
		}
	}
	return nil
}

// compressPoint is SEC 1 section 2.3.3 point compression: 0x02 or 0x03
// (the parity of Y) followed by X.
func compressPoint(k *ecdsa.PublicKey) []byte {
	u, err := k.Bytes() // 0x04 || X || Y
	if err != nil {
		panic(err) // unreachable: the key was just generated on a NIST curve
	}
	size := (len(u) - 1) / 2
	out := make([]byte, 1+size)
	out[0] = 0x02 | u[len(u)-1]&1
	copy(out[1:], u[1:1+size])
	return out
}

func decompressPoint(curve elliptic.Curve, b []byte) (*ecdsa.PublicKey, error) {
	x, y := elliptic.UnmarshalCompressed(curve, b)
	if x == nil {
		return nil, fmt.Errorf("not a compressed point on %s", curve.Params().Name)
	}
	size := (curve.Params().BitSize + 7) / 8
	u := make([]byte, 1+2*size)
	u[0] = 0x04
	x.FillBytes(u[1 : 1+size])
	y.FillBytes(u[1+size:])
	return ecdsa.ParseUncompressedPublicKey(curve, u)
}

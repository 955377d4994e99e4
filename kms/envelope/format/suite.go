// Package format reads and writes the AWS Encryption SDK (ESDK) message
// format: the header (versions 1 and 2), framed and non-framed bodies, the
// footer, the algorithm suites and the key derivation they prescribe.
//
// It knows nothing about KMS or materials; kms/envelope drives it. Every
// parser is strict (exact lengths, bounded allocations, typed errors) because
// its input is attacker-controlled: a message header is read before anything
// in it has been authenticated.
//
// Reference: aws-encryption-sdk-specification data-format/message-header.md,
// message-body.md, message-body-aad.md, message-footer.md,
// framework/algorithm-suites.md and framework/transitive-requirements.md.
package format

import (
	"crypto"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
)

// Fixed sizes shared by every ESDK suite (all are AES-GCM).
const (
	IVLen  = 12
	TagLen = 16
	// CommitKeyLen is the length of the key commitment stored as the
	// algorithm suite data of committing suites.
	CommitKeyLen = 32
)

// Suite is one ESDK algorithm suite.
type Suite struct {
	ID   uint16
	Name string
	// MessageVersion is the message format version the suite is used with
	// (1 or 2).
	MessageVersion byte
	// KeyLen is both the data key length (KDF input) and the AES key length.
	KeyLen int
	// KDF is the HKDF hash, or 0 for the identity KDF.
	KDF crypto.Hash
	// Committing suites derive a commitment key that is stored in the
	// header and checked on decrypt.
	Committing bool
	// Curve and SigHash describe the ECDSA signature; Curve is nil for
	// unsigned suites.
	Curve   elliptic.Curve
	SigHash crypto.Hash
}

// Signed reports whether messages of this suite carry a footer signature.
func (s *Suite) Signed() bool { return s.Curve != nil }

// IdentityKDF reports whether the data key is used as the AES key directly
// (the legacy 00 xx suites); such data keys must never be reused across
// messages, so the caching CMM refuses them.
func (s *Suite) IdentityKDF() bool { return s.KDF == 0 }

func (s *Suite) String() string { return fmt.Sprintf("%s (0x%04X)", s.Name, s.ID) }

// The suites. Suite IDs and parameters are from the specification's table.
var (
	AES256HKDFSHA512CommitKeyECDSAP384 = &Suite{0x0578, "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384", 2, 32, crypto.SHA512, true, elliptic.P384(), crypto.SHA384}
	AES256HKDFSHA512CommitKey          = &Suite{0x0478, "AES_256_GCM_HKDF_SHA512_COMMIT_KEY", 2, 32, crypto.SHA512, true, nil, 0}
	AES256HKDFSHA384ECDSAP384          = &Suite{0x0378, "AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384", 1, 32, crypto.SHA384, false, elliptic.P384(), crypto.SHA384}
	AES192HKDFSHA384ECDSAP384          = &Suite{0x0346, "AES_192_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384", 1, 24, crypto.SHA384, false, elliptic.P384(), crypto.SHA384}
	AES128HKDFSHA256ECDSAP256          = &Suite{0x0214, "AES_128_GCM_IV12_TAG16_HKDF_SHA256_ECDSA_P256", 1, 16, crypto.SHA256, false, elliptic.P256(), crypto.SHA256}
	AES256HKDFSHA256                   = &Suite{0x0178, "AES_256_GCM_IV12_TAG16_HKDF_SHA256", 1, 32, crypto.SHA256, false, nil, 0}
	AES192HKDFSHA256                   = &Suite{0x0146, "AES_192_GCM_IV12_TAG16_HKDF_SHA256", 1, 24, crypto.SHA256, false, nil, 0}
	AES128HKDFSHA256                   = &Suite{0x0114, "AES_128_GCM_IV12_TAG16_HKDF_SHA256", 1, 16, crypto.SHA256, false, nil, 0}
	AES256NoKDF                        = &Suite{0x0078, "AES_256_GCM_IV12_TAG16_NO_KDF", 1, 32, 0, false, nil, 0}
	AES192NoKDF                        = &Suite{0x0046, "AES_192_GCM_IV12_TAG16_NO_KDF", 1, 24, 0, false, nil, 0}
	AES128NoKDF                        = &Suite{0x0014, "AES_128_GCM_IV12_TAG16_NO_KDF", 1, 16, 0, false, nil, 0}
)

// DefaultSuite is what Encrypt uses unless told otherwise (as the ESDK's
// REQUIRE_ENCRYPT_* policies do).
var DefaultSuite = AES256HKDFSHA512CommitKeyECDSAP384

var suites = map[uint16]*Suite{}

func init() {
	for _, s := range []*Suite{
		AES256HKDFSHA512CommitKeyECDSAP384, AES256HKDFSHA512CommitKey,
		AES256HKDFSHA384ECDSAP384, AES192HKDFSHA384ECDSAP384, AES128HKDFSHA256ECDSAP256,
		AES256HKDFSHA256, AES192HKDFSHA256, AES128HKDFSHA256,
		AES256NoKDF, AES192NoKDF, AES128NoKDF,
	} {
		suites[s.ID] = s
	}
}

// SuiteByID returns the suite with the given ID, or nil.
func SuiteByID(id uint16) *Suite { return suites[id] }

// Suites returns every suite this package can decrypt (every suite the
// ESDK's REQUIRE_ENCRYPT_ALLOW_DECRYPT policy accepts).
func Suites() []*Suite {
	out := make([]*Suite, 0, len(suites))
	for _, s := range []uint16{0x0578, 0x0478, 0x0378, 0x0346, 0x0214, 0x0178, 0x0146, 0x0114, 0x0078, 0x0046, 0x0014} {
		out = append(out, suites[s])
	}
	return out
}

func newHash(h crypto.Hash) func() hash.Hash {
	switch h {
	case crypto.SHA256:
		return sha256.New
	case crypto.SHA384:
		return sha512.New384
	case crypto.SHA512:
		return sha512.New
	}
	panic("format: unsupported hash") // unreachable: suites are a fixed table
}

// DeriveKeys returns the AES key for the message and, for committing
// suites, the commitment key (nil otherwise).
//
//   - committing (v2): PRK = HKDF-Extract(salt = message ID, data key);
//     key = Expand(PRK, suite ID || "DERIVEKEY"), commit = Expand(PRK,
//     "COMMITKEY"), both with SHA-512;
//   - HKDF (v1): Extract with no salt, Expand with info = suite ID ||
//     message ID;
//   - identity: the data key itself.
func DeriveKeys(s *Suite, dataKey, messageID []byte) (key, commit []byte, err error) {
	if len(dataKey) != s.KeyLen {
		return nil, nil, fmt.Errorf("format: data key is %d bytes, suite %04X wants %d", len(dataKey), s.ID, s.KeyLen)
	}
	if s.IdentityKDF() {
		return append([]byte(nil), dataKey...), nil, nil
	}
	id := []byte{byte(s.ID >> 8), byte(s.ID)}
	h := newHash(s.KDF)
	if !s.Committing {
		prk, err := hkdf.Extract(h, dataKey, nil)
		if err != nil {
			return nil, nil, err
		}
		key, err = hkdf.Expand(h, prk, string(append(id, messageID...)), s.KeyLen)
		return key, nil, err
	}
	prk, err := hkdf.Extract(h, dataKey, messageID)
	if err != nil {
		return nil, nil, err
	}
	if key, err = hkdf.Expand(h, prk, string(id)+"DERIVEKEY", s.KeyLen); err != nil {
		return nil, nil, err
	}
	commit, err = hkdf.Expand(h, prk, "COMMITKEY", CommitKeyLen)
	return key, commit, err
}

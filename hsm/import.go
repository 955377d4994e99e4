package hsm

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/pkcs11"
)

// Imported key material (AWS "origin EXTERNAL").
//
// The customer wraps a 256-bit AES key under the public half of an RSA
// wrapping key pair that was generated inside the token; the service hands
// the wrapped bytes to C_UnwrapKey, so the plaintext key material exists only
// inside the HSM. Nothing here ever sees it.

// WrapAlgorithm is how imported key material was wrapped.
type WrapAlgorithm int

// Wrapping algorithms, as AWS names them.
const (
	// WrapOAEPSHA1 is RSAES_OAEP_SHA_1: RSA-OAEP, SHA-1, MGF1-SHA-1.
	WrapOAEPSHA1 WrapAlgorithm = iota + 1
	// WrapOAEPSHA256 is RSAES_OAEP_SHA_256.
	WrapOAEPSHA256
	// WrapRSAAESSHA1 is RSA_AES_KEY_WRAP_SHA_1: an ephemeral AES-256 key
	// wrapped with RSA-OAEP-SHA-1, followed by the key material wrapped
	// under it with AES Key Wrap with Padding (RFC 5649).
	WrapRSAAESSHA1
	// WrapRSAAESSHA256 is RSA_AES_KEY_WRAP_SHA_256.
	WrapRSAAESSHA256
)

func (a WrapAlgorithm) String() string {
	switch a {
	case WrapOAEPSHA1:
		return "RSAES_OAEP_SHA_1"
	case WrapOAEPSHA256:
		return "RSAES_OAEP_SHA_256"
	case WrapRSAAESSHA1:
		return "RSA_AES_KEY_WRAP_SHA_1"
	case WrapRSAAESSHA256:
		return "RSA_AES_KEY_WRAP_SHA_256"
	}
	return fmt.Sprintf("WrapAlgorithm(%d)", int(a))
}

func (a WrapAlgorithm) sha256() bool { return a == WrapOAEPSHA256 || a == WrapRSAAESSHA256 }

// TwoStep reports the RSA-AES forms (ephemeral AES key, then RFC 5649).
func (a WrapAlgorithm) TwoStep() bool { return a == WrapRSAAESSHA1 || a == WrapRSAAESSHA256 }

// Import errors.
var (
	// ErrUnsupportedWrap: the token cannot unwrap with this algorithm inside
	// itself (SoftHSM2 2.6.1: anything with OAEP-SHA-256).
	ErrUnsupportedWrap = errors.New("hsm: wrapping algorithm not supported by the token")
	// ErrUnwrapFailed: the wrapped bytes do not unwrap under the wrapping
	// key (wrong key, wrong algorithm, corrupted, or not a 256-bit key).
	ErrUnwrapFailed = errors.New("hsm: wrapped key material does not unwrap")
)

// CheckValueMessage is the fixed message whose AES-CMAC is an imported key's
// check value. CMAC, and not the classic "AES-ECB of a zero block", because
// E_K(0^128) is exactly GCM's hash subkey H: storing it would let anyone who
// reads the database forge GCM tags. A CMAC output is E_K of a block that
// depends on the secret subkey K1, so it reveals neither H nor a GCM
// counter block, and the key is restricted (CKA_ALLOWED_MECHANISMS) to GCM
// and CMAC so that no other mode can be asked of it.
var CheckValueMessage = []byte("hsmkms imported key check value, version 1")

// ImportDevice is what the key service needs to import key material.
type ImportDevice interface {
	// GenerateWrappingKey creates an RSA key pair of the given size inside
	// the token and returns the public key as DER SubjectPublicKeyInfo. The
	// private key is a token object with the given backing id: sensitive,
	// not extractable, usable only for C_UnwrapKey. The public key is not
	// kept in the token. Destroy removes the private key.
	GenerateWrappingKey(ctx context.Context, id []byte, label string, bits int) ([]byte, error)

	// SupportsWrapAlgorithm reports whether the token can unwrap with alg
	// entirely inside itself. The answer is probed once per device.
	SupportsWrapAlgorithm(ctx context.Context, alg WrapAlgorithm) (bool, error)

	// UnwrapAESKey unwraps wrapped under the wrapping key wrappingID into
	// an AES-256 key and returns the key's check value (AES-CMAC of
	// CheckValueMessage). With a non-nil id the key becomes a token object
	// with that backing id, like GenerateAESKey's but also allowed CMAC;
	// with a nil id it is a session object, destroyed before returning
	// (to compare material without keeping it). ErrUnwrapFailed if the
	// bytes do not unwrap to a 256-bit key; ErrUnsupportedWrap if the
	// token cannot do alg; ErrKeyNotFound if the wrapping key is gone.
	UnwrapAESKey(ctx context.Context, wrappingID []byte, alg WrapAlgorithm, wrapped, id []byte, label string) ([]byte, error)

	// KeyCheckValue returns the check value of an imported key.
	KeyCheckValue(ctx context.Context, id []byte) ([]byte, error)
}

var _ ImportDevice = (*PKCS11)(nil)

// probeTimeout bounds the capability probe (an RSA key pair generation and
// a few unwraps).
const probeTimeout = time.Minute

// wrapCapabilities caches, per device, what the token can unwrap. Kept
// outside the PKCS11 struct so that this feature lives in its own file.
var wrapCapabilities sync.Map // *PKCS11 -> *wrapCaps

type wrapCaps struct {
	once       sync.Once
	err        error
	oaep, kwp  bool
	oaepSHA1   bool
	oaepSHA256 bool
	// cmac: the token computes AES-CMAC with a 256-bit key, which every
	// import needs for its check value. oaepLength: the token reports the
	// length of an OAEP-unwrapped key, or lets it be measured
	// (measureUnwrapped), which plain RSAES_OAEP imports need.
	cmac, oaepLength bool
}

// GenerateWrappingKey implements ImportDevice.
func (d *PKCS11) GenerateWrappingKey(ctx context.Context, id []byte, label string, bits int) ([]byte, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	if bits != 2048 && bits != 3072 && bits != 4096 {
		return nil, fmt.Errorf("hsm: unsupported RSA size %d", bits)
	}
	if !d.index.reserve(id) {
		return nil, fmt.Errorf("%w: %s", ErrDuplicateID, hexID(id))
	}
	defer d.index.release(id)
	var spki []byte
	err := d.runCreate(ctx, id, func(s pkcs11.SessionHandle) error { // create.go: no duplicate on retry
		pub, _, err := d.mod.ctx.GenerateKeyPair(s,
			[]*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)},
			[]*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
				pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
				// The public key is returned once and never needed again.
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
				pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, bits),
				pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
				pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
				pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
				pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
			},
			[]*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
				pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
				pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
				pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
				pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
				pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, true),
				pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
				pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
				pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
				pkcs11.NewAttribute(pkcs11.CKA_ID, id),
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			})
		if err != nil {
			return callError("C_GenerateKeyPair", err)
		}
		defer func() { _ = d.mod.ctx.DestroyObject(s, pub) }()
		key, err := d.rsaPublic(s, pub)
		if err != nil {
			return err
		}
		spki, err = x509.MarshalPKIXPublicKey(key)
		return err
	})
	return spki, err
}

func (d *PKCS11) rsaPublic(s pkcs11.SessionHandle, h pkcs11.ObjectHandle) (*rsa.PublicKey, error) {
	attrs, err := d.mod.ctx.GetAttributeValue(s, h, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil),
	})
	if err != nil {
		return nil, callError("C_GetAttributeValue", err)
	}
	key := &rsa.PublicKey{}
	for _, a := range attrs {
		switch a.Type {
		case pkcs11.CKA_MODULUS:
			key.N = new(big.Int).SetBytes(a.Value)
		case pkcs11.CKA_PUBLIC_EXPONENT:
			key.E = int(new(big.Int).SetBytes(a.Value).Int64())
		}
	}
	if key.N == nil || key.E == 0 {
		return nil, errors.New("hsm: RSA public key attributes missing")
	}
	return key, nil
}

// SupportsWrapAlgorithm implements ImportDevice. The mechanism list says
// whether RSA-OAEP and AES-KWP exist; the rest is only learnt by trying,
// with a throwaway session key pair and a throwaway random value, once per
// device: whether OAEP takes SHA-1 and SHA-256 (SoftHSM2 2.6.1 lists
// CKM_RSA_PKCS_OAEP but refuses any hash but SHA-1 with CKR_ARGUMENTS_BAD),
// whether the token computes the AES-CMAC check value, and whether the
// length of an OAEP-unwrapped key can be known (probeOAEPKey).
func (d *PKCS11) SupportsWrapAlgorithm(ctx context.Context, alg WrapAlgorithm) (bool, error) {
	c, _ := wrapCapabilities.LoadOrStore(d, &wrapCaps{})
	caps := c.(*wrapCaps)
	caps.once.Do(func() {
		// Detached: concurrent callers wait on this one probe, and one
		// client hanging up must not fail the others' requests.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeTimeout)
		defer cancel()
		caps.err = d.probeWrap(pctx, caps)
	})
	if caps.err != nil {
		// Probe again next time: the failure may have been transient.
		wrapCapabilities.CompareAndDelete(d, caps)
		return false, caps.err
	}
	ok := caps.oaep && caps.cmac
	if !alg.TwoStep() {
		ok = ok && caps.oaepLength
	}
	if alg.sha256() {
		ok = ok && caps.oaepSHA256
	} else {
		ok = ok && caps.oaepSHA1
	}
	if alg.TwoStep() {
		ok = ok && caps.kwp
	}
	return ok, nil
}

func (d *PKCS11) probeWrap(ctx context.Context, caps *wrapCaps) error {
	mechs, err := d.mod.ctx.GetMechanismList(uint(d.slot.Load()))
	if err != nil {
		return callError("C_GetMechanismList", err)
	}
	for _, m := range mechs {
		switch m.Mechanism {
		case pkcs11.CKM_RSA_PKCS_OAEP:
			caps.oaep = true
		case pkcs11.CKM_AES_KEY_WRAP_PAD:
			caps.kwp = true
		}
	}
	if !caps.oaep {
		return nil
	}
	return d.run(ctx, func(s pkcs11.SessionHandle) error {
		pub, priv, err := d.mod.ctx.GenerateKeyPair(s,
			[]*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)},
			[]*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
				pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, 2048),
				pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
			},
			[]*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
				pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
				pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, true),
			})
		if err != nil {
			return callError("C_GenerateKeyPair", err)
		}
		defer func() { _ = d.mod.ctx.DestroyObject(s, pub); _ = d.mod.ctx.DestroyObject(s, priv) }()
		key, err := d.rsaPublic(s, pub)
		if err != nil {
			return err
		}
		probe := make([]byte, 32) // not key material: a random value thrown away
		if _, err := rand.Read(probe); err != nil {
			return err
		}
		if err := d.probeOAEPKey(s, priv, key, probe, caps); err != nil {
			return err
		}
		wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, key, probe, nil)
		if err != nil {
			return err
		}
		h, err := d.mod.ctx.UnwrapKey(s, oaepMechanism(true), priv, wrapped, unwrapTemplate(nil, "", false))
		switch {
		case err == nil:
			_ = d.mod.ctx.DestroyObject(s, h)
			caps.oaepSHA256 = true
		case isUnsupportedMechanism(err):
			d.log.Info("hsm: the token cannot unwrap with RSA-OAEP SHA-256; RSAES_OAEP_SHA_256 and RSA_AES_KEY_WRAP_SHA_256 imports are refused", "err", err)
		default:
			return callError("C_UnwrapKey (OAEP SHA-256 probe)", err)
		}
		return nil
	})
}

// probeOAEPKey unwraps probe (a throwaway 256-bit value) with RSA-OAEP
// under priv, SHA-1 or else SHA-256, and learns what imports rely on: that
// the token unwraps with OAEP SHA-1 at all (tokens in a FIPS mode may
// not), that it computes the AES-CMAC check value, and that it reports, or
// lets kmsd measure, the length of what it unwrapped. Without the CMAC no
// import can work; without the length a plain RSAES_OAEP import could not
// tell a 128-bit key from a 256-bit one. What is missing is logged and the
// algorithms that need it are refused (UnsupportedOperationException)
// rather than failing each import with an internal error, or blaming the
// customer's material.
func (d *PKCS11) probeOAEPKey(s pkcs11.SessionHandle, priv pkcs11.ObjectHandle, pub *rsa.PublicKey, probe []byte, caps *wrapCaps) error {
	for _, useSHA256 := range []bool{false, true} {
		h := sha1.New()
		if useSHA256 {
			h = sha256.New()
		}
		wrapped, err := rsa.EncryptOAEP(h, rand.Reader, pub, probe, nil)
		if err != nil {
			return err
		}
		key, err := d.mod.ctx.UnwrapKey(s, oaepMechanism(useSHA256), priv, wrapped, unwrapTemplate(nil, "", false))
		switch {
		case err == nil:
		case transientProbeError(err):
			return callError("C_UnwrapKey (OAEP probe)", err)
		default:
			// Unsupported, or refused for this template (a token's
			// policy): an import would be refused the same way.
			d.log.Info("hsm: the token refuses an RSA-OAEP unwrap of an AES key", "sha256", useSHA256, "err", err)
			continue // SHA-256 is probed again, and reported, by probeWrap
		}
		defer func() { _ = d.mod.ctx.DestroyObject(s, key) }()
		caps.oaepSHA1 = !useSHA256
		return d.probeUnwrapped(s, priv, key, oaepMechanism(useSHA256), wrapped, caps)
	}
	d.log.Info("hsm: the token unwraps with neither RSA-OAEP SHA-1 nor SHA-256; key material imports are refused")
	return nil
}

// probeUnwrapped is probeOAEPKey's look at key, unwrapped from wrapped.
func (d *PKCS11) probeUnwrapped(s pkcs11.SessionHandle, priv, key pkcs11.ObjectHandle, mech []*pkcs11.Mechanism, wrapped []byte, caps *wrapCaps) error {
	switch _, err := d.cmac(s, key); {
	case err == nil:
		caps.cmac = true
	case transientProbeError(err):
		return err
	default:
		d.log.Info("hsm: the token cannot compute AES-CMAC with an imported key; key material imports are refused", "err", err)
	}
	attrs, err := d.mod.ctx.GetAttributeValue(s, key, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, nil)})
	if err != nil {
		return callError("C_GetAttributeValue (probe)", err)
	}
	if n := ulong(attrs[0].Value); n != 0 {
		caps.oaepLength = n == 32
		return nil
	}
	n, err := d.measureUnwrapped(s, priv, mech, wrapped)
	switch {
	case err == nil && n == 32:
		caps.oaepLength = true
	case err != nil && transientProbeError(err):
		return err
	default:
		d.log.Info("hsm: the token neither reports nor lets kmsd measure the length of an RSA-OAEP-unwrapped key; RSAES_OAEP imports are refused (RSA_AES_KEY_WRAP ones carry their length)",
			"measured", n, "err", err)
	}
	return nil
}

// transientProbeError reports the probe failures worth probing again for:
// the session or the device failing, or the probe's time running out. Any
// other refusal is the token's answer (a missing mechanism, a policy that
// forbids an attribute), which the next probe would get too: the
// capability is recorded as missing instead, so that the algorithms that do
// not need it still work and the probe, an RSA key generation, is not
// repeated on every import.
func transientProbeError(err error) bool {
	return isSessionFault(err) || isStaleHandle(err) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrClosed)
}

func isUnsupportedMechanism(err error) bool {
	return isCKR(err, pkcs11.CKR_ARGUMENTS_BAD, pkcs11.CKR_MECHANISM_INVALID, pkcs11.CKR_MECHANISM_PARAM_INVALID)
}

// isUnwrapFailure reports C_UnwrapKey results that mean "these bytes are not
// a key wrapped under this key". SoftHSM reports a bad OAEP block or a
// failed RFC 5649 integrity check as CKR_GENERAL_ERROR or
// CKR_WRAPPED_KEY_INVALID.
func isUnwrapFailure(err error) bool {
	return isCKR(err, pkcs11.CKR_GENERAL_ERROR, pkcs11.CKR_WRAPPED_KEY_INVALID, pkcs11.CKR_WRAPPED_KEY_LEN_RANGE,
		pkcs11.CKR_ENCRYPTED_DATA_INVALID, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE, pkcs11.CKR_TEMPLATE_INCONSISTENT,
		pkcs11.CKR_KEY_SIZE_RANGE, pkcs11.CKR_DATA_LEN_RANGE, pkcs11.CKR_DATA_INVALID, pkcs11.CKR_ATTRIBUTE_VALUE_INVALID)
}

func oaepMechanism(sha256 bool) []*pkcs11.Mechanism {
	params := pkcs11.NewOAEPParams(pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1, pkcs11.CKZ_DATA_SPECIFIED, nil)
	if sha256 {
		params = pkcs11.NewOAEPParams(pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256, pkcs11.CKZ_DATA_SPECIFIED, nil)
	}
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_OAEP, params)}
}

// ulongs encodes a CK_ULONG array attribute in native byte order.
func ulongs(vs ...uint) []byte {
	b := make([]byte, 0, 8*len(vs))
	for _, v := range vs {
		b = binary.NativeEndian.AppendUint64(b, uint64(v))
	}
	return b
}

// unwrapTemplate is the template of an unwrapped AES key. kek: an ephemeral
// key-encryption key (session object, unwrap only). Otherwise the imported
// key: like aesKeyTemplate, plus CKA_SIGN restricted by
// CKA_ALLOWED_MECHANISMS to CMAC, for the check value. CKA_VALUE_LEN may
// not be given to C_UnwrapKey (SoftHSM: CKR_ATTRIBUTE_READ_ONLY); it is read
// back afterwards where the token reports it (SoftHSM 2.6.1 reports 0 for an
// unwrapped key, so there the RSA-AES forms check the RFC 5649 blob length,
// and plain OAEP measures a session copy: unwrappedLength).
func unwrapTemplate(id []byte, label string, kek bool) []*pkcs11.Attribute {
	t := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, id != nil),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
	}
	if kek {
		return append(t,
			pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, true),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
			&pkcs11.Attribute{Type: pkcs11.CKA_ALLOWED_MECHANISMS, Value: ulongs(pkcs11.CKM_AES_KEY_WRAP_PAD)},
		)
	}
	t = append(t,
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		&pkcs11.Attribute{Type: pkcs11.CKA_ALLOWED_MECHANISMS, Value: ulongs(pkcs11.CKM_AES_GCM, pkcs11.CKM_AES_CMAC)},
	)
	if id != nil {
		t = append(t, pkcs11.NewAttribute(pkcs11.CKA_ID, id), pkcs11.NewAttribute(pkcs11.CKA_LABEL, label))
	}
	return t
}

// wrappingKeyHandle finds the wrapping private key by backing id. Wrapping
// keys are not in the handle index (which holds AES keys for the request
// path); an import is rare enough (AWS allows 5 per second per account)
// that one targeted search per import is fine.
func (d *PKCS11) wrappingKeyHandle(ctx context.Context, s pkcs11.SessionHandle, id []byte) (pkcs11.ObjectHandle, error) {
	handles, err := d.findObjects(ctx, s, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	})
	if err != nil {
		return 0, err
	}
	if len(handles) == 0 {
		return 0, fmt.Errorf("%w: wrapping key %s", ErrKeyNotFound, hexID(id))
	}
	return handles[0], nil
}

// UnwrapAESKey implements ImportDevice.
func (d *PKCS11) UnwrapAESKey(ctx context.Context, wrappingID []byte, alg WrapAlgorithm, wrapped, id []byte, label string) ([]byte, error) {
	if id != nil {
		if err := checkID(id); err != nil {
			return nil, err
		}
		if !d.index.reserve(id) {
			return nil, fmt.Errorf("%w: %s", ErrDuplicateID, hexID(id))
		}
		defer d.index.release(id)
	}
	ok, err := d.SupportsWrapAlgorithm(ctx, alg)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnsupportedWrap, alg)
	}
	var (
		kcv []byte
		key pkcs11.ObjectHandle
	)
	err = d.runCreate(ctx, id, func(s pkcs11.SessionHandle) error { // create.go: no duplicate on retry
		wk, err := d.wrappingKeyHandle(ctx, s, wrappingID)
		if err != nil {
			return err
		}
		key, err = d.unwrap(s, wk, alg, wrapped, unwrapTemplate(id, label, false))
		if err != nil {
			return err
		}
		keep := false
		defer func() {
			if !keep {
				_ = d.mod.ctx.DestroyObject(s, key)
			}
		}()
		attrs, err := d.mod.ctx.GetAttributeValue(s, key, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, nil)})
		if err != nil {
			return callError("C_GetAttributeValue", err)
		}
		n := ulong(attrs[0].Value)
		reported := n != 0
		if !reported && !alg.TwoStep() {
			// The token does not say (SoftHSM 2.6.1), and plain OAEP
			// carries no length of its own: measure a copy. (The
			// RSA-AES forms checked the RFC 5649 blob's length.)
			if n, err = d.unwrappedLength(ctx, wk, alg, wrapped); err != nil {
				return err
			}
		}
		if n != 32 && (reported || !alg.TwoStep()) {
			return fmt.Errorf("%w: the key material is %d bytes, not 32", ErrUnwrapFailed, n)
		}
		if kcv, err = d.cmac(s, key); err != nil {
			if !reported && isCKR(err, pkcs11.CKR_MECHANISM_INVALID, pkcs11.CKR_KEY_SIZE_RANGE, pkcs11.CKR_KEY_TYPE_INCONSISTENT) {
				// The length checks above round up to 8 bytes (RFC
				// 3394 and 5649 alike), so 25 to 31 bytes pass them; no
				// AES key has such a length, and the token refuses to use
				// it. The capability probe CMACed a valid 256-bit key on
				// this token, so the refusal is the material's.
				return fmt.Errorf("%w: the key material is not a 256-bit AES key: %w", ErrUnwrapFailed, err)
			}
			return err
		}
		keep = id != nil
		return nil
	})
	if err != nil {
		return nil, err
	}
	if id != nil {
		d.index.store(id, key)
	}
	return kcv, nil
}

// unwrap runs C_UnwrapKey for alg. The two-step RSA-AES form is composed
// inside the token (SoftHSM2 2.6.1 has no CKM_RSA_AES_KEY_WRAP): the RSA
// part unwraps an ephemeral AES key-encryption key as a session object,
// which then unwraps the key material with CKM_AES_KEY_WRAP_PAD and is
// destroyed. Neither key is ever outside the token.
func (d *PKCS11) unwrap(s pkcs11.SessionHandle, wk pkcs11.ObjectHandle, alg WrapAlgorithm, wrapped []byte, tmpl []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
	if !alg.TwoStep() {
		h, err := d.mod.ctx.UnwrapKey(s, oaepMechanism(alg.sha256()), wk, wrapped, tmpl)
		return h, unwrapError(err)
	}
	pub, err := d.mod.ctx.GetAttributeValue(s, wk, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil)})
	if err != nil {
		return 0, callError("C_GetAttributeValue", err)
	}
	k := len(new(big.Int).SetBytes(pub[0].Value).Bytes())
	if len(wrapped) <= k {
		return 0, fmt.Errorf("%w: %d bytes is too short for RSA-AES wrapping under a %d-bit key", ErrUnwrapFailed, len(wrapped), k*8)
	}
	if len(wrapped) != k+40 {
		// RFC 5649 output for a 32-byte key is 40 bytes.
		return 0, fmt.Errorf("%w: the AES-KWP part is %d bytes, not 40 (a 256-bit key)", ErrUnwrapFailed, len(wrapped)-k)
	}
	kek, err := d.mod.ctx.UnwrapKey(s, oaepMechanism(alg.sha256()), wk, wrapped[:k], unwrapTemplate(nil, "", true))
	if err != nil {
		return 0, unwrapError(err)
	}
	defer func() { _ = d.mod.ctx.DestroyObject(s, kek) }()
	h, err := d.mod.ctx.UnwrapKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP_PAD, nil)}, kek, wrapped[k:], tmpl)
	return h, unwrapError(err)
}

// unwrappedLength measures the length of the key that wrapped (plain
// RSA-OAEP) holds, for tokens that report CKA_VALUE_LEN 0 for an unwrapped
// key: without it a 128-bit key would be imported as a 256-bit one. It
// unwraps a copy that may be wrapped, wraps that under a throwaway key
// with RFC 3394 AES key wrap (the output is 8 bytes longer than the key
// rounded up to 8 bytes; SoftHSM pads rather than refusing other lengths,
// so the result is exact for AES key lengths) and throws both away. The
// material never leaves the token unencrypted, the wrapped copy is
// discarded, and the imported token object itself is never extractable.
//
// Both objects live in a session of their own, closed at the end: closing
// a session destroys its objects, so the extractable copy cannot outlive
// the call even if C_DestroyObject fails, as it could in a pooled session.
// The same bytes have just unwrapped in the caller's session, so a failure
// to unwrap them again, or to wrap a copy, is the token's (its
// capabilities were probed with a 256-bit key: probeWrap), unless the
// token refuses the length itself.
//
// The session is one more than the pool holds, for the length of the
// check; on a token with a tight session limit an import can fail with
// CKR_SESSION_COUNT (an internal error, retried by the SDKs). Its faults
// are reported without their PKCS#11 code, so that run does not take them
// for faults of the pooled session it lent (and discard a healthy one);
// and a session the token says is gone is not closed, since its handle
// number may already name another session.
func (d *PKCS11) unwrappedLength(ctx context.Context, wk pkcs11.ObjectHandle, alg WrapAlgorithm, wrapped []byte) (uint, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s, err := d.openSession()
	if err != nil {
		return 0, fmt.Errorf("hsm: length check: %v", err)
	}
	lengthCheckSessions.Add(1)
	n, err := d.measureUnwrapped(s, wk, oaepMechanism(alg.sha256()), wrapped)
	if isCKR(err, pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED) {
		lengthCheckSessions.Add(-1) // gone already
	} else {
		d.closeLengthCheckSession(s)
	}
	if isSessionFault(err) {
		return 0, fmt.Errorf("hsm: the length check's own session: %v", err)
	}
	return n, err
}

// lengthCheckSessions counts the sessions unwrappedLength has open (for a
// test: SoftHSM does not report its session count).
var lengthCheckSessions atomic.Int64

func (d *PKCS11) closeLengthCheckSession(s pkcs11.SessionHandle) {
	d.closeSession(s)
	lengthCheckSessions.Add(-1)
}

// measureUnwrapped is unwrappedLength inside session s; probeWrap runs it
// on a throwaway value to learn whether the token can do it.
func (d *PKCS11) measureUnwrapped(s pkcs11.SessionHandle, wk pkcs11.ObjectHandle, mech []*pkcs11.Mechanism, wrapped []byte) (uint, error) {
	cp, err := d.mod.ctx.UnwrapKey(s, mech, wk, wrapped, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
	})
	if err != nil {
		return 0, callError("C_UnwrapKey (length check copy)", err)
	}
	defer func() { _ = d.mod.ctx.DestroyObject(s, cp) }()
	kek, err := d.mod.ctx.GenerateKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
	})
	if err != nil {
		return 0, callError("C_GenerateKey (length check)", err)
	}
	defer func() { _ = d.mod.ctx.DestroyObject(s, kek) }()
	out, err := d.mod.ctx.WrapKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP, nil)}, kek, cp)
	switch {
	case isCKR(err, pkcs11.CKR_KEY_SIZE_RANGE, pkcs11.CKR_DATA_LEN_RANGE, pkcs11.CKR_KEY_NOT_WRAPPABLE):
		// A length RFC 3394 has no output for (an empty key, or not a
		// multiple of 8 bytes on stricter tokens): not a 256-bit key.
		return 0, fmt.Errorf("%w: the key material is not 32 bytes: %w", ErrUnwrapFailed, callError("C_WrapKey", err))
	case err != nil:
		return 0, callError("C_WrapKey (length check)", err)
	case len(out) < 8:
		return 0, nil
	}
	return uint(len(out) - 8), nil
}

func unwrapError(err error) error {
	switch {
	case err == nil:
		return nil
	case isUnsupportedMechanism(err):
		return fmt.Errorf("%w: %w", ErrUnsupportedWrap, callError("C_UnwrapKey", err))
	case isUnwrapFailure(err):
		return fmt.Errorf("%w: %w", ErrUnwrapFailed, callError("C_UnwrapKey", err))
	}
	return callError("C_UnwrapKey", err)
}

func (d *PKCS11) cmac(s pkcs11.SessionHandle, key pkcs11.ObjectHandle) ([]byte, error) {
	if err := d.mod.ctx.SignInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_CMAC, nil)}, key); err != nil {
		return nil, callError("C_SignInit", err)
	}
	mac, err := d.mod.ctx.Sign(s, CheckValueMessage)
	if err != nil {
		return nil, callError("C_Sign", err)
	}
	return mac, nil
}

// KeyCheckValue implements ImportDevice.
func (d *PKCS11) KeyCheckValue(ctx context.Context, id []byte) ([]byte, error) {
	var kcv []byte
	err := d.withKey(ctx, id, func(s pkcs11.SessionHandle, key pkcs11.ObjectHandle) error {
		var err error
		kcv, err = d.cmac(s, key)
		return err
	})
	return kcv, err
}

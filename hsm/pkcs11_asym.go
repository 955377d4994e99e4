package hsm

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"

	"github.com/miekg/pkcs11"
)

var _ AsymmetricDevice = (*PKCS11)(nil)

// asymState is the PKCS11 device's state for asymmetric keys.
type asymState struct {
	// oaepMu guards oaepNative: per hash, whether the token decrypts
	// RSAES-OAEP natively, learnt once by a trial (see oaepIsNative).
	oaepMu     sync.Mutex
	oaepNative map[crypto.Hash]bool
	// forceFallback makes every OAEP decryption take the raw-RSA path,
	// so tests can compare it with the native path on the same key.
	forceFallback atomic.Bool
	// modulusLen caches the modulus size in bytes of RSA private keys
	// used by the fallback path (public data, read once per key).
	modulusLen sync.Map // string(id) -> int
}

// ForceOAEPFallback makes DecryptOAEP decode OAEP in the service after raw
// RSA in the token even where the token could do OAEP itself. It exists for
// tests that prove both paths give the same results.
func (d *PKCS11) ForceOAEPFallback(on bool) { d.asym.forceFallback.Store(on) }

// publicIndexKey is the index key of a key pair's public object. Backing
// ids are BackingIDSize bytes, so the prefixed form never equals an id.
func publicIndexKey(id []byte) []byte { return append([]byte("pub:"), id...) }

func hashMechanisms(h crypto.Hash) (hashMech, mgf, hmacMech uint, err error) {
	switch h {
	case crypto.SHA1:
		return pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1, pkcs11.CKM_SHA_1_HMAC, nil
	case crypto.SHA224:
		return pkcs11.CKM_SHA224, pkcs11.CKG_MGF1_SHA224, pkcs11.CKM_SHA224_HMAC, nil
	case crypto.SHA256:
		return pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256, pkcs11.CKM_SHA256_HMAC, nil
	case crypto.SHA384:
		return pkcs11.CKM_SHA384, pkcs11.CKG_MGF1_SHA384, pkcs11.CKM_SHA384_HMAC, nil
	case crypto.SHA512:
		return pkcs11.CKM_SHA512, pkcs11.CKG_MGF1_SHA512, pkcs11.CKM_SHA512_HMAC, nil
	}
	return 0, 0, 0, fmt.Errorf("%w: hash %v", ErrUnsupported, h)
}

// protectedTemplate is the protection every private or secret key gets, plus
// exactly the usage flags asked for (all others false).
func protectedTemplate(id []byte, label string, usage ...uint) []*pkcs11.Attribute {
	attrs := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
	for _, flag := range []uint{pkcs11.CKA_SIGN, pkcs11.CKA_DECRYPT, pkcs11.CKA_UNWRAP, pkcs11.CKA_DERIVE} {
		on := false
		for _, u := range usage {
			on = on || u == flag
		}
		attrs = append(attrs, pkcs11.NewAttribute(flag, on))
	}
	return attrs
}

// publicTemplate is the public half of a pair: a token object (private, so
// that a token seen without login shows nothing) with one usage.
// SoftHSM's defaults turn every usage on, so each one is set explicitly.
func publicTemplate(id []byte, label string, usage uint) []*pkcs11.Attribute {
	attrs := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
	for _, flag := range []uint{pkcs11.CKA_VERIFY, pkcs11.CKA_ENCRYPT, pkcs11.CKA_WRAP, pkcs11.CKA_VERIFY_RECOVER, pkcs11.CKA_DERIVE} {
		attrs = append(attrs, pkcs11.NewAttribute(flag, flag == usage))
	}
	return attrs
}

// GenerateRSAKeyPair implements AsymmetricDevice.
func (d *PKCS11) GenerateRSAKeyPair(ctx context.Context, id []byte, label string, bits int, usage PairUsage) ([]byte, error) {
	if bits != 2048 && bits != 3072 && bits != 4096 {
		return nil, fmt.Errorf("%w: RSA size %d", ErrUnsupported, bits)
	}
	pubUsage, privUsage := uint(pkcs11.CKA_VERIFY), uint(pkcs11.CKA_SIGN)
	switch usage {
	case PairSign:
	case PairDecrypt:
		pubUsage, privUsage = pkcs11.CKA_ENCRYPT, pkcs11.CKA_DECRYPT
	default:
		return nil, fmt.Errorf("%w: RSA usage %d", ErrUnsupported, usage)
	}
	pub := append(publicTemplate(id, label, pubUsage),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, bits),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}))
	priv := append(protectedTemplate(id, label, privUsage),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN_RECOVER, false),
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA))
	return d.generatePair(ctx, id, pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, pub, priv)
}

// GenerateECKeyPair implements AsymmetricDevice.
func (d *PKCS11) GenerateECKeyPair(ctx context.Context, id []byte, label string, curve Curve) ([]byte, error) {
	info, err := curveOf(curve)
	if err != nil {
		return nil, err
	}
	params, err := asn1.Marshal(info.oid)
	if err != nil {
		return nil, err
	}
	pub := append(publicTemplate(id, label, pkcs11.CKA_VERIFY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params))
	priv := append(protectedTemplate(id, label, pkcs11.CKA_SIGN),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN_RECOVER, false),
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC))
	return d.generatePair(ctx, id, pkcs11.CKM_EC_KEY_PAIR_GEN, pub, priv)
}

// generatePair runs C_GenerateKeyPair, indexes both objects and returns
// the SPKI read from the public object.
func (d *PKCS11) generatePair(ctx context.Context, id []byte, mech uint, pubTemplate, privTemplate []*pkcs11.Attribute) ([]byte, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	if !d.index.reserve(id) {
		return nil, fmt.Errorf("%w: %s", ErrDuplicateID, hexID(id))
	}
	defer d.index.release(id)
	var spki []byte
	err := d.runCreate(ctx, id, func(s pkcs11.SessionHandle) error { // create.go: no duplicate on retry
		pub, priv, err := d.mod.ctx.GenerateKeyPair(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}, pubTemplate, privTemplate)
		if err != nil {
			return callError("C_GenerateKeyPair", err)
		}
		d.index.store(id, priv)
		d.index.store(publicIndexKey(id), pub)
		spki, err = d.readSPKI(s, pub)
		return err
	})
	if err != nil {
		return nil, err
	}
	return spki, nil
}

// GenerateHMACKey implements AsymmetricDevice. SoftHSM refuses
// CKK_SHA256_HMAC keys from CKM_GENERIC_SECRET_KEY_GEN
// (CKR_TEMPLATE_INCONSISTENT), and every CKM_SHA*_HMAC accepts a generic
// secret, so HMAC keys are CKK_GENERIC_SECRET.
func (d *PKCS11) GenerateHMACKey(ctx context.Context, id []byte, label string, size int) error {
	if size < 16 || size > 128 {
		return fmt.Errorf("%w: HMAC key of %d bytes", ErrUnsupported, size)
	}
	if err := checkID(id); err != nil {
		return err
	}
	if !d.index.reserve(id) {
		return fmt.Errorf("%w: %s", ErrDuplicateID, hexID(id))
	}
	defer d.index.release(id)
	template := append(protectedTemplate(id, label, pkcs11.CKA_SIGN),
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, size),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false))
	return d.runCreate(ctx, id, func(s pkcs11.SessionHandle) error { // create.go: no duplicate on retry
		h, err := d.mod.ctx.GenerateKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_GENERIC_SECRET_KEY_GEN, nil)}, template)
		if err != nil {
			return callError("C_GenerateKey", err)
		}
		d.index.store(id, h)
		return nil
	})
}

// readSPKI builds the SubjectPublicKeyInfo of a public key object.
func (d *PKCS11) readSPKI(s pkcs11.SessionHandle, pub pkcs11.ObjectHandle) ([]byte, error) {
	attrs, err := d.mod.ctx.GetAttributeValue(s, pub, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil)})
	if err != nil {
		return nil, callError("C_GetAttributeValue", err)
	}
	switch ulong(attrs[0].Value) {
	case pkcs11.CKK_RSA:
		attrs, err := d.mod.ctx.GetAttributeValue(s, pub, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil),
		})
		if err != nil {
			return nil, callError("C_GetAttributeValue", err)
		}
		e := new(big.Int).SetBytes(attrs[1].Value)
		if !e.IsInt64() || e.Int64() > 1<<31-1 {
			return nil, fmt.Errorf("hsm: RSA public exponent out of range")
		}
		return x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: new(big.Int).SetBytes(attrs[0].Value), E: int(e.Int64())})
	case pkcs11.CKK_EC:
		attrs, err := d.mod.ctx.GetAttributeValue(s, pub, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil),
			pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil),
		})
		if err != nil {
			return nil, callError("C_GetAttributeValue", err)
		}
		var oid asn1.ObjectIdentifier
		if rest, err := asn1.Unmarshal(attrs[0].Value, &oid); err != nil || len(rest) != 0 {
			return nil, fmt.Errorf("hsm: CKA_EC_PARAMS is not a named curve")
		}
		curve := Curve(0)
		for c, info := range curves {
			if info.oid.Equal(oid) {
				curve = c
			}
		}
		// CKA_EC_POINT is a DER OCTET STRING around 04||X||Y.
		var point []byte
		if rest, err := asn1.Unmarshal(attrs[1].Value, &point); err != nil || len(rest) != 0 {
			return nil, fmt.Errorf("hsm: CKA_EC_POINT is not a DER octet string")
		}
		return ECPublicKeySPKI(curve, point)
	}
	return nil, fmt.Errorf("%w: key type %d", ErrUnsupported, ulong(attrs[0].Value))
}

// publicHandle returns the handle of a key pair's public object: from the
// index, or on a miss from one targeted search.
func (d *PKCS11) publicHandle(ctx context.Context, s pkcs11.SessionHandle, id []byte) (pkcs11.ObjectHandle, error) {
	key := publicIndexKey(id)
	if h, ok := d.index.lookup(key); ok {
		return h, nil
	}
	if len(id) == 0 {
		return 0, fmt.Errorf("%w: empty id", ErrKeyNotFound)
	}
	objects, err := d.scanObjects(ctx, s, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	})
	if err != nil {
		return 0, err
	}
	if len(objects) == 0 {
		return 0, fmt.Errorf("%w: public key %s", ErrKeyNotFound, hexID(id))
	}
	d.index.store(key, objects[0].handle)
	return objects[0].handle, nil
}

// withPublic is withKey for the public object of a pair.
func (d *PKCS11) withPublic(ctx context.Context, id []byte, op func(s pkcs11.SessionHandle, key pkcs11.ObjectHandle) error) error {
	return d.run(ctx, func(s pkcs11.SessionHandle) error {
		h, err := d.publicHandle(ctx, s, id)
		if err != nil {
			return err
		}
		err = op(s, h)
		if isStaleHandle(err) {
			d.index.forget(publicIndexKey(id), h)
		}
		return err
	})
}

// PublicKey implements AsymmetricDevice.
func (d *PKCS11) PublicKey(ctx context.Context, id []byte) ([]byte, error) {
	var spki []byte
	err := d.withPublic(ctx, id, func(s pkcs11.SessionHandle, key pkcs11.ObjectHandle) error {
		var err error
		spki, err = d.readSPKI(s, key)
		return err
	})
	return spki, err
}

// signMechanism returns the mechanism and the data to sign for p.
func signMechanism(p SignParams, digest []byte) ([]*pkcs11.Mechanism, []byte, error) {
	if err := checkDigest(p, digest); err != nil {
		return nil, nil, err
	}
	switch p.Scheme {
	case SchemeECDSA:
		if _, err := curveOf(p.Curve); err != nil {
			return nil, nil, err
		}
		return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}, digest, nil
	case SchemeRSAPSS:
		hashMech, mgf, _, err := hashMechanisms(p.Hash)
		if err != nil {
			return nil, nil, err
		}
		params := pkcs11.NewPSSParams(hashMech, mgf, uint(p.Hash.Size()))
		return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_PSS, params)}, digest, nil
	case SchemeRSAPKCS1v15:
		data, err := digestInfo(p.Hash, digest)
		if err != nil {
			return nil, nil, err
		}
		return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil)}, data, nil
	}
	return nil, nil, fmt.Errorf("%w: scheme %d", ErrUnsupported, p.Scheme)
}

// Sign implements AsymmetricDevice. ECDSA runs as CKM_ECDSA over the
// digest (SoftHSM has no CKM_ECDSA_SHA256) and the raw r||s is converted
// to DER.
func (d *PKCS11) Sign(ctx context.Context, id []byte, p SignParams, digest []byte) ([]byte, error) {
	mech, data, err := signMechanism(p, digest)
	if err != nil {
		return nil, err
	}
	var sig []byte
	err = d.withKey(ctx, id, func(s pkcs11.SessionHandle, key pkcs11.ObjectHandle) error {
		if err := d.mod.ctx.SignInit(s, mech, key); err != nil {
			return callError("C_SignInit", err)
		}
		var err error
		if sig, err = d.mod.ctx.Sign(s, data); err != nil {
			return callError("C_Sign", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if p.Scheme == SchemeECDSA {
		return rawToDER(curves[p.Curve], sig)
	}
	return sig, nil
}

// Verify implements AsymmetricDevice.
func (d *PKCS11) Verify(ctx context.Context, id []byte, p SignParams, digest, signature []byte) error {
	mech, data, err := signMechanism(p, digest)
	if err != nil {
		return err
	}
	if p.Scheme == SchemeECDSA {
		if signature, err = derToRaw(curves[p.Curve], signature); err != nil {
			return err
		}
	}
	return d.withPublic(ctx, id, func(s pkcs11.SessionHandle, key pkcs11.ObjectHandle) error {
		if err := d.mod.ctx.VerifyInit(s, mech, key); err != nil {
			return callError("C_VerifyInit", err)
		}
		if err := d.mod.ctx.Verify(s, data, signature); err != nil {
			if isCKR(err, pkcs11.CKR_SIGNATURE_INVALID, pkcs11.CKR_SIGNATURE_LEN_RANGE) {
				return fmt.Errorf("%w: %w", ErrInvalidSignature, callError("C_Verify", err))
			}
			return callError("C_Verify", err)
		}
		return nil
	})
}

// MAC implements AsymmetricDevice.
func (d *PKCS11) MAC(ctx context.Context, id []byte, h crypto.Hash, message []byte) ([]byte, error) {
	_, _, mech, err := hashMechanisms(h)
	if err != nil {
		return nil, err
	}
	var mac []byte
	err = d.withKey(ctx, id, func(s pkcs11.SessionHandle, key pkcs11.ObjectHandle) error {
		if err := d.mod.ctx.SignInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}, key); err != nil {
			return callError("C_SignInit", err)
		}
		var err error
		if mac, err = d.mod.ctx.Sign(s, message); err != nil {
			return callError("C_Sign", err)
		}
		return nil
	})
	return mac, err
}

// VerifyMAC implements AsymmetricDevice. The comparison happens in the
// token (C_Verify), so the correct MAC never reaches the service.
func (d *PKCS11) VerifyMAC(ctx context.Context, id []byte, h crypto.Hash, message, mac []byte) error {
	_, _, mech, err := hashMechanisms(h)
	if err != nil {
		return err
	}
	if len(mac) != h.Size() {
		// SoftHSM answers a wrong length with CKR_SIGNATURE_LEN_RANGE; the
		// check here makes the result the same on every token.
		return fmt.Errorf("%w: MAC is %d bytes, want %d", ErrInvalidMAC, len(mac), h.Size())
	}
	return d.withKey(ctx, id, func(s pkcs11.SessionHandle, key pkcs11.ObjectHandle) error {
		if err := d.mod.ctx.VerifyInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}, key); err != nil {
			return callError("C_VerifyInit", err)
		}
		if err := d.mod.ctx.Verify(s, message, mac); err != nil {
			if isCKR(err, pkcs11.CKR_SIGNATURE_INVALID, pkcs11.CKR_SIGNATURE_LEN_RANGE) {
				return fmt.Errorf("%w: %w", ErrInvalidMAC, callError("C_Verify", err))
			}
			return callError("C_Verify", err)
		}
		return nil
	})
}

// DecryptOAEP implements AsymmetricDevice: natively (CKM_RSA_PKCS_OAEP)
// where the token supports the hash, else raw RSA in the token
// (CKM_RSA_X_509) and constant-time OAEP decoding here (see oaep.go).
func (d *PKCS11) DecryptOAEP(ctx context.Context, id []byte, h crypto.Hash, ciphertext []byte) ([]byte, error) {
	if _, err := hashLen(h); err != nil {
		return nil, err
	}
	native := false
	if !d.asym.forceFallback.Load() {
		var err error
		if native, err = d.oaepIsNative(ctx, h); err != nil {
			return nil, err
		}
	}
	if native {
		return d.decryptNativeOAEP(ctx, id, h, ciphertext)
	}
	return d.decryptFallbackOAEP(ctx, id, h, ciphertext)
}

func oaepMech(h crypto.Hash) ([]*pkcs11.Mechanism, error) {
	hashMech, mgf, _, err := hashMechanisms(h)
	if err != nil {
		return nil, err
	}
	params := pkcs11.NewOAEPParams(hashMech, mgf, pkcs11.CKZ_DATA_SPECIFIED, nil)
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_OAEP, params)}, nil
}

func (d *PKCS11) decryptNativeOAEP(ctx context.Context, id []byte, h crypto.Hash, ciphertext []byte) ([]byte, error) {
	mech, err := oaepMech(h)
	if err != nil {
		return nil, err
	}
	var out []byte
	err = d.withKey(ctx, id, func(s pkcs11.SessionHandle, key pkcs11.ObjectHandle) error {
		if err := d.mod.ctx.DecryptInit(s, mech, key); err != nil {
			return callError("C_DecryptInit", err)
		}
		var err error
		if out, err = d.mod.ctx.Decrypt(s, ciphertext); err != nil {
			if d.decryptRejected(err) || isCKR(err, pkcs11.CKR_DATA_LEN_RANGE, pkcs11.CKR_DATA_INVALID) {
				return fmt.Errorf("%w: %w", ErrDecryptFailed, callError("C_Decrypt", err))
			}
			return callError("C_Decrypt", err)
		}
		return nil
	})
	return out, err
}

func (d *PKCS11) decryptFallbackOAEP(ctx context.Context, id []byte, h crypto.Hash, ciphertext []byte) ([]byte, error) {
	var out []byte
	err := d.withKey(ctx, id, func(s pkcs11.SessionHandle, key pkcs11.ObjectHandle) error {
		k, err := d.modulusLen(s, id, key)
		if err != nil {
			return err
		}
		// RFC 8017 7.1.2 step 1: the ciphertext is exactly k bytes. Its
		// length is public, so this check may return early.
		if len(ciphertext) != k {
			return fmt.Errorf("%w: ciphertext is %d bytes, modulus %d", ErrDecryptFailed, len(ciphertext), k)
		}
		mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_X_509, nil)}
		if err := d.mod.ctx.DecryptInit(s, mech, key); err != nil {
			return callError("C_DecryptInit", err)
		}
		em, err := d.mod.ctx.Decrypt(s, ciphertext)
		if err != nil {
			if d.decryptRejected(err) || isCKR(err, pkcs11.CKR_DATA_LEN_RANGE, pkcs11.CKR_DATA_INVALID) {
				// c >= n: rejected before any secret is involved.
				return fmt.Errorf("%w: %w", ErrDecryptFailed, callError("C_Decrypt", err))
			}
			return callError("C_Decrypt", err)
		}
		defer clear(em)
		if len(em) > k {
			return fmt.Errorf("hsm: raw RSA returned %d bytes for a %d-byte modulus", len(em), k)
		}
		// PKCS#11 returns k bytes for CKM_RSA_X_509; a token that strips
		// leading zeros is padded back so the decoding sees the full block.
		block := make([]byte, k)
		copy(block[k-len(em):], em)
		defer clear(block)
		out, err = decodeOAEP(h, block)
		return err
	})
	return out, err
}

// modulusLen returns the modulus size in bytes of an RSA private key.
func (d *PKCS11) modulusLen(s pkcs11.SessionHandle, id []byte, key pkcs11.ObjectHandle) (int, error) {
	if k, ok := d.asym.modulusLen.Load(string(id)); ok {
		return k.(int), nil
	}
	attrs, err := d.mod.ctx.GetAttributeValue(s, key, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil)})
	if err != nil {
		return 0, callError("C_GetAttributeValue", err)
	}
	k := (new(big.Int).SetBytes(attrs[0].Value).BitLen() + 7) / 8
	d.asym.modulusLen.Store(string(id), k)
	return k, nil
}

// oaepIsNative reports whether the token does RSAES-OAEP with hash h
// itself. The first call for a hash finds out with a trial on a throwaway
// session key pair (1024 bits, destroyed at once): encrypt with Go, decrypt
// natively in the token, compare. The answer is cached for the life of the
// device. Only a refusal of the mechanism parameters counts as "not
// supported"; any other failure is returned and the trial runs again next
// time.
func (d *PKCS11) oaepIsNative(ctx context.Context, h crypto.Hash) (bool, error) {
	d.asym.oaepMu.Lock()
	defer d.asym.oaepMu.Unlock()
	if native, ok := d.asym.oaepNative[h]; ok {
		return native, nil
	}
	native, err := d.trialOAEP(ctx, h)
	if err != nil {
		return false, err
	}
	if d.asym.oaepNative == nil {
		d.asym.oaepNative = map[crypto.Hash]bool{}
	}
	d.asym.oaepNative[h] = native
	d.log.Info("hsm: RSA-OAEP capability", "token", d.cfg.TokenLabel, "hash", h.String(), "native", native)
	return native, nil
}

func (d *PKCS11) trialOAEP(ctx context.Context, h crypto.Hash) (bool, error) {
	mech, err := oaepMech(h)
	if err != nil {
		return false, err
	}
	native := false
	err = d.run(ctx, func(s pkcs11.SessionHandle) error {
		pubT := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, 1024),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
		}
		privT := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		}
		pub, priv, err := d.mod.ctx.GenerateKeyPair(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)}, pubT, privT)
		if err != nil {
			return callError("C_GenerateKeyPair", err)
		}
		defer func() {
			_ = d.mod.ctx.DestroyObject(s, priv)
			_ = d.mod.ctx.DestroyObject(s, pub)
		}()
		spki, err := d.readSPKI(s, pub)
		if err != nil {
			return err
		}
		pk, err := x509.ParsePKIXPublicKey(spki)
		if err != nil {
			return err
		}
		probe := []byte("oaep capability probe")
		ct, err := rsa.EncryptOAEP(h.New(), rand.Reader, pk.(*rsa.PublicKey), probe, nil)
		if err != nil {
			return err
		}
		if err := d.mod.ctx.DecryptInit(s, mech, priv); err != nil {
			if isCKR(err, pkcs11.CKR_ARGUMENTS_BAD, pkcs11.CKR_MECHANISM_PARAM_INVALID, pkcs11.CKR_MECHANISM_INVALID) {
				return nil
			}
			return callError("C_DecryptInit", err)
		}
		out, err := d.mod.ctx.Decrypt(s, ct)
		native = err == nil && string(out) == string(probe)
		if err != nil && isSessionFault(err) {
			return callError("C_Decrypt", err)
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrClosed) {
		return false, fmt.Errorf("hsm: RSA-OAEP %v capability trial: %w", h, err)
	}
	return native, err
}

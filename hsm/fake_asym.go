package hsm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"sync"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

var _ AsymmetricDevice = (*Fake)(nil)

// fakeAsymKeys holds the Fake's asymmetric and HMAC keys, outside the Fake
// struct so that this feature lives in its own file. Each key also gets a
// placeholder entry in Fake.keys, so that ObjectIDs lists it and Destroy
// removes it, as on a token; a key whose placeholder is gone is treated as
// destroyed.
var fakeAsymKeys sync.Map // *Fake -> *sync.Map (string(id) -> *fakeAsymKey)

type fakeAsymKey struct {
	rsa   *rsa.PrivateKey
	usage PairUsage
	ec    *ecdsa.PrivateKey
	k1    *secp256k1.PrivateKey
	hmac  []byte
	spki  []byte
}

func (f *Fake) asymKeys() *sync.Map {
	m, _ := fakeAsymKeys.LoadOrStore(f, &sync.Map{})
	return m.(*sync.Map)
}

func (f *Fake) addAsym(ctx context.Context, id []byte, k *fakeAsymKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx); err != nil {
		return err
	}
	if err := checkID(id); err != nil {
		return err
	}
	if _, ok := f.keys[string(id)]; ok {
		return fmt.Errorf("%w: %s", ErrDuplicateID, hexID(id))
	}
	placeholder := make([]byte, 32)
	if _, err := rand.Read(placeholder); err != nil {
		return err
	}
	aead, err := fakeAEAD(placeholder)
	if err != nil {
		return err
	}
	f.keys[string(id)] = aead
	f.asymKeys().Store(string(id), k)
	return nil
}

func (f *Fake) asymKey(ctx context.Context, id []byte) (*fakeAsymKey, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if err := f.enter(ctx); err != nil {
		return nil, err
	}
	k, ok := f.asymKeys().Load(string(id))
	if _, live := f.keys[string(id)]; !ok || !live {
		return nil, fmt.Errorf("%w: %s", ErrKeyNotFound, hexID(id))
	}
	return k.(*fakeAsymKey), nil
}

// GenerateRSAKeyPair implements AsymmetricDevice.
func (f *Fake) GenerateRSAKeyPair(ctx context.Context, id []byte, label string, bits int, usage PairUsage) ([]byte, error) {
	if bits != 2048 && bits != 3072 && bits != 4096 {
		return nil, fmt.Errorf("%w: RSA size %d", ErrUnsupported, bits)
	}
	if usage != PairSign && usage != PairDecrypt {
		return nil, fmt.Errorf("%w: RSA usage %d", ErrUnsupported, usage)
	}
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	return spki, f.addAsym(ctx, id, &fakeAsymKey{rsa: key, usage: usage, spki: spki})
}

// GenerateECKeyPair implements AsymmetricDevice.
func (f *Fake) GenerateECKeyPair(ctx context.Context, id []byte, label string, curve Curve) ([]byte, error) {
	k := &fakeAsymKey{}
	var point []byte
	switch curve {
	case CurveSecp256k1:
		key, err := secp256k1.GeneratePrivateKey()
		if err != nil {
			return nil, err
		}
		k.k1 = key
		point = key.PubKey().SerializeUncompressed()
	case CurveP256, CurveP384, CurveP521:
		c := map[Curve]elliptic.Curve{CurveP256: elliptic.P256(), CurveP384: elliptic.P384(), CurveP521: elliptic.P521()}[curve]
		key, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			return nil, err
		}
		k.ec = key
		pub, err := key.PublicKey.Bytes()
		if err != nil {
			return nil, err
		}
		point = pub
	default:
		return nil, fmt.Errorf("%w: curve %d", ErrUnsupported, curve)
	}
	spki, err := ECPublicKeySPKI(curve, point)
	if err != nil {
		return nil, err
	}
	k.spki = spki
	return spki, f.addAsym(ctx, id, k)
}

// GenerateHMACKey implements AsymmetricDevice.
func (f *Fake) GenerateHMACKey(ctx context.Context, id []byte, label string, size int) error {
	if size < 16 || size > 128 {
		return fmt.Errorf("%w: HMAC key of %d bytes", ErrUnsupported, size)
	}
	key := make([]byte, size)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	return f.addAsym(ctx, id, &fakeAsymKey{hmac: key})
}

// PublicKey implements AsymmetricDevice.
func (f *Fake) PublicKey(ctx context.Context, id []byte) ([]byte, error) {
	k, err := f.asymKey(ctx, id)
	if err != nil {
		return nil, err
	}
	if k.spki == nil {
		return nil, fmt.Errorf("%w: public key %s", ErrKeyNotFound, hexID(id))
	}
	return k.spki, nil
}

// errWrongKeyType mirrors the token's CKR_KEY_TYPE_INCONSISTENT /
// CKR_KEY_FUNCTION_NOT_PERMITTED: an internal error, never a client one.
func errWrongKeyType(id []byte) error {
	return fmt.Errorf("hsm: key %s cannot do this operation", hexID(id))
}

// Sign implements AsymmetricDevice.
func (f *Fake) Sign(ctx context.Context, id []byte, p SignParams, digest []byte) ([]byte, error) {
	if _, _, err := signMechanism(p, digest); err != nil {
		return nil, err
	}
	k, err := f.asymKey(ctx, id)
	if err != nil {
		return nil, err
	}
	switch {
	case p.Scheme == SchemeECDSA && p.Curve == CurveSecp256k1 && k.k1 != nil:
		return secpecdsa.Sign(k.k1, digest).Serialize(), nil
	case p.Scheme == SchemeECDSA && k.ec != nil:
		return ecdsa.SignASN1(rand.Reader, k.ec, digest)
	case p.Scheme == SchemeRSAPSS && k.rsa != nil && k.usage == PairSign:
		return rsa.SignPSS(rand.Reader, k.rsa, p.Hash, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case p.Scheme == SchemeRSAPKCS1v15 && k.rsa != nil && k.usage == PairSign:
		return rsa.SignPKCS1v15(rand.Reader, k.rsa, p.Hash, digest)
	}
	return nil, errWrongKeyType(id)
}

// Verify implements AsymmetricDevice.
func (f *Fake) Verify(ctx context.Context, id []byte, p SignParams, digest, signature []byte) error {
	if _, _, err := signMechanism(p, digest); err != nil {
		return err
	}
	k, err := f.asymKey(ctx, id)
	if err != nil {
		return err
	}
	ok := false
	switch {
	case p.Scheme == SchemeECDSA && p.Curve == CurveSecp256k1 && k.k1 != nil:
		raw, err := derToRaw(curves[CurveSecp256k1], signature)
		if err != nil {
			return err
		}
		var r, s secp256k1.ModNScalar
		r.SetByteSlice(raw[:32])
		s.SetByteSlice(raw[32:])
		ok = secpecdsa.NewSignature(&r, &s).Verify(digest, k.k1.PubKey())
	case p.Scheme == SchemeECDSA && k.ec != nil:
		if _, err := derToRaw(curves[p.Curve], signature); err != nil {
			return err
		}
		ok = ecdsa.VerifyASN1(&k.ec.PublicKey, digest, signature)
	case p.Scheme == SchemeRSAPSS && k.rsa != nil && k.usage == PairSign:
		ok = rsa.VerifyPSS(&k.rsa.PublicKey, p.Hash, digest, signature, &rsa.PSSOptions{SaltLength: p.Hash.Size()}) == nil
	case p.Scheme == SchemeRSAPKCS1v15 && k.rsa != nil && k.usage == PairSign:
		ok = rsa.VerifyPKCS1v15(&k.rsa.PublicKey, p.Hash, digest, signature) == nil
	default:
		return errWrongKeyType(id)
	}
	if !ok {
		return ErrInvalidSignature
	}
	return nil
}

// DecryptOAEP implements AsymmetricDevice.
func (f *Fake) DecryptOAEP(ctx context.Context, id []byte, h crypto.Hash, ciphertext []byte) ([]byte, error) {
	if _, err := hashLen(h); err != nil {
		return nil, err
	}
	k, err := f.asymKey(ctx, id)
	if err != nil {
		return nil, err
	}
	if k.rsa == nil || k.usage != PairDecrypt {
		return nil, errWrongKeyType(id)
	}
	out, err := rsa.DecryptOAEP(h.New(), nil, k.rsa, ciphertext, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDecryptFailed, err)
	}
	return out, nil
}

func (f *Fake) hmacKey(ctx context.Context, id []byte, h crypto.Hash) ([]byte, error) {
	if _, err := hashLen(h); err != nil {
		return nil, err
	}
	k, err := f.asymKey(ctx, id)
	if err != nil {
		return nil, err
	}
	if k.hmac == nil {
		return nil, errWrongKeyType(id)
	}
	return k.hmac, nil
}

// MAC implements AsymmetricDevice.
func (f *Fake) MAC(ctx context.Context, id []byte, h crypto.Hash, message []byte) ([]byte, error) {
	key, err := f.hmacKey(ctx, id, h)
	if err != nil {
		return nil, err
	}
	m := hmac.New(h.New, key)
	m.Write(message)
	return m.Sum(nil), nil
}

// VerifyMAC implements AsymmetricDevice.
func (f *Fake) VerifyMAC(ctx context.Context, id []byte, h crypto.Hash, message, mac []byte) error {
	want, err := f.MAC(ctx, id, h, message)
	if err != nil {
		return err
	}
	if !hmac.Equal(want, mac) {
		return ErrInvalidMAC
	}
	return nil
}

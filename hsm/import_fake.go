package hsm

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"

	"hsmkms/hsm/aeskw"
)

var _ ImportDevice = (*Fake)(nil)

// fakeImports holds the Fake's import state, outside the Fake struct so that
// this feature lives in its own file: wrapping private keys and the raw
// material of imported keys (for the check value). A wrapping key also gets
// a placeholder entry in Fake.keys, so that ObjectIDs lists it and Destroy
// removes it, as on a token.
var fakeImports sync.Map // *Fake -> *fakeImportState

type fakeImportState struct {
	mu          sync.Mutex
	wrapping    map[string]*rsa.PrivateKey
	material    map[string][]byte
	unsupported map[WrapAlgorithm]bool
}

func (f *Fake) imports() *fakeImportState {
	st, _ := fakeImports.LoadOrStore(f, &fakeImportState{
		wrapping: map[string]*rsa.PrivateKey{}, material: map[string][]byte{}, unsupported: map[WrapAlgorithm]bool{},
	})
	return st.(*fakeImportState)
}

// RefuseWrapAlgorithm makes the Fake behave like a token that cannot do alg
// (SoftHSM2 2.6.1 and OAEP SHA-256), for tests of the refusal path.
func (f *Fake) RefuseWrapAlgorithm(alg WrapAlgorithm) {
	st := f.imports()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.unsupported[alg] = true
}

// GenerateWrappingKey implements ImportDevice.
func (f *Fake) GenerateWrappingKey(ctx context.Context, id []byte, label string, bits int) ([]byte, error) {
	if bits != 2048 && bits != 3072 && bits != 4096 {
		return nil, fmt.Errorf("hsm: unsupported RSA size %d", bits)
	}
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx); err != nil {
		return nil, err
	}
	if err := checkID(id); err != nil {
		return nil, err
	}
	if _, ok := f.keys[string(id)]; ok {
		return nil, fmt.Errorf("%w: %s", ErrDuplicateID, hexID(id))
	}
	placeholder, err := fakeAEAD(make([]byte, 32))
	if err != nil {
		return nil, err
	}
	f.keys[string(id)] = placeholder
	st := f.imports()
	st.mu.Lock()
	st.wrapping[string(id)] = key
	st.mu.Unlock()
	return x509.MarshalPKIXPublicKey(&key.PublicKey)
}

func fakeAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// SupportsWrapAlgorithm implements ImportDevice.
func (f *Fake) SupportsWrapAlgorithm(ctx context.Context, alg WrapAlgorithm) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	st := f.imports()
	st.mu.Lock()
	defer st.mu.Unlock()
	return alg >= WrapOAEPSHA1 && alg <= WrapRSAAESSHA256 && !st.unsupported[alg], nil
}

// UnwrapAESKey implements ImportDevice.
func (f *Fake) UnwrapAESKey(ctx context.Context, wrappingID []byte, alg WrapAlgorithm, wrapped, id []byte, label string) ([]byte, error) {
	if ok, err := f.SupportsWrapAlgorithm(ctx, alg); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnsupportedWrap, alg)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx); err != nil {
		return nil, err
	}
	st := f.imports()
	st.mu.Lock()
	defer st.mu.Unlock()
	wk, ok := st.wrapping[string(wrappingID)]
	if _, live := f.keys[string(wrappingID)]; !ok || !live {
		return nil, fmt.Errorf("%w: wrapping key %s", ErrKeyNotFound, hexID(wrappingID))
	}
	var h crypto.Hash = crypto.SHA1
	if alg.sha256() {
		h = crypto.SHA256
	}
	newHash := sha1.New
	if h == crypto.SHA256 {
		newHash = sha256.New
	}
	var material []byte
	if alg.TwoStep() {
		k := wk.Size()
		if len(wrapped) <= k {
			return nil, ErrUnwrapFailed
		}
		kek, err := rsa.DecryptOAEP(newHash(), nil, wk, wrapped[:k], nil)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnwrapFailed, err)
		}
		if material, err = aeskw.UnwrapPad(kek, wrapped[k:]); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnwrapFailed, err)
		}
	} else {
		var err error
		if material, err = rsa.DecryptOAEP(newHash(), nil, wk, wrapped, nil); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnwrapFailed, err)
		}
	}
	if len(material) != 32 {
		return nil, fmt.Errorf("%w: the key material is %d bytes, not 32", ErrUnwrapFailed, len(material))
	}
	kcv, err := aeskw.CMAC(material, CheckValueMessage)
	if err != nil {
		return nil, err
	}
	if id == nil {
		return kcv, nil
	}
	if err := checkID(id); err != nil {
		return nil, err
	}
	if _, ok := f.keys[string(id)]; ok {
		return nil, fmt.Errorf("%w: %s", ErrDuplicateID, hexID(id))
	}
	aead, err := fakeAEAD(material)
	if err != nil {
		return nil, err
	}
	f.keys[string(id)] = aead
	st.material[string(id)] = material
	return kcv, nil
}

// KeyCheckValue implements ImportDevice.
func (f *Fake) KeyCheckValue(ctx context.Context, id []byte) ([]byte, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if err := f.enter(ctx); err != nil {
		return nil, err
	}
	st := f.imports()
	st.mu.Lock()
	defer st.mu.Unlock()
	m, ok := st.material[string(id)]
	if _, live := f.keys[string(id)]; !ok || !live {
		if live {
			return nil, errors.New("hsm: key function not permitted (not an imported key)")
		}
		return nil, fmt.Errorf("%w: %s", ErrKeyNotFound, hexID(id))
	}
	return aeskw.CMAC(m, CheckValueMessage)
}

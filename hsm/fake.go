package hsm

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// Fake is an in-memory Device for fast unit tests. It uses Go's AES-GCM,
// whose output (ciphertext||tag) is byte-for-byte what the token produces,
// and it returns the same errors as PKCS11 for the same mistakes. Key
// material lives in process memory, so Fake is for tests only.
type Fake struct {
	mu     sync.RWMutex
	keys   map[string]cipher.AEAD
	closed bool

	// Calls counts every Device method call, for tests that assert how
	// often the service reaches the device.
	Calls atomic.Uint64
}

var _ Device = (*Fake)(nil)

// NewFake returns an empty Fake.
func NewFake() *Fake { return &Fake{keys: map[string]cipher.AEAD{}} }

func (f *Fake) enter(ctx context.Context) error {
	f.Calls.Add(1)
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.closed {
		return ErrClosed
	}
	return nil
}

// GenerateAESKey implements Device.
func (f *Fake) GenerateAESKey(ctx context.Context, id []byte, label string) error {
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
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return err
	}
	f.keys[string(id)] = aead
	return nil
}

func (f *Fake) key(ctx context.Context, id, iv []byte) (cipher.AEAD, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if err := f.enter(ctx); err != nil {
		return nil, err
	}
	if err := checkIV(iv); err != nil {
		return nil, err
	}
	aead, ok := f.keys[string(id)]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrKeyNotFound, hexID(id))
	}
	return aead, nil
}

// EncryptGCM implements Device.
func (f *Fake) EncryptGCM(ctx context.Context, id, iv, plaintext, aad []byte) ([]byte, error) {
	aead, err := f.key(ctx, id, iv)
	if err != nil {
		return nil, err
	}
	return aead.Seal(nil, iv, plaintext, aad), nil
}

// DecryptGCM implements Device.
func (f *Fake) DecryptGCM(ctx context.Context, id, iv, ciphertext, aad []byte) ([]byte, error) {
	aead, err := f.key(ctx, id, iv)
	if err != nil {
		return nil, err
	}
	plaintext, err := aead.Open(nil, iv, ciphertext, aad)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAuthFailed, err)
	}
	return plaintext, nil
}

// GenerateRandom implements Device.
func (f *Fake) GenerateRandom(ctx context.Context, n int) ([]byte, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if err := f.enter(ctx); err != nil {
		return nil, err
	}
	if err := checkRandomLen(n); err != nil {
		return nil, err
	}
	b := make([]byte, n)
	_, err := rand.Read(b)
	return b, err
}

// Destroy implements Device.
func (f *Fake) Destroy(ctx context.Context, id []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx); err != nil {
		return err
	}
	if _, ok := f.keys[string(id)]; !ok {
		return fmt.Errorf("%w: %s", ErrKeyNotFound, hexID(id))
	}
	delete(f.keys, string(id))
	return nil
}

// ObjectIDs implements Device, in byte order like PKCS11.
func (f *Fake) ObjectIDs(ctx context.Context) ([][]byte, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if err := f.enter(ctx); err != nil {
		return nil, err
	}
	ids := make([][]byte, 0, len(f.keys))
	for id := range f.keys {
		ids = append(ids, []byte(id))
	}
	slices.SortFunc(ids, bytes.Compare)
	return ids, nil
}

// Health implements Device.
func (f *Fake) Health(ctx context.Context) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.enter(ctx)
}

// Close implements Device; it is idempotent.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	clear(f.keys)
	return nil
}

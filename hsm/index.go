package hsm

import (
	"sync"

	"github.com/miekg/pkcs11"
)

// handleIndex maps backing ids (CKA_ID) to the handle of their AES key
// object. It exists because SoftHSM's C_FindObjects reads every object of the
// token (about 20 µs per object: 200 ms at 10,000 keys), while an operation
// on a known handle costs about 22 µs whatever the key count. It is filled by
// one scan at Open (and after a lost login, which invalidates every handle)
// and kept current by GenerateAESKey and Destroy.
type handleIndex struct {
	mu      sync.RWMutex
	handles map[string]pkcs11.ObjectHandle
	// pending holds ids being created, so two concurrent GenerateAESKey
	// calls with the same id cannot both pass the duplicate check.
	pending map[string]struct{}
	// misses remembers recent lookup misses (negcache.go).
	misses missCache
}

func newHandleIndex() *handleIndex {
	return &handleIndex{handles: map[string]pkcs11.ObjectHandle{}, pending: map[string]struct{}{}}
}

func (x *handleIndex) lookup(id []byte) (pkcs11.ObjectHandle, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	h, ok := x.handles[string(id)]
	return h, ok
}

func (x *handleIndex) len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.handles)
}

// store records h for id.
func (x *handleIndex) store(id []byte, h pkcs11.ObjectHandle) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.handles[string(id)] = h
	x.misses.forget(id)
}

// forget drops id, but only while it still maps to h: a concurrent
// re-lookup may already have stored a newer handle.
func (x *handleIndex) forget(id []byte, h pkcs11.ObjectHandle) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if cur, ok := x.handles[string(id)]; ok && cur == h {
		delete(x.handles, string(id))
	}
}

func (x *handleIndex) remove(id []byte) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.handles, string(id))
	delete(x.handles, string(publicIndexKey(id)))
}

// reserve claims id for creation; it fails if the id is known or being
// created. The caller must call release (and store on success).
func (x *handleIndex) reserve(id []byte) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.handles[string(id)]; ok {
		return false
	}
	if _, ok := x.pending[string(id)]; ok {
		return false
	}
	x.pending[string(id)] = struct{}{}
	return true
}

func (x *handleIndex) release(id []byte) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.pending, string(id))
}

// replace swaps in the result of a full scan.
func (x *handleIndex) replace(handles map[string]pkcs11.ObjectHandle) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.handles = handles
}

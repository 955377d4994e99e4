// Package cache is the caching cryptographic materials manager
// (framework/caching-cmm.md) with a local LRU materials cache
// (framework/local-cryptographic-materials-cache.md).
//
// It reuses a data key for several messages to save KMS calls (and stay
// under KMS request quotas), within the ESDK's limits per cached entry: a
// maximum age, a maximum number of plaintext bytes and a maximum number of
// messages (at most 2^32). Entries are partitioned by partition ID,
// algorithm suite and encryption context: two requests share a data key
// only if all three are equal. Suites with the identity KDF are never
// cached, since reusing their data key would reuse the AES key and
// therefore GCM nonces. Encryptions of unknown length bypass the cache
// (their bytes cannot be counted in advance), as in the ESDK.
package cache

import (
	"container/list"
	"context"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"math"
	"sync"
	"time"

	"hsmkms/kms/envelope"
	"hsmkms/kms/envelope/format"
)

// MaxMessagesLimit is the ESDK's upper bound on messages per data key.
const MaxMessagesLimit = 1 << 32

// MaxBytesLimit is the default (and largest) byte limit, 2^63-1.
const MaxBytesLimit = 1<<63 - 1

// Options configure a caching CMM.
type Options struct {
	// Capacity is the number of entries the cache holds; the least
	// recently used entry is evicted beyond it. Required (> 0).
	Capacity int
	// MaxAge is how long an entry may be used after it was created.
	// Required (> 0).
	MaxAge time.Duration
	// MaxBytes is the most plaintext bytes one data key may encrypt;
	// 0 means MaxBytesLimit.
	MaxBytes uint64
	// MaxMessages is the most messages one data key may encrypt; 0 means
	// MaxMessagesLimit, which is also the largest value allowed.
	MaxMessages uint64
	// PartitionID separates this CMM's entries from those of other
	// caching CMMs sharing nothing else; optional.
	PartitionID string
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Stats counts cache activity.
type Stats struct {
	Hits, Misses, Bypasses, Evictions uint64
}

type entry struct {
	key      string
	created  time.Time
	enc      *envelope.EncryptionMaterials
	dec      *envelope.DecryptionMaterials
	messages uint64
	bytes    uint64
}

// CMM is the caching CMM. It is safe for concurrent use.
type CMM struct {
	under envelope.CMM
	opts  Options

	mu      sync.Mutex
	lru     *list.List // of *entry, most recent first
	entries map[string]*list.Element
	stats   Stats
}

var _ envelope.CMM = (*CMM)(nil)

// New returns a caching CMM over under.
func New(under envelope.CMM, o Options) (*CMM, error) {
	switch {
	case under == nil:
		return nil, errors.New("cache: no underlying CMM")
	case o.Capacity <= 0:
		return nil, errors.New("cache: capacity must be at least 1")
	case o.MaxAge <= 0:
		return nil, errors.New("cache: max age must be positive")
	case o.MaxMessages > MaxMessagesLimit:
		return nil, errors.New("cache: max messages may not exceed 2^32")
	case o.MaxBytes > MaxBytesLimit:
		return nil, errors.New("cache: max bytes may not exceed 2^63-1")
	}
	if o.MaxMessages == 0 {
		o.MaxMessages = MaxMessagesLimit
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = MaxBytesLimit
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &CMM{under: under, opts: o, lru: list.New(), entries: map[string]*list.Element{}}, nil
}

// Stats returns the counters so far.
func (c *CMM) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Len returns the number of cached entries.
func (c *CMM) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// cacheKey is a digest of everything that must be equal for two requests
// to share materials. Every variable-length field is length-prefixed so
// that different inputs never serialize alike.
func (c *CMM) cacheKey(kind byte, suite *format.Suite, ec map[string]string, edks []format.EDK) (string, error) {
	h := sha512.New()
	field := func(b []byte) {
		var l [8]byte
		binary.BigEndian.PutUint64(l[:], uint64(len(b)))
		h.Write(l[:])
		h.Write(b)
	}
	field([]byte{kind})
	field([]byte(c.opts.PartitionID))
	if suite == nil {
		field(nil) // "the underlying CMM's default", distinct from any suite
	} else {
		field([]byte{byte(suite.ID >> 8), byte(suite.ID)})
	}
	serialized, err := format.MarshalEncryptionContext(ec)
	if err != nil {
		return "", err
	}
	field(serialized)
	field(binary.BigEndian.AppendUint64(nil, uint64(len(edks))))
	for _, e := range edks {
		field([]byte(e.ProviderID))
		field(e.ProviderInfo)
		field(e.Ciphertext)
	}
	return string(h.Sum(nil)), nil
}

// GetEncryptionMaterials implements envelope.CMM.
func (c *CMM) GetEncryptionMaterials(ctx context.Context, req envelope.EncryptionRequest) (*envelope.EncryptionMaterials, error) {
	if (req.Suite != nil && req.Suite.IdentityKDF()) || req.PlaintextLength < 0 || uint64(req.PlaintextLength) > c.opts.MaxBytes {
		c.count(func(s *Stats) { s.Bypasses++ })
		return c.under.GetEncryptionMaterials(ctx, req)
	}
	n := uint64(req.PlaintextLength)
	key, err := c.cacheKey('E', req.Suite, req.EncryptionContext, nil)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*entry)
		switch {
		case c.expired(e), e.messages+1 > c.opts.MaxMessages, e.bytes+n > c.opts.MaxBytes:
			c.remove(el)
		default:
			e.messages++
			e.bytes += n
			c.lru.MoveToFront(el)
			c.stats.Hits++
			m := e.enc.Clone()
			c.mu.Unlock()
			return m, nil
		}
	}
	c.stats.Misses++
	c.mu.Unlock()

	// The materials may serve up to MaxBytes of plaintext, not only this
	// message's: caching-cmm.md asks the underlying CMM for "a Max
	// Plaintext Length with a value equal to its Limit Bytes value".
	underReq := req
	underReq.PlaintextLength = int64(min(c.opts.MaxBytes, math.MaxInt64))
	m, err := c.under.GetEncryptionMaterials(ctx, underReq)
	if err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil { // never cache (or dereference) what a custom CMM got wrong
		return nil, err
	}
	if m.Suite.IdentityKDF() {
		return m, nil
	}
	c.put(&entry{key: key, created: c.opts.Now(), enc: m.Clone(), messages: 1, bytes: n})
	return m, nil
}

// DecryptMaterials implements envelope.CMM. Decryption materials are
// cached for MaxAge, keyed by suite, encrypted data keys and context.
func (c *CMM) DecryptMaterials(ctx context.Context, req envelope.DecryptionRequest) (*envelope.DecryptionMaterials, error) {
	if req.Suite.IdentityKDF() {
		c.count(func(s *Stats) { s.Bypasses++ })
		return c.under.DecryptMaterials(ctx, req)
	}
	key, err := c.cacheKey('D', req.Suite, req.EncryptionContext, req.EncryptedDataKeys)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*entry)
		if !c.expired(e) {
			c.lru.MoveToFront(el)
			c.stats.Hits++
			m := e.dec.Clone()
			c.mu.Unlock()
			return m, nil
		}
		c.remove(el)
	}
	c.stats.Misses++
	c.mu.Unlock()
	m, err := c.under.DecryptMaterials(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := m.Validate(req.Suite); err != nil {
		return nil, err
	}
	c.put(&entry{key: key, created: c.opts.Now(), dec: m.Clone()})
	return m, nil
}

func (c *CMM) count(f func(*Stats)) {
	c.mu.Lock()
	f(&c.stats)
	c.mu.Unlock()
}

// expired: an entry is usable for MaxAge after its creation.
func (c *CMM) expired(e *entry) bool { return c.opts.Now().Sub(e.created) >= c.opts.MaxAge }

// remove drops an entry; the caller holds mu.
func (c *CMM) remove(el *list.Element) {
	c.lru.Remove(el)
	delete(c.entries, el.Value.(*entry).key)
	c.stats.Evictions++
}

// put inserts or replaces an entry and evicts beyond capacity.
func (c *CMM) put(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[e.key]; ok {
		c.lru.Remove(old)
		delete(c.entries, e.key)
	}
	c.entries[e.key] = c.lru.PushFront(e)
	for c.lru.Len() > c.opts.Capacity {
		c.remove(c.lru.Back())
	}
}

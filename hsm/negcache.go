package hsm

import (
	"sync"
	"sync/atomic"
	"time"
)

// missRecheckInterval is how long an id that a targeted search did not find
// (or found ambiguous) is answered from memory before the token is searched
// again. Without it, every request for a key version whose object is gone
// costs one full C_FindObjects (O(objects) on SoftHSM: about 200 ms at
// 10,000 keys), which any caller allowed to use the key can repeat at will.
// A key made by another process on the same token under an id that missed
// here becomes visible after at most this long; the service itself never
// looks an id up before creating it.
const missRecheckInterval = 5 * time.Second

// missRecheck is missRecheckInterval, changeable by tests.
var missRecheck = func() *atomic.Int64 {
	var v atomic.Int64
	v.Store(int64(missRecheckInterval))
	return &v
}()

// missCache remembers recent lookup misses. Creating an object under an id
// (handleIndex.store) forgets its miss at once.
type missCache struct {
	mu      sync.Mutex
	entries map[string]missEntry
}

type missEntry struct {
	until time.Time
	err   error
}

// recent returns the remembered error for id if its miss is still fresh.
func (m *missCache) recent(id []byte, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[string(id)]
	if !ok {
		return nil
	}
	if now.After(e.until) {
		delete(m.entries, string(id))
		return nil
	}
	return e.err
}

func (m *missCache) add(id []byte, err error, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entries == nil {
		m.entries = map[string]missEntry{}
	}
	// Expired entries go on the next add, so the map stays bounded by
	// the ids missed within one interval.
	if len(m.entries) >= 1024 {
		for k, e := range m.entries {
			if now.After(e.until) {
				delete(m.entries, k)
			}
		}
	}
	m.entries[string(id)] = missEntry{until: now.Add(time.Duration(missRecheck.Load())), err: err}
}

func (m *missCache) forget(id []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.entries, string(id))
}

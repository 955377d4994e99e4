package hsm

import "time"

// Stats is a snapshot of the device's session pool and handle index, for
// metrics.
type Stats struct {
	PoolSize int // sessions in the pool
	InUse    int // sessions borrowed right now
	// Waits counts borrowers that found no free session; WaitTime is the
	// total time they waited.
	Waits    uint64
	WaitTime time.Duration
	// Handles is the number of entries in the backing-id -> handle index.
	Handles int
}

// Stats returns the pool and index figures. It takes no session.
func (d *PKCS11) Stats() Stats {
	return Stats{
		PoolSize: cap(d.pool.slots),
		InUse:    cap(d.pool.slots) - len(d.pool.slots),
		Waits:    d.pool.waits.Load(),
		WaitTime: time.Duration(d.pool.waitNanos.Load()),
		Handles:  d.index.len(),
	}
}

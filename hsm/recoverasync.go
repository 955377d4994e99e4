package hsm

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// recoveryTimeout bounds one recovery (re-login and index scan: about
// 200 ms per 10,000 keys on SoftHSM). It is the recovery's own deadline, not
// a request's.
const recoveryTimeout = 2 * time.Minute

// recoveryState runs at most one recovery at a time, in its own goroutine.
// Recovery used to run under the context of whichever request hit the
// fault: a client disconnect or the /readyz probe's short timeout cancelled
// the index scan after the re-login, which left the index empty for good
// (every key then costs a C_FindObjects on every request). Now callers only
// wait for it, each up to its own context, and the recovery finishes anyway.
type recoveryState struct {
	mu   sync.Mutex
	call *recoveryCall
	// indexDirty: the login was restored but the index could not be
	// rebuilt; the next Health or fault retries.
	indexDirty atomic.Bool
}

type recoveryCall struct {
	done chan struct{}
	err  error
}

// recover starts a recovery (or joins the running one) and waits for it or
// for ctx. The caller must hold an inflight registration (enter), so that
// Close waits for the recovery goroutine too.
func (d *PKCS11) recover(ctx context.Context, seenGen uint64) error {
	d.rec.mu.Lock()
	c := d.rec.call
	if c == nil {
		c = &recoveryCall{done: make(chan struct{})}
		d.rec.call = c
		d.inflight.Add(1)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recoveryTimeout)
		go func() {
			defer d.inflight.Done()
			defer cancel()
			c.err = d.recoverNow(rctx, seenGen)
			d.rec.mu.Lock()
			d.rec.call = nil
			d.rec.mu.Unlock()
			close(c.done)
		}()
	}
	d.rec.mu.Unlock()
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

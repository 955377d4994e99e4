package hsm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/miekg/pkcs11"
)

// run borrows a session, runs op on it and gives the session back. It
// retries op once, on a fresh session, after:
//   - a session or device fault (the session is discarded, and the anchor
//     and login are restored if they are gone too), or
//   - a stale object handle (op has already dropped it from the index, so
//     the retry looks the key up again).
func (d *PKCS11) run(ctx context.Context, op func(s pkcs11.SessionHandle) error) error {
	if err := d.enter(); err != nil {
		return err
	}
	defer d.inflight.Done()
	var err error
	for attempt := 1; attempt <= 2; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		s, perr := d.pool.get(ctx)
		if perr != nil {
			return perr
		}
		gen := d.gen.Load()
		err = d.callOp(s, op) // panic.go: a panic gives the slot back
		switch {
		case err == nil:
			d.pool.put(s)
			return nil
		case isSessionFault(err):
			gone := isCKR(err, pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED)
			d.pool.discard(s, !gone)
			d.log.Warn("hsm: session fault, recovering", "token", d.cfg.TokenLabel, "attempt", attempt, "err", err)
		case isStaleHandle(err):
			d.pool.put(s)
			d.log.Warn("hsm: stale object handle, looking the key up again", "token", d.cfg.TokenLabel, "attempt", attempt, "err", err)
		default:
			d.pool.put(s)
			return err
		}
		if attempt == 2 {
			break
		}
		// A stale handle may also mean the login was lost (SoftHSM
		// invalidates private handles at logout), so both cases check the
		// anchor; the check is one C_GetSessionInfo.
		if rerr := d.recover(ctx, gen); rerr != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, errors.Join(err, rerr))
		}
	}
	return fmt.Errorf("%w: still failing after recovery: %w", ErrUnavailable, err)
}

// recoverNow restores the anchor session and the login if they are gone,
// then rebuilds the key index, because every private handle died with the
// login. seenGen is the generation in which the caller saw its fault: if
// another goroutine has recovered since, there is nothing left to do, unless
// that recovery could not rebuild the index (indexDirty), which is then
// retried. anchorMu makes recoveries run one at a time. It runs detached
// from any request (recover, recoverasync.go).
func (d *PKCS11) recoverNow(ctx context.Context, seenGen uint64) error {
	d.anchorMu.Lock()
	defer d.anchorMu.Unlock()
	dirty := d.rec.indexDirty.Load()
	if !dirty && (d.gen.Load() != seenGen || d.anchorLoggedIn()) {
		return nil
	}
	if !d.loggedIn {
		return ErrClosed
	}
	if d.anchorLoggedIn() {
		return d.rebuildIndex(ctx, time.Now())
	}
	start := time.Now()
	d.log.Warn("hsm: login lost; re-opening the anchor session and rebuilding the key index", "token", d.cfg.TokenLabel)
	if d.anchor != 0 {
		// Closed only if still alive, for the same handle-reuse reason as
		// in sessionPool.discard.
		if d.sessionAlive(d.anchor) {
			d.closeSession(d.anchor)
		}
		d.anchor = 0
	}
	// The token may come back in another slot (a re-inserted device, a
	// re-initialized module), so the label is resolved again.
	slot, err := d.findSlot()
	if err != nil {
		return err
	}
	d.slot.Store(uint64(slot))
	anchor, err := d.openSession()
	if err != nil {
		return err
	}
	if err := d.mod.relogin(anchor, d.cfg.PIN); err != nil {
		d.closeSession(anchor)
		return err
	}
	d.anchor = anchor
	// Every pool session from before this point is suspect, and every
	// handle in the index is dead: until the rebuild succeeds the index is
	// empty (every key falls back to a targeted lookup) and marked dirty,
	// so that the next Health or fault retries the rebuild.
	d.gen.Add(1)
	d.rec.indexDirty.Store(true)
	d.index.replace(map[string]pkcs11.ObjectHandle{})
	return d.rebuildIndex(ctx, start)
}

// rebuildIndex replaces the index with a fresh scan and clears the dirty
// mark; on failure the mark stays. Call with anchorMu held and the anchor
// logged in.
func (d *PKCS11) rebuildIndex(ctx context.Context, start time.Time) error {
	handles, err := d.buildIndex(ctx, d.anchor)
	if err != nil {
		d.log.Error("hsm: rebuilding the key index failed; will retry", "token", d.cfg.TokenLabel, "err", err)
		return fmt.Errorf("hsm: rebuilding the key index: %w", err)
	}
	keys := len(handles)
	d.index.replace(handles)
	d.rec.indexDirty.Store(false)
	d.log.Info("hsm: recovered", "token", d.cfg.TokenLabel, "keys", keys, "duration", time.Since(start))
	return nil
}

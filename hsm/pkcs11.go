package hsm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/pkcs11"
)

// PKCS11 is a Device backed by a token of a PKCS#11 module. Create it with
// Open; it is safe for concurrent use.
//
// Sessions: one long-lived logged-in anchor session holds the login for the
// life of the device (when the last session of a token closes, SoftHSM logs
// out and every private object handle dies, even after a new login), and a
// bounded pool of sessions serves requests, each borrowed by one goroutine at
// a time. Key handles come from an in-memory index, so requests never search
// the token.
type PKCS11 struct {
	cfg   Config
	log   *slog.Logger
	mod   *module
	slot  atomic.Uint64
	pool  *sessionPool
	index *handleIndex

	// anchorMu guards the anchor session: it is used for the initial scan,
	// for Health and by recovery, one goroutine at a time like any session.
	anchorMu sync.Mutex
	anchor   pkcs11.SessionHandle
	loggedIn bool
	// gen counts full recoveries (anchor re-opened, login restored). Pool
	// sessions remember the generation they were opened in, and a caller
	// that saw a fault in generation g skips recovery if g is already past,
	// so concurrent failures cause one recovery, not a stampede.
	gen atomic.Uint64
	// rec runs recoveries detached from the callers (recoverasync.go).
	rec recoveryState

	findCalls atomic.Uint64
	// generalErrorIsAuth: the module reports a GCM tag mismatch as
	// CKR_GENERAL_ERROR (decryptquirk.go, probed at Open).
	generalErrorIsAuth atomic.Bool

	asym asymState

	lifeMu   sync.Mutex
	closed   bool
	done     chan struct{}
	inflight sync.WaitGroup
}

var _ Device = (*PKCS11)(nil)

// Open loads the module (once per process), selects the token by label,
// logs in, builds the key-handle index with one scan and fills the session
// pool. A wrong PIN fails here with ErrPINIncorrect.
func Open(ctx context.Context, cfg Config) (*PKCS11, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	start := time.Now()
	mod, err := acquireModule(cfg.ModulePath)
	if err != nil {
		return nil, err
	}
	d := &PKCS11{
		cfg:   cfg,
		log:   cfg.Logger,
		mod:   mod,
		index: newHandleIndex(),
		done:  make(chan struct{}),
	}
	d.pool = newSessionPool(cfg.PoolSize, cfg.PoolWait, d.done, &d.gen, d.openSession, d.closeSession, d.sessionAlive)
	if err := d.start(ctx); err != nil {
		return nil, errors.Join(err, d.teardown())
	}
	d.log.Info("hsm: device open", "config", cfg, "keys", d.index.len(), "duration", time.Since(start))
	return d, nil
}

// start runs the fallible part of Open; on error, teardown undoes it.
func (d *PKCS11) start(ctx context.Context) error {
	slot, err := d.findSlot()
	if err != nil {
		return err
	}
	d.slot.Store(uint64(slot))
	d.anchorMu.Lock()
	defer d.anchorMu.Unlock()
	if d.anchor, err = d.openSession(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := d.mod.login(d.anchor, d.cfg.TokenLabel, d.cfg.PIN); err != nil {
		return err
	}
	d.loggedIn = true
	handles, err := d.buildIndex(ctx, d.anchor)
	if err != nil {
		return fmt.Errorf("hsm: building the key index: %w", err)
	}
	d.index.replace(handles)
	d.probeDecryptQuirk(d.anchor)
	if err := d.pool.fill(); err != nil {
		return fmt.Errorf("%w: filling the session pool: %w", ErrUnavailable, err)
	}
	return nil
}

// Close waits for in-flight operations, closes every session, logs out
// (if this is the last device on the token) and finalizes the module (if
// this is the last device of the process). It is idempotent; every other
// method returns ErrClosed afterwards.
func (d *PKCS11) Close() error {
	d.lifeMu.Lock()
	if d.closed {
		d.lifeMu.Unlock()
		return nil
	}
	d.closed = true
	close(d.done)
	d.lifeMu.Unlock()
	d.inflight.Wait()
	wrapCapabilities.Delete(d) // import.go
	err := d.teardown()
	d.log.Info("hsm: device closed", "token", d.cfg.TokenLabel, "err", err)
	return err
}

func (d *PKCS11) teardown() error {
	d.pool.drain()
	d.anchorMu.Lock()
	defer d.anchorMu.Unlock()
	var errs []error
	if d.loggedIn {
		errs = append(errs, d.mod.logout(d.anchor, d.cfg.TokenLabel))
		d.loggedIn = false
	}
	if d.anchor != 0 {
		d.closeSession(d.anchor)
		d.anchor = 0
	}
	errs = append(errs, d.mod.release())
	return errors.Join(errs...)
}

// enter registers an operation so that Close waits for it.
func (d *PKCS11) enter() error {
	d.lifeMu.Lock()
	defer d.lifeMu.Unlock()
	if d.closed {
		return ErrClosed
	}
	d.inflight.Add(1)
	return nil
}

// FindObjectsCalls is the number of C_FindObjectsInit calls this device has
// made: one scan at Open, then only index misses, Destroy, ObjectIDs,
// HasObject and recoveries. Tests use it to prove that requests do not
// search the token.
func (d *PKCS11) FindObjectsCalls() uint64 { return d.findCalls.Load() }

// Health reports whether the anchor session is still logged in. If it is
// not, Health tries one recovery, so a readiness probe also heals the device.
func (d *PKCS11) Health(ctx context.Context) error {
	if err := d.enter(); err != nil {
		return err
	}
	defer d.inflight.Done()
	if err := ctx.Err(); err != nil {
		return err
	}
	d.anchorMu.Lock()
	ok := d.anchorLoggedIn() && !d.rec.indexDirty.Load()
	gen := d.gen.Load()
	d.anchorMu.Unlock()
	if ok {
		return nil
	}
	if err := d.recover(ctx, gen); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	d.anchorMu.Lock()
	defer d.anchorMu.Unlock()
	if !d.anchorLoggedIn() {
		return fmt.Errorf("%w: token %q: not logged in after recovery", ErrUnavailable, d.cfg.TokenLabel)
	}
	return nil
}

func (d *PKCS11) findSlot() (uint, error) {
	modules.Lock()
	defer modules.Unlock()
	return d.mod.findSlot(d.cfg.TokenLabel)
}

func (d *PKCS11) openSession() (pkcs11.SessionHandle, error) {
	h, err := d.mod.ctx.OpenSession(uint(d.slot.Load()), pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return 0, callError("C_OpenSession", err)
	}
	return h, nil
}

func (d *PKCS11) closeSession(h pkcs11.SessionHandle) {
	if err := d.mod.ctx.CloseSession(h); err != nil && !isCKR(err, pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED) {
		d.log.Warn("hsm: closing a session failed", "err", err)
	}
}

func (d *PKCS11) sessionAlive(h pkcs11.SessionHandle) bool {
	_, err := d.mod.ctx.GetSessionInfo(h)
	return err == nil
}

// anchorLoggedIn reports whether the anchor session exists and is in a user
// state. Call with anchorMu held.
func (d *PKCS11) anchorLoggedIn() bool {
	if d.anchor == 0 {
		return false
	}
	info, err := d.mod.ctx.GetSessionInfo(d.anchor)
	return err == nil && userState(info.State)
}

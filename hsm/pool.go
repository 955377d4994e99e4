package hsm

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/miekg/pkcs11"
)

// sessionPool lends PKCS#11 sessions to one goroutine at a time. Sharing a
// SoftHSM session between goroutines corrupts its heap and kills the process
// (SIGSEGV/SIGABRT, not an error code), so exclusive ownership is the
// invariant this type exists for.
//
// The channel holds a fixed number of slots. A slot with handle 0
// (CK_INVALID_HANDLE) is empty and gets a fresh session when borrowed, so a
// discarded session never shrinks the pool. A slot opened before the last
// full recovery (older generation) is probed on borrow, because losing the
// login usually means every session of the token died with it: a dead one is
// replaced, a live one kept.
type sessionPool struct {
	slots chan pooledSession
	wait  time.Duration
	done  <-chan struct{}
	gen   *atomic.Uint64
	open  func() (pkcs11.SessionHandle, error)
	close func(pkcs11.SessionHandle)
	alive func(pkcs11.SessionHandle) bool
	// waits and waitNanos count borrowers that found no free session and
	// how long they waited (metrics, stats.go).
	waits     atomic.Uint64
	waitNanos atomic.Int64
}

type pooledSession struct {
	h   pkcs11.SessionHandle
	gen uint64
}

func newSessionPool(size int, wait time.Duration, done <-chan struct{}, gen *atomic.Uint64,
	open func() (pkcs11.SessionHandle, error), closeFn func(pkcs11.SessionHandle), alive func(pkcs11.SessionHandle) bool) *sessionPool {
	p := &sessionPool{
		slots: make(chan pooledSession, size),
		wait:  wait,
		done:  done,
		gen:   gen,
		open:  open,
		close: closeFn,
		alive: alive,
	}
	for range size {
		p.slots <- pooledSession{}
	}
	return p
}

// fill opens a session in every empty slot, so that Open fails early when
// the token refuses sessions and the first requests pay nothing.
func (p *sessionPool) fill() error {
	n := cap(p.slots)
	taken := make([]pooledSession, 0, n)
	defer func() {
		for _, s := range taken {
			p.slots <- s
		}
	}()
	for range n {
		s := <-p.slots
		if s.h == 0 {
			h, err := p.open()
			if err != nil {
				taken = append(taken, s)
				return err
			}
			s = pooledSession{h: h, gen: p.gen.Load()}
		}
		taken = append(taken, s)
	}
	return nil
}

// get borrows a session, waiting at most p.wait. The caller must give it
// back with put or discard.
func (p *sessionPool) get(ctx context.Context) (pooledSession, error) {
	var s pooledSession
	select {
	case s = <-p.slots:
	default:
		waitStart := time.Now()
		defer func() { p.waits.Add(1); p.waitNanos.Add(int64(time.Since(waitStart))) }()
		timer := time.NewTimer(p.wait)
		defer timer.Stop()
		select {
		case s = <-p.slots:
		case <-ctx.Done():
			return pooledSession{}, ctx.Err()
		case <-p.done:
			return pooledSession{}, ErrClosed
		case <-timer.C:
			return pooledSession{}, fmt.Errorf("%w: no free PKCS#11 session within %s (pool size %d)", ErrUnavailable, p.wait, cap(p.slots))
		}
	}
	if gen := p.gen.Load(); s.h != 0 && s.gen != gen {
		if p.alive(s.h) {
			s.gen = gen
		} else {
			// Not closed: the handle is already gone, and closing a
			// number the module may have reused would hit a live session.
			s = pooledSession{}
		}
	}
	if s.h == 0 {
		h, err := p.open()
		if err != nil {
			p.slots <- pooledSession{}
			return pooledSession{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		s = pooledSession{h: h, gen: p.gen.Load()}
	}
	return s, nil
}

// put returns a healthy session.
func (p *sessionPool) put(s pooledSession) { p.slots <- s }

// discard frees the slot of a session that failed, for a new one. closeIt is
// false when the module already reported the handle invalid or closed.
func (p *sessionPool) discard(s pooledSession, closeIt bool) {
	if closeIt {
		p.close(s.h)
	}
	p.slots <- pooledSession{}
}

// drain closes every session. Only call it when no session is borrowed.
func (p *sessionPool) drain() {
	for range cap(p.slots) {
		s := <-p.slots
		if s.h != 0 {
			p.close(s.h)
		}
		p.slots <- pooledSession{}
	}
}

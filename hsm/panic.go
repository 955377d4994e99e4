package hsm

import "github.com/miekg/pkcs11"

// callOp runs op on the borrowed session s. If op panics (a bug in this
// package, or in a module binding), the session is discarded and closed
// before the panic goes on: its state is unknown (an operation may be
// half-initialised on it), and without giving the slot back the pool would
// shrink for good, and Close would wait forever in drain.
func (d *PKCS11) callOp(s pooledSession, op func(pkcs11.SessionHandle) error) error {
	done := false
	defer func() {
		if !done {
			d.pool.discard(s, true)
		}
	}()
	err := op(s.h)
	done = true
	return err
}

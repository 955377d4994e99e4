package hsm

import (
	"context"
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

// ErrAmbiguousKey is returned when several key objects carry one backing id.
// It wraps ErrKeyNotFound so the service answers KeyUnavailableException: no
// copy is ever picked, because which one encrypted a given ciphertext is
// unknown, and "the first" can change from one scan to the next.
var ErrAmbiguousKey = fmt.Errorf("%w: several key objects share one backing id", ErrKeyNotFound)

// runCreate is run for an operation that creates token objects with CKA_ID
// id. run retries an operation once after a session fault, and a fault can
// hit after the module made the object (the reply was lost): a blind retry
// would leave two objects with one id. So before the retry, whatever the
// first attempt left with that id is destroyed. That is safe because the id
// is fresh (the caller reserved it in the index and the service commits the
// version only after creation succeeds), so nothing can have used it. A nil
// id (a session-only object) needs no cleanup.
func (d *PKCS11) runCreate(ctx context.Context, id []byte, op func(s pkcs11.SessionHandle) error) error {
	if id == nil {
		return d.run(ctx, op)
	}
	attempt := 0
	return d.run(ctx, func(s pkcs11.SessionHandle) error {
		attempt++
		if attempt > 1 {
			if err := d.destroyLeftovers(ctx, s, id); err != nil {
				return err
			}
		}
		return op(s)
	})
}

// destroyLeftovers destroys every token object with CKA_ID id and drops the
// id from the index.
func (d *PKCS11) destroyLeftovers(ctx context.Context, s pkcs11.SessionHandle, id []byte) error {
	d.index.remove(id)
	handles, err := d.findObjects(ctx, s, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	})
	if err != nil {
		return err
	}
	for _, h := range handles {
		if err := d.mod.ctx.DestroyObject(s, h); err != nil && !isStaleHandle(err) {
			return callError("C_DestroyObject", err)
		}
	}
	if len(handles) > 0 {
		d.log.Warn("hsm: retrying a key creation; destroyed what the failed attempt left", "id", hexID(id), "objects", len(handles))
	}
	return nil
}

// isAmbiguous reports ErrAmbiguousKey.
func isAmbiguous(err error) bool { return errors.Is(err, ErrAmbiguousKey) }

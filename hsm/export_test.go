package hsm

import (
	"context"

	"github.com/miekg/pkcs11"
)

// Test-only access to the token behind a PKCS11 device.

// KeyAttributes reads attributes of the AES key object with the given id.
func KeyAttributes(ctx context.Context, d *PKCS11, id []byte, types ...uint) (map[uint][]byte, error) {
	values := map[uint][]byte{}
	err := d.withKey(ctx, id, func(s pkcs11.SessionHandle, key pkcs11.ObjectHandle) error {
		template := make([]*pkcs11.Attribute, len(types))
		for i, t := range types {
			template[i] = pkcs11.NewAttribute(t, nil)
		}
		attrs, err := d.mod.ctx.GetAttributeValue(s, key, template)
		if err != nil {
			return err
		}
		for _, a := range attrs {
			values[a.Type] = a.Value
		}
		return nil
	})
	return values, err
}

// CloseAllSessions calls C_CloseAllSessions on the device's slot, which also
// logs the token out and invalidates every key handle of the process.
func CloseAllSessions(d *PKCS11) error {
	return d.mod.ctx.CloseAllSessions(uint(d.slot.Load()))
}

// HoldSession borrows a pool session until release is called.
func HoldSession(ctx context.Context, d *PKCS11) (release func(), err error) {
	s, err := d.pool.get(ctx)
	if err != nil {
		return nil, err
	}
	return func() { d.pool.put(s) }, nil
}

// IndexedKeys is the number of ids in the handle index.
func IndexedKeys(d *PKCS11) int { return d.index.len() }

// Recoveries is the number of full recoveries (anchor and login restored).
func Recoveries(d *PKCS11) uint64 { return d.gen.Load() }

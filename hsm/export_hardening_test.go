package hsm

import (
	"context"
	"time"

	"github.com/miekg/pkcs11"
)

// Test-only hooks for the review-hardening tests.

// FreeSlots is the number of pool slots not lent out.
func FreeSlots(d *PKCS11) int { return len(d.pool.slots) }

// RunPanicking runs an operation that panics and returns what it panicked
// with.
func RunPanicking(ctx context.Context, d *PKCS11) (rec any) {
	defer func() { rec = recover() }()
	_ = d.run(ctx, func(s pkcs11.SessionHandle) error { panic("boom inside op") })
	return nil
}

// RawGenerate makes an AES key object with the given CKA_ID outside the
// index, as a first C_GenerateKey attempt whose reply was lost would.
func RawGenerate(ctx context.Context, d *PKCS11, id []byte) error {
	return d.run(ctx, func(s pkcs11.SessionHandle) error {
		_, err := d.mod.ctx.GenerateKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, aesKeyTemplate(id, "lost-reply"))
		return err
	})
}

// GeneralErrorIsAuth reports what the Open-time probe found.
func GeneralErrorIsAuth(d *PKCS11) bool { return d.generalErrorIsAuth.Load() }

// SetGeneralErrorIsAuth pretends the probe found otherwise (a conforming
// module).
func SetGeneralErrorIsAuth(d *PKCS11, v bool) { d.generalErrorIsAuth.Store(v) }

// DecryptRejected reports whether C_Decrypt failing with rv counts as a
// rejected ciphertext.
func DecryptRejected(d *PKCS11, rv uint) bool { return d.decryptRejected(pkcs11.Error(rv)) }

// CreateWithLostReply creates an AES key with CKA_ID id through runCreate,
// the way GenerateAESKey does, but the first attempt reports
// CKR_DEVICE_ERROR after the object was made (a reply lost to a session
// fault), so run retries.
func CreateWithLostReply(ctx context.Context, d *PKCS11, id []byte) error {
	attempt := 0
	return d.runCreate(ctx, id, func(s pkcs11.SessionHandle) error {
		attempt++
		if _, err := d.mod.ctx.GenerateKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, aesKeyTemplate(id, "lost-reply")); err != nil {
			return err
		}
		if attempt == 1 {
			return callError("C_GenerateKey", pkcs11.Error(pkcs11.CKR_DEVICE_ERROR))
		}
		return nil
	})
}

// CountObjects counts the token objects with CKA_ID id.
func CountObjects(ctx context.Context, d *PKCS11, id []byte) (int, error) {
	n := 0
	err := d.run(ctx, func(s pkcs11.SessionHandle) error {
		hs, err := d.findObjects(ctx, s, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_ID, id)})
		n = len(hs)
		return err
	})
	return n, err
}

// SetMissRecheckInterval changes how long lookup misses are remembered and
// returns a function that restores the previous value.
func SetMissRecheckInterval(d time.Duration) (restore func()) {
	old := missRecheck.Swap(int64(d))
	return func() { missRecheck.Store(old) }
}

// SessionObjects counts the session (not token) objects this process can
// see: the import length check's extractable copy and throwaway key must
// not outlive it.
func (d *PKCS11) SessionObjects(ctx context.Context) (int, error) {
	var n int
	err := d.run(ctx, func(s pkcs11.SessionHandle) error {
		hs, err := d.findObjects(ctx, s, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false)})
		n = len(hs)
		return err
	})
	return n, err
}

// LengthCheckSessions is the number of sessions the import length check
// has open: it must close every one.
func LengthCheckSessions() int64 { return lengthCheckSessions.Load() }

package hsm

import (
	"context"

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

package hsm

import (
	"context"
	"fmt"

	"github.com/miekg/pkcs11"
)

// gcmMechanism builds CKM_AES_GCM with the caller's IV and AAD and a 128-bit
// tag. The caller must Free the params after the operation.
func gcmMechanism(iv, aad []byte) ([]*pkcs11.Mechanism, *pkcs11.GCMParams) {
	params := pkcs11.NewGCMParams(iv, aad, TagSize*8)
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, params
}

// checkIV rejects every IV but a 12-byte one before PKCS#11 is called:
// SoftHSM accepts an empty IV and then encrypts deterministically (nonce
// reuse), and never generates an IV itself.
func checkIV(iv []byte) error {
	if len(iv) != IVSize {
		return fmt.Errorf("%w: got %d bytes, want %d", ErrInvalidIV, len(iv), IVSize)
	}
	return nil
}

// EncryptGCM implements Device.
func (d *PKCS11) EncryptGCM(ctx context.Context, id, iv, plaintext, aad []byte) ([]byte, error) {
	if err := checkIV(iv); err != nil {
		return nil, err
	}
	var out []byte
	err := d.withKey(ctx, id, func(s pkcs11.SessionHandle, key pkcs11.ObjectHandle) error {
		mech, params := gcmMechanism(iv, aad)
		defer params.Free()
		if err := d.mod.ctx.EncryptInit(s, mech, key); err != nil {
			return callError("C_EncryptInit", err)
		}
		var err error
		if out, err = d.mod.ctx.Encrypt(s, plaintext); err != nil {
			return callError("C_Encrypt", err)
		}
		return nil
	})
	return out, err
}

// DecryptGCM implements Device. Every authentication failure comes back as
// ErrAuthFailed; the PKCS#11 code stays in the chain for logs only.
func (d *PKCS11) DecryptGCM(ctx context.Context, id, iv, ciphertext, aad []byte) ([]byte, error) {
	if err := checkIV(iv); err != nil {
		return nil, err
	}
	if len(ciphertext) < TagSize {
		return nil, fmt.Errorf("%w: ciphertext shorter than the tag", ErrAuthFailed)
	}
	var out []byte
	err := d.withKey(ctx, id, func(s pkcs11.SessionHandle, key pkcs11.ObjectHandle) error {
		mech, params := gcmMechanism(iv, aad)
		defer params.Free()
		if err := d.mod.ctx.DecryptInit(s, mech, key); err != nil {
			return callError("C_DecryptInit", err)
		}
		var err error
		if out, err = d.mod.ctx.Decrypt(s, ciphertext); err != nil {
			if d.decryptRejected(err) {
				return fmt.Errorf("%w: %w", ErrAuthFailed, callError("C_Decrypt", err))
			}
			return callError("C_Decrypt", err)
		}
		return nil
	})
	return out, err
}

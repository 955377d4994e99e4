package hsm_test

import (
	"errors"
	"testing"

	"github.com/miekg/pkcs11"

	"hsmkms/hsm"
	"hsmkms/hsm/softhsmtest"
)

// CKR_GENERAL_ERROR from C_Decrypt means "tag mismatch" only on a module the
// Open-time probe caught reporting it so (SoftHSM2 2.6.1); elsewhere it is a
// device error, which the service answers with a 5xx that SDKs retry.
func TestDecryptGeneralErrorIsAuthFailureOnlyWhereProbed(t *testing.T) {
	d := openDevice(t, softhsmtest.NewToken(t))
	ctx := t.Context()
	if !hsm.GeneralErrorIsAuth(d) {
		t.Fatal("the probe did not detect SoftHSM2's CKR_GENERAL_ERROR on a GCM tag mismatch")
	}
	id := newKey(t, d)
	iv := randBytes(t, hsm.IVSize)
	ct, err := d.EncryptGCM(ctx, id, iv, []byte("data"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ct[len(ct)-1] ^= 1
	if _, err := d.DecryptGCM(ctx, id, iv, ct, nil); !errors.Is(err, hsm.ErrAuthFailed) {
		t.Fatalf("tampered ciphertext on SoftHSM: %v, want ErrAuthFailed", err)
	}

	// A conforming module: CKR_GENERAL_ERROR is a device fault.
	hsm.SetGeneralErrorIsAuth(d, false)
	_, err = d.DecryptGCM(ctx, id, iv, ct, nil)
	if err == nil || errors.Is(err, hsm.ErrAuthFailed) {
		t.Fatalf("CKR_GENERAL_ERROR on a conforming module: %v, want a device error", err)
	}
	for _, rv := range []uint{pkcs11.CKR_ENCRYPTED_DATA_INVALID, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE} {
		if !hsm.DecryptRejected(d, rv) {
			t.Errorf("CKR 0x%x is not an authentication failure", rv)
		}
	}
	if hsm.DecryptRejected(d, pkcs11.CKR_GENERAL_ERROR) || hsm.DecryptRejected(d, pkcs11.CKR_DEVICE_MEMORY) {
		t.Error("a device error counts as an authentication failure")
	}
	hsm.SetGeneralErrorIsAuth(d, true)
	if !hsm.DecryptRejected(d, pkcs11.CKR_GENERAL_ERROR) {
		t.Error("CKR_GENERAL_ERROR is not an authentication failure on the quirky module")
	}
}

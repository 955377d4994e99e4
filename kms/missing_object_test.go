package kms_test

import (
	"testing"

	"hsmkms/hsm"
	"hsmkms/hsm/softhsmtest"
	"hsmkms/kms"
)

// A key version whose token object is missing (reported by Reconcile, never
// served) answers KeyUnavailableException without a full-token
// C_FindObjects per request.
func TestMissingObjectIsNotSearchedPerRequest(t *testing.T) {
	device, err := hsm.Open(t.Context(), softhsmtest.NewToken(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { device.Close() })
	e := newEnv(t, func(testing.TB) hsm.Device { return device })
	md := e.createKey(t)
	vs, err := e.store.ListVersions(e.ctx, md.KeyId)
	if err != nil {
		t.Fatal(err)
	}
	if err := device.Destroy(e.ctx, vs[0].BackingID); err != nil { // the object vanished
		t.Fatal(err)
	}
	rep, err := e.svc.Reconcile(e.ctx)
	if err != nil || len(rep.MissingObjects) != 1 {
		t.Fatalf("Reconcile: %+v %v", rep, err)
	}
	before := device.FindObjectsCalls()
	for range 50 {
		_, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("x")})
		wantCode(t, err, kms.CodeKeyUnavailable)
	}
	if got := device.FindObjectsCalls() - before; got > 1 {
		t.Errorf("50 Encrypts on a key whose object is missing made %d C_FindObjects calls, want at most 1", got)
	}
}

package kms_test

import (
	"testing"

	"hsmkms/hsm"
	"hsmkms/hsm/softhsmtest"
	"hsmkms/kms"
)

// softHSMDevice opens a fresh SoftHSM2 token for one test.
func softHSMDevice(t testing.TB) hsm.Device {
	t.Helper()
	d, err := hsm.Open(t.Context(), softhsmtest.NewToken(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// TestServiceWithSoftHSM runs the whole operation suite on the real HSM path.
func TestServiceWithSoftHSM(t *testing.T) { runSuite(t, softHSMDevice) }

// TestRequestPathNeverSearchesTheToken proves that serving requests uses the
// handle index: C_FindObjects is not called per request.
func TestRequestPathNeverSearchesTheToken(t *testing.T) {
	device, err := hsm.Open(t.Context(), softhsmtest.NewToken(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { device.Close() })
	e := newEnv(t, func(testing.TB) hsm.Device { return device })
	md := e.createKey(t)
	before := device.FindObjectsCalls()
	for range 200 {
		enc, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Decrypt(e.ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.GenerateDataKey(e.ctx, &kms.GenerateDataKeyInput{KeyId: ptr(md.KeyId), KeySpec: ptr("AES_256")}); err != nil {
			t.Fatal(err)
		}
	}
	if n := device.FindObjectsCalls() - before; n != 0 {
		t.Fatalf("600 requests made %d C_FindObjects calls, want 0", n)
	}
}

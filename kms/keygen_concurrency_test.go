package kms_test

import (
	"testing"
	"time"

	"hsmkms/kms"
)

// TestSlowKeyGenerationBlocksNothing proves CreateKey holds no database
// lock or other global lock while the token generates an RSA-4096 key pair
// (seconds on SoftHSM): Encrypt on another key, and a symmetric CreateKey,
// complete while it runs.
func TestSlowKeyGenerationBlocksNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, softHSMDevice)
	sym := e.createKey(t)
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := e.svc.CreateKey(e.ctx, &kms.CreateKeyInput{KeySpec: ptr("RSA_4096"), KeyUsage: ptr("SIGN_VERIFY")})
		done <- err
	}()
	var encrypts, creates int
	var slowest time.Duration
	for {
		select {
		case err := <-done:
			elapsed := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("RSA_4096 CreateKey took %v; meanwhile %d Encrypts (slowest %v) and %d symmetric CreateKeys completed", elapsed, encrypts, slowest, creates)
			if encrypts < 20 || creates < 1 {
				t.Fatalf("only %d Encrypts and %d CreateKeys completed during %v of key generation", encrypts, creates, elapsed)
			}
			if slowest > elapsed/2 {
				t.Fatalf("an Encrypt took %v during a %v key generation: something waited for it", slowest, elapsed)
			}
			return
		default:
		}
		t0 := time.Now()
		if _, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(sym.KeyId), Plaintext: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		slowest = max(slowest, time.Since(t0))
		encrypts++
		if encrypts%50 == 0 {
			e.createKey(t)
			creates++
		}
	}
}

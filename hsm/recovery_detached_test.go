package hsm_test

import (
	"context"
	"testing"
	"time"

	"hsmkms/hsm"
	"hsmkms/hsm/softhsmtest"
)

// Recovery must not run under the caller's context: a short or cancelled
// one (readyz's timeout, a client that hangs up) used to abort the index
// rebuild after the re-login, leaving an empty index for good while Health
// said ready, so every key cost a C_FindObjects per request.
func TestRecoveryNotAbortedByCallerContext(t *testing.T) {
	d := openDevice(t, softhsmtest.NewToken(t))
	ctx := t.Context()
	const n = 40
	ids := make([][]byte, n)
	for i := range ids {
		ids[i] = newKey(t, d)
	}
	if err := hsm.CloseAllSessions(d); err != nil {
		t.Fatal(err)
	}
	// Callers whose contexts end while recovery is scanning.
	for timeout := 100 * time.Microsecond; timeout < time.Second; timeout *= 2 {
		c, cancel := context.WithTimeout(ctx, timeout)
		err := d.Health(c)
		cancel()
		if err != nil {
			t.Logf("Health(timeout %v) = %v", timeout, err)
		}
	}
	if err := d.Health(ctx); err != nil {
		t.Fatalf("Health: %v", err)
	}
	if got := hsm.IndexedKeys(d); got != n {
		t.Errorf("index holds %d keys after recovery, want %d", got, n)
	}
	before := d.FindObjectsCalls()
	for _, id := range ids {
		if _, err := d.EncryptGCM(ctx, id, randBytes(t, hsm.IVSize), []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := d.FindObjectsCalls() - before; got > 0 {
		t.Errorf("request path made %d C_FindObjects calls after recovery (index not rebuilt)", got)
	}

}

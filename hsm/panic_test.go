package hsm_test

import (
	"context"
	"testing"
	"time"

	"hsmkms/hsm"
	"hsmkms/hsm/softhsmtest"
)

// A panic inside an HSM operation must give its pool slot back (the session
// discarded, the panic passed on): otherwise PoolSize panics leave every
// request waiting PoolWait and failing, and Close hangs in drain.
func TestPanicInOperationFreesPoolSlot(t *testing.T) {
	cfg := softhsmtest.NewToken(t)
	cfg.PoolSize = 2
	cfg.PoolWait = 200 * time.Millisecond
	cfg.Logger = testLogger(t)
	d, err := hsm.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for range 3 {
		if r := hsm.RunPanicking(ctx, d); r != "boom inside op" {
			t.Fatalf("recovered %v, want the op's panic passed on", r)
		}
	}
	if got := hsm.FreeSlots(d); got != 2 {
		t.Errorf("free slots after panics = %d, want 2", got)
	}
	if _, err := d.GenerateRandom(ctx, 16); err != nil {
		t.Errorf("GenerateRandom after panics: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("Close blocked (pool drain waits for a leaked slot)")
	}
}

package kms_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"hsmkms/hsm"
	"hsmkms/kms"
)

// lostReplyDevice makes the key object, then reports the creation failed,
// as a module whose reply was lost to a session fault would.
type lostReplyDevice struct {
	hsm.Device
	fail bool
}

func (d *lostReplyDevice) GenerateAESKey(ctx context.Context, id []byte, label string) error {
	if err := d.Device.GenerateAESKey(ctx, id, label); err != nil {
		return err
	}
	if d.fail {
		return errors.New("hsm: C_GenerateKey: CKR_DEVICE_ERROR (reply lost)")
	}
	return nil
}

// A new version whose creation failed is destroyed in the token too, not
// only marked Destroyed: otherwise its object stays behind as an orphan.
func TestFailedRotationDestroysTokenObject(t *testing.T) {
	dev := &lostReplyDevice{Device: hsm.NewFake()}
	e := newEnv(t, func(testing.TB) hsm.Device { return dev })
	md := e.createKey(t)
	dev.fail = true
	if _, err := e.svc.RotateKeyOnDemand(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)}); err == nil {
		t.Fatal("rotation succeeded")
	}
	dev.fail = false
	vs, err := e.store.ListVersions(e.ctx, md.KeyId)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[1].State != kms.VersionDestroyed {
		t.Fatalf("versions after the failed rotation: %+v", vs)
	}
	ids, err := dev.ObjectIDs(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if bytes.Equal(id, vs[1].BackingID) {
			t.Fatalf("the failed version's token object is still there")
		}
	}
	if len(ids) != 1 {
		t.Errorf("token holds %d objects, want 1 (v1)", len(ids))
	}
	// The key still works, and can rotate again.
	if _, err := e.svc.RotateKeyOnDemand(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)}); err != nil {
		t.Fatal(err)
	}
}

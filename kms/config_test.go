package kms_test

import (
	"path/filepath"
	"testing"

	"hsmkms/hsm"
	"hsmkms/kms"
	"hsmkms/kms/sqlstore"
)

// TestInvocationBoundCannotBeRaised: the bound can be lowered (tests do),
// never raised past the 2^32 random-IV limit of AES-GCM.
func TestInvocationBoundCannotBeRaised(t *testing.T) {
	store, err := sqlstore.Open(t.Context(), filepath.Join(t.TempDir(), "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for bound, ok := range map[uint64]bool{0: true, 10: true, 1 << 32: true, 1<<32 + 1: false, 1 << 63: false} {
		_, err := kms.New(kms.Config{Device: hsm.NewFake(), Store: store, InvocationBound: bound})
		if (err == nil) != ok {
			t.Errorf("InvocationBound %d: err = %v", bound, err)
		}
	}
}

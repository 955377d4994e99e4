package sqlstore

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"hsmkms/kms"
)

func TestSetVersionStateIf(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	k := kms.KeyRecord{ID: "k1", AccountID: "111122223333", KeyUsage: "ENCRYPT_DECRYPT", KeySpec: "SYMMETRIC_DEFAULT",
		Origin: "AWS_KMS", KeyManager: "CUSTOMER", State: kms.StateCreating, CreatedAt: now}
	v := kms.KeyVersion{KeyID: "k1", Version: 1, BackingID: bytes.Repeat([]byte{7}, 16), State: kms.VersionCreating, CreatedAt: now}
	if err := s.CreateKey(ctx, k, v); err != nil {
		t.Fatal(err)
	}
	if err := s.SetVersionStateIf(ctx, "k1", 1, kms.VersionCreating, kms.VersionActive); err != nil {
		t.Fatal(err)
	}
	// A second transition from the old state loses, and changes nothing.
	err = s.SetVersionStateIf(ctx, "k1", 1, kms.VersionCreating, kms.VersionDestroyed)
	if !errors.Is(err, kms.ErrStoreConflict) {
		t.Fatalf("stale transition: %v, want ErrStoreConflict", err)
	}
	got, err := s.GetVersion(ctx, "k1", 1)
	if err != nil || got.State != kms.VersionActive {
		t.Fatalf("version after a lost transition: %+v %v", got, err)
	}
	if err := s.SetVersionStateIf(ctx, "k1", 9, kms.VersionActive, kms.VersionDestroyed); !errors.Is(err, kms.ErrStoreNotFound) {
		t.Fatalf("missing version: %v, want ErrStoreNotFound", err)
	}
}

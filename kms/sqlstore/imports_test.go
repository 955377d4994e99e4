package sqlstore

import (
	"bytes"
	"context"
	"testing"
	"time"

	"hsmkms/kms"
)

// Every import attempt is recorded with its own backing id and time, and
// is completed or settled only as that attempt.
func TestImportAttemptsHaveTheirOwnBackingID(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	k := externalKey(t, s)
	first := []byte("attempt-1-000000")
	v, err := s.BeginImport(ctx, k.ID, first, t0, "KEY_MATERIAL_DOES_NOT_EXPIRE", time.Time{})
	if err != nil || !bytes.Equal(v.BackingID, first) || !v.CreatedAt.Equal(ms(t0)) || v.State != kms.VersionCreating {
		t.Fatalf("first BeginImport: %+v %v", v, err)
	}
	_, err = s.BeginImport(ctx, k.ID, []byte("attempt-x-000000"), t0, "KEY_MATERIAL_DOES_NOT_EXPIRE", time.Time{})
	wantErr(t, "BeginImport during an import", err, kms.ErrStoreConflict)
	wantErr(t, "CompleteImport of another attempt", s.CompleteImport(ctx, k.ID, []byte("attempt-x-000000"), []byte("kcv")), kms.ErrStoreConflict)
	wantErr(t, "CompleteImport", s.CompleteImport(ctx, k.ID, first, []byte("kcv")), nil)
	wantErr(t, "CompleteImport again", s.CompleteImport(ctx, k.ID, first, []byte("kcv")), nil)
	if _, err := s.ReserveInvocations(ctx, k.ID, 1, 10, 100); err != nil {
		t.Fatal(err)
	}

	del, err := s.BeginDeleteMaterial(ctx, k.ID, time.Time{})
	if err != nil || del.State != kms.VersionDestroying {
		t.Fatalf("BeginDeleteMaterial: %+v %v", del, err)
	}
	_, err = s.BeginImport(ctx, k.ID, []byte("attempt-2-000000"), t0, "KEY_MATERIAL_DOES_NOT_EXPIRE", time.Time{})
	wantErr(t, "BeginImport while the old material is Destroying", err, kms.ErrStoreConflict)
	wantErr(t, "tombstone with another backing id",
		s.SetVersionStateIfID(ctx, k.ID, 1, []byte("attempt-2-000000"), kms.VersionDestroying, kms.VersionDestroyed), kms.ErrStoreConflict)
	wantErr(t, "tombstone", s.SetVersionStateIfID(ctx, k.ID, 1, first, kms.VersionDestroying, kms.VersionDestroyed), nil)

	second, later := []byte("attempt-2-000000"), t0.Add(time.Hour)
	v, err = s.BeginImport(ctx, k.ID, second, later, "KEY_MATERIAL_DOES_NOT_EXPIRE", time.Time{})
	if err != nil || !bytes.Equal(v.BackingID, second) || !v.CreatedAt.Equal(ms(later)) || v.Reserved != 10 {
		t.Fatalf("re-import BeginImport: %+v %v (want the new id and time, the counter kept)", v, err)
	}
	got, err := s.GetVersion(ctx, k.ID, 1)
	if err != nil || !bytes.Equal(got.BackingID, second) || !got.CreatedAt.Equal(ms(later)) {
		t.Fatalf("stored: %+v %v", got, err)
	}
	// A settler that saw the first attempt changes nothing now.
	wantErr(t, "stale transition", s.SetVersionStateIfID(ctx, k.ID, 1, first, kms.VersionCreating, kms.VersionDestroyed), kms.ErrStoreConflict)
	wantErr(t, "stale completion", s.CompleteImport(ctx, k.ID, first, []byte("kcv")), kms.ErrStoreConflict)
	wantErr(t, "other material", s.CompleteImport(ctx, k.ID, second, []byte("other")), kms.ErrStoreConflict)
	wantErr(t, "completion", s.CompleteImport(ctx, k.ID, second, []byte("kcv")), nil)
	wantErr(t, "missing version", s.SetVersionStateIfID(ctx, k.ID, 2, second, kms.VersionActive, kms.VersionDestroyed), kms.ErrStoreNotFound)
}

// TestBeginDeleteMaterialOnlyIfStillExpired: the expiry pass deletes
// material only if it is still expired when the deletion begins; a
// re-import or an extended ValidTo since the pass listed it wins.
func TestBeginDeleteMaterialOnlyIfStillExpired(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	k := externalKey(t, s)
	id := []byte("attempt-1-000000")
	if _, err := s.BeginImport(ctx, k.ID, id, t0, "KEY_MATERIAL_EXPIRES", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "CompleteImport", s.CompleteImport(ctx, k.ID, id, []byte("kcv")), nil)
	now := t0.Add(2 * time.Hour)
	if got, err := s.ImportsExpiring(ctx, now); err != nil || len(got) != 1 {
		t.Fatalf("ImportsExpiring: %+v %v", got, err)
	}
	// Extended after the listing (a re-import of the same material with a
	// later ValidTo, here or in another kmsd).
	wantErr(t, "SetImportExpiration of other material", s.SetImportExpiration(ctx, k.ID, []byte("attempt-0-000000"), "KEY_MATERIAL_EXPIRES", t0.Add(48*time.Hour)), kms.ErrStoreConflict)
	wantErr(t, "SetImportExpiration", s.SetImportExpiration(ctx, k.ID, id, "KEY_MATERIAL_EXPIRES", t0.Add(48*time.Hour)), nil)
	_, err := s.BeginDeleteMaterial(ctx, k.ID, now)
	wantErr(t, "BeginDeleteMaterial of extended material", err, kms.ErrStoreNotFound)
	if v, _ := s.GetVersion(ctx, k.ID, 1); v.State != kms.VersionActive {
		t.Fatalf("extended material is %s", v.State)
	}
	// Expired again by the time the deletion begins: deleted.
	if v, err := s.BeginDeleteMaterial(ctx, k.ID, t0.Add(49*time.Hour)); err != nil || v.State != kms.VersionDestroying {
		t.Fatalf("BeginDeleteMaterial of expired material: %+v %v", v, err)
	}
	// A re-import that compared this material before it was deleted
	// cannot extend it now.
	wantErr(t, "SetImportExpiration of deleted material", s.SetImportExpiration(ctx, k.ID, id, "KEY_MATERIAL_DOES_NOT_EXPIRE", time.Time{}), kms.ErrStoreConflict)
}

// externalKey stores an EXTERNAL key awaiting its material.
func externalKey(t *testing.T, s *Store) kms.KeyRecord {
	t.Helper()
	k := testKey(keyID(1), "111122223333", kms.StatePendingImport)
	k.Origin = "EXTERNAL"
	if err := s.CreateExternalKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return k
}

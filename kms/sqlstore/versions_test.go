package sqlstore

import (
	"context"
	"encoding/hex"
	"testing"

	"hsmkms/kms"
)

func TestAddGetListVersions(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	mustCreate(t, s, keyID(1), acct1, kms.StateEnabled)
	mustCreate(t, s, keyID(2), acct1, kms.StateEnabled)

	tests := []struct {
		name string
		v    kms.KeyVersion
		want error
	}{
		{"second version", testVersion(keyID(1), 2, "v2"), nil},
		{"third version", testVersion(keyID(1), 3, "v3"), nil},
		{"version number taken", testVersion(keyID(1), 2, "other"), kms.ErrStoreAlreadyExists},
		{"backing id taken by same key", testVersion(keyID(1), 4, "v2"), kms.ErrStoreAlreadyExists},
		{"backing id taken by other key", testVersion(keyID(2), 2, "v3"), kms.ErrStoreAlreadyExists},
		{"unknown key", testVersion(keyID(9), 1, "v9"), kms.ErrStoreNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, "AddVersion", s.AddVersion(ctx, tc.v), tc.want)
		})
	}

	vs, err := s.ListVersions(ctx, keyID(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 3 || vs[0].Version != 1 || vs[1].Version != 2 || vs[2].Version != 3 {
		t.Fatalf("ListVersions = %+v", vs)
	}
	if string(vs[2].BackingID) != "v3" {
		t.Fatalf("version 3 backing id %q", vs[2].BackingID)
	}
	_, err = s.ListVersions(ctx, keyID(9))
	wantErr(t, "ListVersions unknown key", err, kms.ErrStoreNotFound)

	_, err = s.GetVersion(ctx, keyID(1), 4)
	wantErr(t, "GetVersion absent", err, kms.ErrStoreNotFound)
	_, err = s.GetVersion(ctx, keyID(9), 1)
	wantErr(t, "GetVersion unknown key", err, kms.ErrStoreNotFound)
}

func TestSetVersionStateAndVersionsByState(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	mustCreate(t, s, keyID(2), acct1, kms.StateEnabled)
	mustCreate(t, s, keyID(1), acct1, kms.StateEnabled)
	if err := s.AddVersion(ctx, testVersion(keyID(1), 2, "k1v2")); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "SetVersionState", s.SetVersionState(ctx, keyID(1), 2, kms.VersionDestroying), nil)
	wantErr(t, "SetVersionState absent", s.SetVersionState(ctx, keyID(1), 3, kms.VersionActive), kms.ErrStoreNotFound)
	wantErr(t, "SetVersionState unknown key", s.SetVersionState(ctx, keyID(9), 1, kms.VersionActive), kms.ErrStoreNotFound)

	creating, err := s.VersionsByState(ctx, kms.VersionCreating)
	if err != nil {
		t.Fatal(err)
	}
	if len(creating) != 2 || creating[0].KeyID != keyID(1) || creating[1].KeyID != keyID(2) {
		t.Fatalf("VersionsByState(Creating) = %+v", creating)
	}
	destroying, err := s.VersionsByState(ctx, kms.VersionDestroying)
	if err != nil {
		t.Fatal(err)
	}
	if len(destroying) != 1 || destroying[0].KeyID != keyID(1) || destroying[0].Version != 2 {
		t.Fatalf("VersionsByState(Destroying) = %+v", destroying)
	}
}

func TestActivateVersion(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	mustCreate(t, s, keyID(1), acct1, kms.StateCreating)
	for v := 2; v <= 4; v++ {
		if err := s.AddVersion(ctx, testVersion(keyID(1), v, string(rune('a'+v)))); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, "SetVersionState", s.SetVersionState(ctx, keyID(1), 4, kms.VersionDestroyed), nil)
	// Version 5 was committed by someone else (a settler) without becoming
	// current: only an intent (Creating) may be made current.
	if err := s.AddVersion(ctx, testVersion(keyID(1), 5, "f")); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "SetVersionState", s.SetVersionState(ctx, keyID(1), 5, kms.VersionActive), nil)

	steps := []struct {
		name             string
		version, prev    int
		want             error
		wantCurrentAfter int
	}{
		{"first activation", 1, 0, nil, 1},
		{"stale prevCurrent", 2, 0, kms.ErrStoreConflict, 1},
		{"rotation", 2, 1, nil, 2},
		{"lost race", 3, 1, kms.ErrStoreConflict, 2},
		{"absent version", 9, 2, kms.ErrStoreNotFound, 2},
		{"destroyed version", 4, 2, kms.ErrStoreConflict, 2},
		{"version no longer an intent", 5, 2, kms.ErrStoreConflict, 2},
		{"rotation again", 3, 2, nil, 3},
	}
	for _, st := range steps {
		err := s.ActivateVersion(ctx, keyID(1), st.version, st.prev)
		wantErr(t, st.name, err, st.want)
		k, _ := s.GetKey(ctx, keyID(1))
		if k.CurrentVersion != st.wantCurrentAfter {
			t.Fatalf("%s: current version %d, want %d", st.name, k.CurrentVersion, st.wantCurrentAfter)
		}
		v, _ := s.GetVersion(ctx, keyID(1), st.version)
		if st.want == nil && v.State != kms.VersionActive {
			t.Fatalf("%s: version state %s", st.name, v.State)
		}
		if st.want != nil && st.version <= 4 && v.State == kms.VersionActive && st.version != 1 {
			t.Fatalf("%s: version became Active despite the error", st.name)
		}
	}
	wantErr(t, "ActivateVersion unknown key", s.ActivateVersion(ctx, keyID(9), 1, 0), kms.ErrStoreNotFound)

	// An abandoned creation's key, tombstoned while its first version is
	// still Creating: that version does not become current.
	mustCreate(t, s, keyID(2), acct1, kms.StateCreating)
	if _, err := s.UpdateKey(ctx, keyID(2), func(k *kms.KeyRecord) error { k.State = kms.StateDeleted; return nil }); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "ActivateVersion of a deleted key", s.ActivateVersion(ctx, keyID(2), 1, 0), kms.ErrStoreConflict)
	if k, _ := s.GetKey(ctx, keyID(2)); k.CurrentVersion != 0 {
		t.Fatalf("deleted key got current version %d", k.CurrentVersion)
	}
}

func TestAllBackingIDs(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	mustCreate(t, s, keyID(1), acct1, kms.StateEnabled)
	if err := s.AddVersion(ctx, testVersion(keyID(1), 2, "\x01\x02")); err != nil {
		t.Fatal(err)
	}
	if err := s.AddVersion(ctx, testVersion(keyID(1), 3, "gone")); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "SetVersionState", s.SetVersionState(ctx, keyID(1), 2, kms.VersionDestroying), nil)
	wantErr(t, "SetVersionState", s.SetVersionState(ctx, keyID(1), 3, kms.VersionDestroyed), nil)

	m, err := s.AllBackingIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 {
		t.Fatalf("AllBackingIDs = %v", m)
	}
	if v, ok := m["0102"]; !ok || v.Version != 2 || v.State != kms.VersionDestroying {
		t.Fatalf("0102 -> %+v, %v", v, ok)
	}
	if v, ok := m[hex.EncodeToString([]byte("b-"+keyID(1)))]; !ok || v.Version != 1 {
		t.Fatalf("version 1 missing: %v", m)
	}
	if _, ok := m[hex.EncodeToString([]byte("gone"))]; ok {
		t.Fatal("Destroyed version listed")
	}
}

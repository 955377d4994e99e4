package sqlstore

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"hsmkms/kms"
)

func TestCreateGetKeyRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	k := testKey(keyID(1), acct1, kms.StatePendingDeletion)
	k.DeletionDate = t0.Add(7 * 24 * time.Hour)
	k.PendingWindowInDays = 7
	k.CurrentVersion = 1
	if err := s.CreateKey(ctx, k, testVersion(k.ID, 1, "\x00\xffbacking")); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetKey(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := k
	want.CreatedAt, want.DeletionDate = ms(k.CreatedAt), ms(k.DeletionDate)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("GetKey:\n got %+v\nwant %+v", got, want)
	}
	if got.CreatedAt.Location() != time.UTC {
		t.Fatalf("CreatedAt location %v, want UTC", got.CreatedAt.Location())
	}
	v, err := s.GetVersion(ctx, k.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(v.BackingID) != "\x00\xffbacking" || v.State != kms.VersionCreating || !v.CreatedAt.Equal(ms(t0)) {
		t.Fatalf("GetVersion = %+v", v)
	}
}

func TestZeroTimesRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	k := testKey(keyID(1), acct1, kms.StateEnabled)
	k.CreatedAt = time.Time{}
	if err := s.CreateKey(ctx, k, kms.KeyVersion{Version: 1, BackingID: []byte{1}, State: kms.VersionActive}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetKey(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.IsZero() || !got.DeletionDate.IsZero() {
		t.Fatalf("zero times came back as %v / %v", got.CreatedAt, got.DeletionDate)
	}
}

func TestCreateKeyErrors(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	mustCreate(t, s, keyID(1), acct1, kms.StateEnabled) // backing id "b-"+keyID(1)

	tests := []struct {
		name string
		k    kms.KeyRecord
		v    kms.KeyVersion
		want error
	}{
		{"duplicate key id", testKey(keyID(1), acct1, kms.StateCreating), testVersion(keyID(1), 1, "fresh"), kms.ErrStoreAlreadyExists},
		{"duplicate key id other account", testKey(keyID(1), acct2, kms.StateCreating), testVersion(keyID(1), 1, "fresh2"), kms.ErrStoreAlreadyExists},
		{"duplicate backing id", testKey(keyID(2), acct1, kms.StateCreating), testVersion(keyID(2), 1, "b-"+keyID(1)), kms.ErrStoreAlreadyExists},
		{"version of another key", testKey(keyID(3), acct1, kms.StateCreating), testVersion(keyID(4), 1, "x"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.CreateKey(ctx, tc.k, tc.v)
			if tc.want != nil {
				wantErr(t, "CreateKey", err, tc.want)
			} else if err == nil {
				t.Fatal("CreateKey succeeded")
			}
			if tc.k.ID != keyID(1) {
				// Nothing of a failed CreateKey may remain.
				_, err := s.GetKey(ctx, tc.k.ID)
				wantErr(t, "GetKey after failed CreateKey", err, kms.ErrStoreNotFound)
			}
		})
	}
}

func TestGetKeyNotFoundAndTombstone(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	_, err := s.GetKey(ctx, keyID(9))
	wantErr(t, "GetKey absent", err, kms.ErrStoreNotFound)

	mustCreate(t, s, keyID(1), acct1, kms.StateDeleted)
	k, err := s.GetKey(ctx, keyID(1))
	if err != nil || k.State != kms.StateDeleted {
		t.Fatalf("GetKey tombstone = %+v, %v", k, err)
	}
}

func TestUpdateKey(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	orig := mustCreate(t, s, keyID(1), acct1, kms.StateCreating)
	del := t0.Add(30 * 24 * time.Hour)

	got, err := s.UpdateKey(ctx, keyID(1), func(k *kms.KeyRecord) error {
		k.State = kms.StatePendingDeletion
		k.DeletionDate = del
		k.PendingWindowInDays = 30
		k.Description = "changed"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := s.GetKey(ctx, keyID(1))
	if !reflect.DeepEqual(got, stored) {
		t.Fatalf("UpdateKey returned %+v, stored %+v", got, stored)
	}
	if stored.State != kms.StatePendingDeletion || !stored.DeletionDate.Equal(ms(del)) ||
		stored.PendingWindowInDays != 30 || stored.Description != "changed" || !stored.CreatedAt.Equal(ms(orig.CreatedAt)) {
		t.Fatalf("stored after UpdateKey: %+v", stored)
	}

	t.Run("fn error leaves row unchanged and is returned as is", func(t *testing.T) {
		boom := errors.New("boom")
		_, err := s.UpdateKey(ctx, keyID(1), func(k *kms.KeyRecord) error {
			k.Description = "must not be written"
			k.State = kms.StateEnabled
			return boom
		})
		if err != boom {
			t.Fatalf("UpdateKey err = %v, want boom itself", err)
		}
		after, _ := s.GetKey(ctx, keyID(1))
		if !reflect.DeepEqual(after, stored) {
			t.Fatalf("row changed after fn error: %+v", after)
		}
	})

	t.Run("identity cannot change", func(t *testing.T) {
		for _, mut := range []func(*kms.KeyRecord){
			func(k *kms.KeyRecord) { k.ID = keyID(2) },
			func(k *kms.KeyRecord) { k.AccountID = acct2 },
		} {
			_, err := s.UpdateKey(ctx, keyID(1), func(k *kms.KeyRecord) error {
				mut(k)
				k.Description = "must not be written"
				return nil
			})
			if err == nil {
				t.Fatal("UpdateKey accepted an identity change")
			}
			after, _ := s.GetKey(ctx, keyID(1))
			if !reflect.DeepEqual(after, stored) {
				t.Fatalf("row changed after refused update: %+v", after)
			}
		}
	})

	t.Run("not found", func(t *testing.T) {
		called := false
		_, err := s.UpdateKey(ctx, keyID(9), func(*kms.KeyRecord) error { called = true; return nil })
		wantErr(t, "UpdateKey absent", err, kms.ErrStoreNotFound)
		if called {
			t.Fatal("fn called for an absent key")
		}
	})
}

func TestListKeys(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	// 25 visible keys in acct1, created out of order, plus hidden and foreign ones.
	var want []string
	for i := 25; i >= 1; i-- {
		state := kms.StateEnabled
		if i%3 == 0 {
			state = kms.StateDisabled
		}
		if i%5 == 0 {
			state = kms.StatePendingDeletion
		}
		mustCreate(t, s, keyID(i*10), acct1, state)
	}
	for i := 1; i <= 25; i++ {
		want = append(want, keyID(i*10))
	}
	mustCreate(t, s, keyID(15), acct1, kms.StateCreating)
	mustCreate(t, s, keyID(25), acct1, kms.StateDeleted)
	mustCreate(t, s, keyID(35), acct2, kms.StateEnabled)

	var got []string
	after, pages := "", 0
	for {
		page, err := s.ListKeys(ctx, acct1, after, 10)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, k := range page {
			if k.AccountID != acct1 {
				t.Fatalf("key of account %s listed", k.AccountID)
			}
			got = append(got, k.ID)
		}
		if len(page) < 10 {
			break
		}
		after = page[len(page)-1].ID
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ListKeys pages:\n got %v\nwant %v", got, want)
	}
	if pages != 3 {
		t.Fatalf("%d pages, want 3 (10, 10, 5)", pages)
	}

	t.Run("after is exclusive and need not exist", func(t *testing.T) {
		page, err := s.ListKeys(ctx, acct1, keyID(15), 2) // keyID(15) is Creating
		if err != nil {
			t.Fatal(err)
		}
		if len(page) != 2 || page[0].ID != keyID(20) || page[1].ID != keyID(30) {
			t.Fatalf("page = %v", page)
		}
	})
	t.Run("no limit", func(t *testing.T) {
		all, err := s.ListKeys(ctx, acct1, "", 0)
		if err != nil || len(all) != 25 {
			t.Fatalf("ListKeys limit 0: %d keys, %v", len(all), err)
		}
	})
	t.Run("empty account", func(t *testing.T) {
		none, err := s.ListKeys(ctx, "999999999999", "", 10)
		if err != nil || len(none) != 0 {
			t.Fatalf("ListKeys other account: %v, %v", none, err)
		}
	})
}

func TestKeysByState(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	mustCreate(t, s, keyID(3), acct1, kms.StateCreating)
	mustCreate(t, s, keyID(1), acct2, kms.StateCreating)
	mustCreate(t, s, keyID(2), acct1, kms.StateEnabled)

	tests := []struct {
		state kms.KeyState
		want  []string
	}{
		{kms.StateCreating, []string{keyID(1), keyID(3)}},
		{kms.StateEnabled, []string{keyID(2)}},
		{kms.StateDeleted, nil},
	}
	for _, tc := range tests {
		ks, err := s.KeysByState(ctx, tc.state)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, k := range ks {
			got = append(got, k.ID)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("KeysByState(%s) = %v, want %v", tc.state, got, tc.want)
		}
	}
}

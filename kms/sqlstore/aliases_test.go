package sqlstore

import (
	"context"
	"reflect"
	"testing"
	"time"

	"hsmkms/kms"
)

func alias(account, name, key string) kms.AliasRecord {
	return kms.AliasRecord{AccountID: account, Name: name, KeyID: key, CreatedAt: t0, UpdatedAt: t0}
}

func TestAliasCRUD(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	mustCreate(t, s, keyID(1), acct1, kms.StateEnabled)
	mustCreate(t, s, keyID(2), acct1, kms.StateEnabled)
	mustCreate(t, s, keyID(3), acct2, kms.StateEnabled)

	creates := []struct {
		name string
		a    kms.AliasRecord
		want error
	}{
		{"new", alias(acct1, "alias/app", keyID(1)), nil},
		{"same name other account", alias(acct2, "alias/app", keyID(3)), nil},
		{"duplicate in account", alias(acct1, "alias/app", keyID(2)), kms.ErrStoreAlreadyExists},
		{"unknown key", alias(acct1, "alias/nokey", keyID(9)), kms.ErrStoreNotFound},
	}
	for _, tc := range creates {
		t.Run("create "+tc.name, func(t *testing.T) {
			wantErr(t, "CreateAlias", s.CreateAlias(ctx, tc.a), tc.want)
		})
	}

	got, err := s.GetAlias(ctx, acct1, "alias/app")
	if err != nil {
		t.Fatal(err)
	}
	want := alias(acct1, "alias/app", keyID(1))
	want.CreatedAt, want.UpdatedAt = ms(t0), ms(t0)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("GetAlias = %+v, want %+v", got, want)
	}
	_, err = s.GetAlias(ctx, acct1, "alias/nokey")
	wantErr(t, "GetAlias absent", err, kms.ErrStoreNotFound)
	_, err = s.GetAlias(ctx, "999999999999", "alias/app")
	wantErr(t, "GetAlias other account", err, kms.ErrStoreNotFound)

	later := t0.Add(time.Hour)
	wantErr(t, "UpdateAlias", s.UpdateAlias(ctx, acct1, "alias/app", keyID(2), later), nil)
	got, _ = s.GetAlias(ctx, acct1, "alias/app")
	if got.KeyID != keyID(2) || !got.UpdatedAt.Equal(ms(later)) || !got.CreatedAt.Equal(ms(t0)) {
		t.Fatalf("after UpdateAlias: %+v", got)
	}
	other, _ := s.GetAlias(ctx, acct2, "alias/app")
	if other.KeyID != keyID(3) {
		t.Fatalf("UpdateAlias touched the other account's alias: %+v", other)
	}
	wantErr(t, "UpdateAlias absent", s.UpdateAlias(ctx, acct1, "alias/none", keyID(2), later), kms.ErrStoreNotFound)
	wantErr(t, "UpdateAlias unknown key", s.UpdateAlias(ctx, acct1, "alias/app", keyID(9), later), kms.ErrStoreNotFound)

	wantErr(t, "DeleteAlias", s.DeleteAlias(ctx, acct1, "alias/app"), nil)
	wantErr(t, "DeleteAlias again", s.DeleteAlias(ctx, acct1, "alias/app"), kms.ErrStoreNotFound)
	if _, err := s.GetAlias(ctx, acct2, "alias/app"); err != nil {
		t.Fatalf("DeleteAlias removed the other account's alias: %v", err)
	}
}

func TestListCountDeleteAliases(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	mustCreate(t, s, keyID(1), acct1, kms.StateEnabled)
	mustCreate(t, s, keyID(2), acct1, kms.StateEnabled)
	// acct1: e, d, c, b, a alternate between keys 1 and 2; acct2 has one on key 1.
	names := []string{"alias/e", "alias/d", "alias/c", "alias/b", "alias/a"}
	for i, n := range names {
		k := keyID(1 + i%2)
		if err := s.CreateAlias(ctx, alias(acct1, n, k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateAlias(ctx, alias(acct2, "alias/x", keyID(1))); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name         string
		account, key string
		after        string
		limit        int
		want         []string
	}{
		{"all", acct1, "", "", 0, []string{"alias/a", "alias/b", "alias/c", "alias/d", "alias/e"}},
		{"first page", acct1, "", "", 2, []string{"alias/a", "alias/b"}},
		{"second page", acct1, "", "alias/b", 2, []string{"alias/c", "alias/d"}},
		{"last page", acct1, "", "alias/d", 2, []string{"alias/e"}},
		{"past the end", acct1, "", "alias/e", 2, nil},
		{"key filter", acct1, keyID(1), "", 0, []string{"alias/a", "alias/c", "alias/e"}},
		{"key filter paged", acct1, keyID(1), "alias/a", 1, []string{"alias/c"}},
		{"key filter other key", acct1, keyID(2), "", 10, []string{"alias/b", "alias/d"}},
		{"other account", acct2, "", "", 10, []string{"alias/x"}},
		{"key of other account's alias", acct2, keyID(2), "", 10, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			as, err := s.ListAliases(ctx, tc.account, tc.key, tc.after, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range as {
				if a.AccountID != tc.account {
					t.Fatalf("alias of account %s listed", a.AccountID)
				}
				got = append(got, a.Name)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}

	counts := map[string]int{keyID(1): 4, keyID(2): 2, keyID(9): 0}
	for k, want := range counts {
		n, err := s.CountAliases(ctx, k)
		if err != nil || n != want {
			t.Fatalf("CountAliases(%s) = %d, %v; want %d", k, n, err, want)
		}
	}

	wantErr(t, "DeleteAliasesForKey", s.DeleteAliasesForKey(ctx, keyID(1)), nil)
	wantErr(t, "DeleteAliasesForKey none", s.DeleteAliasesForKey(ctx, keyID(9)), nil)
	if n, _ := s.CountAliases(ctx, keyID(1)); n != 0 {
		t.Fatalf("%d aliases left on key 1", n)
	}
	if n, _ := s.CountAliases(ctx, keyID(2)); n != 2 {
		t.Fatalf("%d aliases on key 2, want 2", n)
	}
	if _, err := s.GetAlias(ctx, acct2, "alias/x"); err == nil {
		t.Fatal("alias of key 1 in the other account survived")
	}
}

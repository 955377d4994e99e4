package sqlstore

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"hsmkms/kms"
)

func TestKeyPolicies(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	id := keyID(1)
	mustCreate(t, s, id, acct1, kms.StateEnabled)
	_, err := s.GetKeyPolicy(ctx, id)
	wantErr(t, "policy before any put", err, kms.ErrStoreNotFound)
	wantErr(t, "put on unknown key", s.PutKeyPolicy(ctx, keyID(9), "{}", t0), kms.ErrStoreNotFound)
	for _, doc := range []string{`{"Version":"2012-10-17"}`, `{"Statement":[]}`} {
		wantErr(t, "put", s.PutKeyPolicy(ctx, id, doc, t0), nil)
		got, err := s.GetKeyPolicy(ctx, id)
		wantErr(t, "get", err, nil)
		if got != doc {
			t.Fatalf("policy = %q, want %q", got, doc)
		}
	}
}

func TestGrants(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	k1, k2 := keyID(1), keyID(2)
	mustCreate(t, s, k1, acct1, kms.StateEnabled)
	mustCreate(t, s, k2, acct1, kms.StateEnabled)
	grant := func(i int, key, retiring string) kms.GrantRecord {
		return kms.GrantRecord{
			GrantID: fmt.Sprintf("%064x", i), KeyID: key, IssuingAccount: acct1, Name: fmt.Sprintf("g%d", i),
			GranteePrincipal: "arn:aws:iam::" + acct2 + ":root", RetiringPrincipal: retiring,
			Operations:              []string{"Encrypt", "Decrypt"},
			EncryptionContextSubset: map[string]string{"tenant": "a"},
			CreatedAt:               ms(t0),
		}
	}
	for i := 1; i <= 3; i++ {
		wantErr(t, "create", s.CreateGrant(ctx, grant(i, k1, "arn:aws:iam::"+acct1+":user/r"), 3), nil)
	}
	wantErr(t, "create past the limit", s.CreateGrant(ctx, grant(4, k1, ""), 3), kms.ErrStoreExhausted)
	wantErr(t, "create on unknown key", s.CreateGrant(ctx, grant(5, keyID(9), ""), 3), kms.ErrStoreNotFound)
	wantErr(t, "create on other key", s.CreateGrant(ctx, grant(6, k2, ""), 3), nil)

	got, err := s.GetGrant(ctx, k1, fmt.Sprintf("%064x", 2))
	wantErr(t, "get", err, nil)
	if want := grant(2, k1, "arn:aws:iam::"+acct1+":user/r"); !reflect.DeepEqual(got, want) {
		t.Fatalf("grant = %+v\nwant %+v", got, want)
	}
	_, err = s.GetGrant(ctx, k2, fmt.Sprintf("%064x", 2))
	wantErr(t, "get through the wrong key", err, kms.ErrStoreNotFound)

	page, err := s.ListGrants(ctx, k1, "", 2)
	wantErr(t, "list", err, nil)
	if len(page) != 2 || page[0].GrantID >= page[1].GrantID {
		t.Fatalf("first page %+v", page)
	}
	rest, err := s.ListGrants(ctx, k1, page[1].GrantID, 0)
	wantErr(t, "list rest", err, nil)
	if len(rest) != 1 {
		t.Fatalf("rest %+v", rest)
	}
	retirable, err := s.ListRetirableGrants(ctx, []string{"arn:aws:iam::" + acct1 + ":user/r"}, "", 0)
	wantErr(t, "retirable", err, nil)
	if len(retirable) != 3 {
		t.Fatalf("retirable %d, want 3", len(retirable))
	}
	wantErr(t, "delete", s.DeleteGrant(ctx, k1, fmt.Sprintf("%064x", 1)), nil)
	wantErr(t, "delete again", s.DeleteGrant(ctx, k1, fmt.Sprintf("%064x", 1)), kms.ErrStoreNotFound)
	all, _ := s.ListGrants(ctx, k1, "", 0)
	if len(all) != 2 {
		t.Fatalf("%d grants after delete, want 2", len(all))
	}
}

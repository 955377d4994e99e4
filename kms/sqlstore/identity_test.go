package sqlstore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"hsmkms/kms"
)

func userARN(account, name string) string { return "arn:aws:iam::" + account + ":user/" + name }

func mustPrincipal(t *testing.T, s *Store, account, kind, name, uid string) kms.PrincipalRecord {
	t.Helper()
	p := kms.PrincipalRecord{
		ARN: "arn:aws:iam::" + account + ":" + kind + "/" + name, AccountID: account, Kind: kind,
		Name: name, UniqueID: uid, MaxSessionSeconds: 3600, CreatedAt: t0,
	}
	if err := s.CreatePrincipal(t.Context(), p); err != nil {
		t.Fatalf("CreatePrincipal(%s): %v", p.ARN, err)
	}
	return p
}

func TestAccountsAndPrincipals(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTemp(t)

	// A principal needs its account.
	err := s.CreatePrincipal(ctx, kms.PrincipalRecord{ARN: userARN(acct1, "a"), AccountID: acct1, Kind: kms.KindUser, Name: "a", UniqueID: "AIDA1"})
	if !errors.Is(err, kms.ErrStoreNotFound) {
		t.Fatalf("CreatePrincipal without account: %v, want ErrStoreNotFound", err)
	}
	for _, id := range []string{acct2, acct1} {
		if err := s.CreateAccount(ctx, kms.AccountRecord{ID: id, Name: "n" + id, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateAccount(ctx, kms.AccountRecord{ID: acct1}); !errors.Is(err, kms.ErrStoreAlreadyExists) {
		t.Fatalf("duplicate account: %v", err)
	}
	if err := s.CreateAccount(ctx, kms.AccountRecord{ID: "123"}); err == nil {
		t.Fatal("a 3-digit account id was accepted")
	}
	accts, err := s.ListAccounts(ctx, "", 0)
	if err != nil || len(accts) != 2 || accts[0].ID != acct1 || accts[1].Name != "n"+acct2 || !accts[0].CreatedAt.Equal(ms(t0)) {
		t.Fatalf("ListAccounts = %+v, %v", accts, err)
	}
	if a, err := s.GetAccount(ctx, acct2); err != nil || a.ID != acct2 {
		t.Fatalf("GetAccount = %+v, %v", a, err)
	}
	if _, err := s.GetAccount(ctx, "999999999999"); !errors.Is(err, kms.ErrStoreNotFound) {
		t.Fatalf("GetAccount(absent) = %v", err)
	}

	bob := mustPrincipal(t, s, acct1, kms.KindUser, "Bob", "AIDABOB")
	mustPrincipal(t, s, acct1, kms.KindUser, "alice", "AIDAALICE")
	mustPrincipal(t, s, acct1, kms.KindRole, "bob", "AROABOB")  // a role may share a user's name
	mustPrincipal(t, s, acct2, kms.KindUser, "bob", "AIDABOB2") // so may another account's user

	// IAM names are unique case-insensitively; unique ids are unique.
	dup := kms.PrincipalRecord{ARN: userARN(acct1, "BOB"), AccountID: acct1, Kind: kms.KindUser, Name: "BOB", UniqueID: "AIDAX"}
	if err := s.CreatePrincipal(ctx, dup); !errors.Is(err, kms.ErrStoreAlreadyExists) {
		t.Fatalf("case-insensitive duplicate: %v", err)
	}
	dup = kms.PrincipalRecord{ARN: userARN(acct1, "carol"), AccountID: acct1, Kind: kms.KindUser, Name: "carol", UniqueID: "AIDABOB"}
	if err := s.CreatePrincipal(ctx, dup); !errors.Is(err, kms.ErrStoreAlreadyExists) {
		t.Fatalf("duplicate unique id: %v", err)
	}

	got, err := s.GetPrincipal(ctx, bob.ARN)
	if err != nil || got != (kms.PrincipalRecord{ARN: bob.ARN, AccountID: acct1, Kind: kms.KindUser, Name: "Bob", UniqueID: "AIDABOB", MaxSessionSeconds: 3600, CreatedAt: ms(t0)}) {
		t.Fatalf("GetPrincipal = %+v, %v", got, err)
	}
	users, err := s.ListPrincipals(ctx, acct1, kms.KindUser, "", 0)
	if err != nil || len(users) != 2 || users[0].Name != "Bob" || users[1].Name != "alice" {
		t.Fatalf("ListPrincipals(users) = %+v, %v", users, err)
	}
	if page, _ := s.ListPrincipals(ctx, acct1, kms.KindUser, "Bob", 1); len(page) != 1 || page[0].Name != "alice" {
		t.Fatalf("ListPrincipals page 2 = %+v", page)
	}
	if roles, _ := s.ListPrincipals(ctx, acct1, kms.KindRole, "", 0); len(roles) != 1 || roles[0].UniqueID != "AROABOB" {
		t.Fatalf("ListPrincipals(roles) = %+v", roles)
	}
}

func TestIdentityPoliciesTagsAndDelete(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTemp(t)
	if err := s.CreateAccount(ctx, kms.AccountRecord{ID: acct1}); err != nil {
		t.Fatal(err)
	}
	u := mustPrincipal(t, s, acct1, kms.KindUser, "u", "AIDAU")

	// Unknown principals and principals without policies: empty, not nil.
	for _, arn := range []string{u.ARN, userARN(acct1, "nobody")} {
		ps, err := s.IdentityPolicies(ctx, arn)
		if err != nil || ps == nil || len(ps) != 0 {
			t.Fatalf("IdentityPolicies(%s) = %#v, %v; want empty slice", arn, ps, err)
		}
	}
	if err := s.PutIdentityPolicy(ctx, userARN(acct1, "nobody"), kms.NamedPolicy{Name: "p", Document: "{}"}, 10); !errors.Is(err, kms.ErrStoreNotFound) {
		t.Fatalf("PutIdentityPolicy(absent principal) = %v", err)
	}
	for _, p := range []kms.NamedPolicy{{Name: "b", Document: "doc-b"}, {Name: "a", Document: "doc-a"}, {Name: "b", Document: "doc-b2"}} {
		if err := s.PutIdentityPolicy(ctx, u.ARN, p, 2); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutIdentityPolicy(ctx, u.ARN, kms.NamedPolicy{Name: "c", Document: "x"}, 2); !errors.Is(err, kms.ErrStoreExhausted) {
		t.Fatalf("third policy with max 2: %v", err)
	}
	ps, err := s.IdentityPolicies(ctx, u.ARN)
	if err != nil || len(ps) != 2 || ps[0] != (kms.NamedPolicy{Name: "a", Document: "doc-a"}) || ps[1] != (kms.NamedPolicy{Name: "b", Document: "doc-b2"}) {
		t.Fatalf("IdentityPolicies = %+v, %v", ps, err)
	}
	if err := s.DeleteIdentityPolicy(ctx, u.ARN, "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteIdentityPolicy(ctx, u.ARN, "a"); !errors.Is(err, kms.ErrStoreNotFound) {
		t.Fatalf("second detach = %v", err)
	}

	if err := s.PutPrincipalTags(ctx, u.ARN, []kms.TagRecord{{Key: "team", Value: "x"}, {Key: "env", Value: "dev"}}, 2); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPrincipalTags(ctx, u.ARN, []kms.TagRecord{{Key: "more", Value: "1"}}, 2); !errors.Is(err, kms.ErrStoreExhausted) {
		t.Fatalf("tag over limit: %v", err)
	}
	if err := s.DeletePrincipalTags(ctx, u.ARN, []string{"env", "absent"}); err != nil {
		t.Fatal(err)
	}
	if tags, err := s.PrincipalTags(ctx, u.ARN); err != nil || len(tags) != 1 || tags[0] != (kms.TagRecord{Key: "team", Value: "x"}) {
		t.Fatalf("PrincipalTags = %+v, %v", tags, err)
	}

	// Access keys, one inactive.
	for i, id := range []string{"AKIAB", "AKIAA"} {
		if err := s.PutAccessKey(ctx, kms.AccessKey{ID: id, SealedSecret: []byte{1, 2, 3}, AccountID: acct1, PrincipalARN: u.ARN, Active: i == 0, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := s.ListAccessKeys(ctx, u.ARN)
	if err != nil || len(keys) != 2 || keys[0].ID != "AKIAA" || keys[0].Active || !keys[1].Active || keys[0].SealedSecret != nil || keys[0].Secret != "" {
		t.Fatalf("ListAccessKeys = %+v, %v", keys, err)
	}
	if err := s.SetAccessKeyActive(ctx, "AKIAA", true); err != nil {
		t.Fatal(err)
	}
	if k, err := s.GetAccessKey(ctx, "AKIAA"); err != nil || !k.Active || !bytes.Equal(k.SealedSecret, []byte{1, 2, 3}) {
		t.Fatalf("GetAccessKey = %+v, %v", k, err)
	}
	if err := s.SetAccessKeyActive(ctx, "AKIAZ", true); !errors.Is(err, kms.ErrStoreNotFound) {
		t.Fatalf("SetAccessKeyActive(absent) = %v", err)
	}
	if err := s.DeleteAccessKey(ctx, "AKIAB"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAccessKey(ctx, "AKIAB"); !errors.Is(err, kms.ErrStoreNotFound) {
		t.Fatalf("DeleteAccessKey twice = %v", err)
	}

	// Deleting the principal takes everything of it along.
	if err := s.DeletePrincipal(ctx, u.ARN); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePrincipal(ctx, u.ARN); !errors.Is(err, kms.ErrStoreNotFound) {
		t.Fatalf("DeletePrincipal twice = %v", err)
	}
	if _, err := s.GetAccessKey(ctx, "AKIAA"); !errors.Is(err, kms.ErrStoreNotFound) {
		t.Fatalf("access key survived its user: %v", err)
	}
	if ps, _ := s.IdentityPolicies(ctx, u.ARN); len(ps) != 0 {
		t.Fatalf("policies survived their user: %+v", ps)
	}
	if tags, _ := s.PrincipalTags(ctx, u.ARN); len(tags) != 0 {
		t.Fatalf("tags survived their user: %+v", tags)
	}
	// The name is free again.
	mustPrincipal(t, s, acct1, kms.KindUser, "u", "AIDAU2")
}

func TestSessions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTemp(t)
	if err := s.CreateAccount(ctx, kms.AccountRecord{ID: acct1}); err != nil {
		t.Fatal(err)
	}
	role := mustPrincipal(t, s, acct1, kms.KindRole, "r", "AROAR")
	hash := bytes.Repeat([]byte{7}, 32)
	exp := t0.Add(time.Hour)
	r := kms.SessionRecord{AccessKeyID: "ASIA1", SealedSecret: []byte("sealed"), TokenHash: hash, AccountID: acct1,
		RoleARN: role.ARN, SessionName: "s", SourceARN: userARN(acct1, "x"), Expiration: exp, CreatedAt: t0}
	if err := s.PutSession(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSession(ctx, r); !errors.Is(err, kms.ErrStoreAlreadyExists) {
		t.Fatalf("duplicate session: %v", err)
	}
	bad := r
	bad.AccessKeyID, bad.RoleARN = "ASIA2", "arn:aws:iam::"+acct1+":role/absent"
	if err := s.PutSession(ctx, bad); !errors.Is(err, kms.ErrStoreNotFound) {
		t.Fatalf("session of an absent role: %v", err)
	}
	got, err := s.GetSession(ctx, "ASIA1")
	if err != nil || got.RoleARN != role.ARN || !bytes.Equal(got.TokenHash, hash) || !got.Expiration.Equal(ms(exp)) || string(got.SealedSecret) != "sealed" || got.SessionName != "s" {
		t.Fatalf("GetSession = %+v, %v", got, err)
	}
	if n, err := s.DeleteSessionsExpiredBefore(ctx, exp); err != nil || n != 0 {
		t.Fatalf("DeleteSessionsExpiredBefore(exp) = %d, %v", n, err)
	}
	if n, err := s.DeleteSessionsExpiredBefore(ctx, exp.Add(time.Second)); err != nil || n != 1 {
		t.Fatalf("DeleteSessionsExpiredBefore(after) = %d, %v", n, err)
	}
	// Deleting the role ends its sessions.
	if err := s.PutSession(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePrincipal(ctx, role.ARN); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSession(ctx, "ASIA1"); !errors.Is(err, kms.ErrStoreNotFound) {
		t.Fatalf("session survived its role: %v", err)
	}
}

// TestSealAccessKeySecretLeavesNoPlaintext stores a plain secret the way
// migration 0001 did, seals it, scrubs, and scans every file of the database
// for the secret's bytes.
func TestSealAccessKeySecretLeavesNoPlaintext(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "kms.db")
	s := openAt(t, path)
	const secret = "PLAINTEXTSECRETplaintextsecret0123456789"
	if err := s.PutAccessKey(ctx, kms.AccessKey{ID: "AKIAOLD", Secret: secret, AccountID: acct1, PrincipalARN: userARN(acct1, "admin"), Active: true}); err != nil {
		t.Fatal(err)
	}
	ids, err := s.PlainAccessKeyIDs(ctx)
	if err != nil || len(ids) != 1 || ids[0] != "AKIAOLD" {
		t.Fatalf("PlainAccessKeyIDs = %v, %v", ids, err)
	}
	if err := s.SealAccessKeySecret(ctx, "AKIAOLD", nil); err == nil {
		t.Fatal("an empty sealed secret was accepted")
	}
	if err := s.SealAccessKeySecret(ctx, "AKIAOLD", []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	if err := s.ScrubFreePages(ctx); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.PlainAccessKeyIDs(ctx); len(ids) != 0 {
		t.Fatalf("still plain after sealing: %v", ids)
	}
	k, err := s.GetAccessKey(ctx, "AKIAOLD")
	if err != nil || k.Secret != "" || string(k.SealedSecret) != "sealed" {
		t.Fatalf("GetAccessKey = %+v, %v", k, err)
	}
	files, _ := filepath.Glob(path + "*")
	if len(files) == 0 {
		t.Fatal("no database files")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s still contains the plain-text secret", filepath.Base(f))
		}
	}
}

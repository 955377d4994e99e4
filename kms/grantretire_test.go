package kms_test

import (
	"context"
	"errors"
	"testing"

	"hsmkms/kms"
)

// retireFixture is a key of testAccount (default key policy) and a way to
// make grants on it and retire them as someone.
type retireFixture struct {
	e   *env
	md  *kms.KeyMetadata
	ops []string
}

func newRetireFixture(t *testing.T) *retireFixture {
	e := newEnv(t, fakeDevice)
	// The grantee of every grant: CreateGrant refuses principals that do
	// not exist.
	e.identity(t, testAccount, "worker")
	return &retireFixture{e: e, md: e.createKey(t), ops: []string{"Encrypt"}}
}

// grant creates a grant to testAccount's user "worker" with the given
// retiring principal and returns its id.
func (f *retireFixture) grant(t *testing.T, retiring string) string {
	t.Helper()
	in := &kms.CreateGrantInput{KeyId: ptr(f.md.KeyId), GranteePrincipal: ptr("arn:aws:iam::" + testAccount + ":user/worker"), Operations: f.ops}
	if retiring != "" {
		in.RetiringPrincipal = ptr(retiring)
	}
	out, err := f.e.svc.CreateGrant(f.e.ctx, in)
	if err != nil {
		t.Fatalf("CreateGrant (retiring %q): %v", retiring, err)
	}
	return out.GrantId
}

func (f *retireFixture) retire(as context.Context, grantID string) error {
	_, err := f.e.svc.RetireGrant(as, &kms.RetireGrantInput{KeyId: ptr(f.md.Arn), GrantId: ptr(grantID)})
	return err
}

// wantRetired fails unless the retire succeeded and the grant is gone;
// wantKept fails unless it was refused with reason and the grant is still there.
func (f *retireFixture) wantRetired(t *testing.T, err error, grantID, who string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s could not retire the grant: %v", who, err)
	}
	if f.hasGrant(t, grantID) {
		t.Fatalf("%s retired the grant but it is still listed", who)
	}
}

func (f *retireFixture) wantKept(t *testing.T, err error, grantID, who, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s retired the grant", who)
	}
	wantDenied(t, err, reason)
	if !f.hasGrant(t, grantID) {
		t.Fatalf("refused retire by %s deleted the grant", who)
	}
}

func (f *retireFixture) hasGrant(t *testing.T, grantID string) bool {
	t.Helper()
	// The store, not ListGrants: some tests change the key policy so that
	// the root may no longer list.
	_, err := f.e.store.GetGrant(t.Context(), f.md.KeyId, grantID)
	if errors.Is(err, kms.ErrStoreNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

const (
	noIAMAllowsRetire = "because no identity-based policy allows the kms:RetireGrant action"
	iamDeniesRetire   = "with an explicit deny in an identity-based policy"
	noGrantAllows     = "because no resource-based policy allows the kms:RetireGrant action"
)

// TestRetiringPrincipalAccountDelegates: a retiring principal that names
// another account lets that account's root retire, and its users only when
// their identity policies allow kms:RetireGrant ("If the retiring principal
// is a different AWS account, administrators in the other account can use
// kms:RetireGrant to delegate permission to retire the grant to an IAM
// principal in that account", AWS KMS developer guide, grant-delete). It
// does not let every principal of the account retire.
func TestRetiringPrincipalAccountDelegates(t *testing.T) {
	f := newRetireFixture(t)
	plain := f.e.identity(t, otherAccount, "plain")
	delegate := f.e.identity(t, otherAccount, "delegate", allowPolicy(`"kms:RetireGrant"`))
	for _, retiring := range []string{"arn:aws:iam::" + otherAccount + ":root", otherAccount} {
		id := f.grant(t, retiring)
		f.wantKept(t, f.retire(plain, id), id, "a user of the retiring account without kms:RetireGrant", noIAMAllowsRetire)
		f.wantRetired(t, f.retire(delegate, id), id, "a user of the retiring account allowed kms:RetireGrant")

		id = f.grant(t, retiring)
		f.wantRetired(t, f.retire(rootOf(t, otherAccount), id), id, "the root of the retiring account")
	}
	// A user of a third account allowed kms:RetireGrant is not delegated to.
	const third = "777788889999"
	outsider := f.e.identity(t, third, "outsider", allowPolicy(`"kms:RetireGrant"`))
	id := f.grant(t, "arn:aws:iam::"+otherAccount+":root")
	f.wantKept(t, f.retire(outsider, id), id, "a user of an unrelated account", noGrantAllows)
}

// TestRetiringPrincipalOwnAccountDelegates: the key's own account as the
// retiring principal, likewise, is its root and the users it delegates
// kms:RetireGrant to, not every principal of the account (which it was).
// The delegate would also be allowed as a user of the key's account; the
// refused plain user is what this test guards.
func TestRetiringPrincipalOwnAccountDelegates(t *testing.T) {
	f := newRetireFixture(t)
	plain := f.e.identity(t, testAccount, "plain")
	delegate := f.e.identity(t, testAccount, "delegate", allowPolicy(`"kms:RetireGrant"`))
	id := f.grant(t, "arn:aws:iam::"+testAccount+":root")
	f.wantKept(t, f.retire(plain, id), id, "a user of the key's account without kms:RetireGrant", noIAMAllowsRetire)
	f.wantRetired(t, f.retire(delegate, id), id, "a user of the key's account allowed kms:RetireGrant")
}

// TestRetireGrantIdentityDenyWins: "To deny permission to retire a grant,
// you can use a Deny action with the kms:RetireGrant permission in your IAM
// policies" — even for the retiring principal named in the grant.
func TestRetireGrantIdentityDenyWins(t *testing.T) {
	f := newRetireFixture(t)
	deny := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"kms:RetireGrant","Resource":"*"}]}`
	denied := f.e.identity(t, testAccount, "denied", deny)
	allowed := f.e.identity(t, testAccount, "allowed")
	id := f.grant(t, "arn:aws:iam::"+testAccount+":user/denied")
	f.wantKept(t, f.retire(denied, id), id, "the retiring principal denied kms:RetireGrant", iamDeniesRetire)
	id = f.grant(t, "arn:aws:iam::"+testAccount+":user/allowed")
	f.wantRetired(t, f.retire(allowed, id), id, "the retiring principal (no identity policy needed)")

	// The grantee of a grant that allows RetireGrant, likewise.
	f.ops = []string{"Encrypt", "RetireGrant"}
	workerARN := "arn:aws:iam::" + testAccount + ":user/worker"
	if err := f.e.store.PutIdentityPolicy(t.Context(), workerARN, kms.NamedPolicy{Name: "deny", Document: deny}, 10); err != nil {
		t.Fatal(err)
	}
	worker := kms.WithPrincipal(t.Context(), kms.Principal{AccountID: testAccount, ARN: workerARN, Type: kms.PrincipalUser, Username: "worker"})
	id = f.grant(t, "")
	f.wantKept(t, f.retire(worker, id), id, "the grantee denied kms:RetireGrant", iamDeniesRetire)
}

// TestRetireGrantKeyPolicyNotEffective: "The kms:RetireGrant permission is
// not effective in a key policy": a key policy allowing it lets nobody
// retire, and one that no longer names the account does not stop the
// account (its root, "as a backup") or the users it delegates to.
func TestRetireGrantKeyPolicyNotEffective(t *testing.T) {
	f := newRetireFixture(t)
	named := f.e.identity(t, testAccount, "named")
	delegate := f.e.identity(t, testAccount, "delegate", allowPolicy(`"kms:RetireGrant"`))
	partner := f.e.identity(t, otherAccount, "partner", allowPolicy(`"kms:RetireGrant"`))
	byRoot, byDelegate := f.grant(t, ""), f.grant(t, "")
	byNamed, byPartner := f.grant(t, ""), f.grant(t, "")
	// The key policy names a user and another account for kms:RetireGrant,
	// and no longer the key's own account.
	doc := `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + testAccount + `:user/named"},"Action":"kms:*","Resource":"*"},
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + otherAccount + `:root"},"Action":"kms:RetireGrant","Resource":"*"}]}`
	if _, err := f.e.svc.PutKeyPolicy(f.e.ctx, &kms.PutKeyPolicyInput{KeyId: ptr(f.md.KeyId), Policy: ptr(doc), BypassPolicyLockoutSafetyCheck: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	f.wantKept(t, f.retire(named, byNamed), byNamed, "a user the key policy allows kms:RetireGrant", noIAMAllowsRetire)
	f.wantKept(t, f.retire(partner, byPartner), byPartner, "another account's user the key policy and its identity policy allow", noGrantAllows)
	f.wantRetired(t, f.retire(f.e.ctx, byRoot), byRoot, "the root of the account the grant was created in")
	f.wantRetired(t, f.retire(delegate, byDelegate), byDelegate, "a user of the key's account allowed kms:RetireGrant")
}

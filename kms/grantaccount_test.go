package kms_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"hsmkms/kms"
)

// A grant whose grantee principal names an account, not a user or role,
// works like an account named in a key policy: the account's root may use
// it, and its users and roles only as far as their identity policies allow
// the operation ("The root principal ARN means that IAM in the account can
// delegate"; AWS documents an account as a valid grantee, "the grantee
// principal can represent multiple identities"). Before, it let every
// principal of the account use the key, whatever IAM in that account said.

const noIAMAllowsEncrypt = "because no identity-based policy allows the kms:Encrypt action"

func encryptAs(e *env, as context.Context, md *kms.KeyMetadata, grantTokens ...string) error {
	_, err := e.svc.Encrypt(as, &kms.EncryptInput{KeyId: ptr(md.Arn), Plaintext: []byte("x"), GrantTokens: grantTokens})
	return err
}

func TestAccountGranteeDelegatesCrossAccount(t *testing.T) {
	for _, grantee := range []string{"arn:aws:iam::" + otherAccount + ":root", otherAccount} {
		t.Run(grantee, func(t *testing.T) {
			e := newEnv(t, fakeDevice)
			md := e.createKey(t) // default key policy: only testAccount
			plain := e.identity(t, otherAccount, "plain")
			delegate := e.identity(t, otherAccount, "delegate", allowPolicy(`"kms:Encrypt"`))
			wantDenied(t, encryptAs(e, delegate, md), "because no resource-based policy allows the kms:Encrypt action")

			g, err := e.svc.CreateGrant(e.ctx, &kms.CreateGrantInput{KeyId: ptr(md.KeyId), GranteePrincipal: ptr(grantee), Operations: []string{"Encrypt"}})
			if err != nil {
				t.Fatal(err)
			}
			if err := encryptAs(e, rootOf(t, otherAccount), md); err != nil {
				t.Fatalf("the grantee account's root: %v", err)
			}
			if err := encryptAs(e, delegate, md); err != nil {
				t.Fatalf("a user of the grantee account allowed kms:Encrypt: %v", err)
			}
			wantDenied(t, encryptAs(e, plain, md), noIAMAllowsEncrypt)
			// Named by the grant token, likewise.
			wantDenied(t, encryptAs(e, plain, md, g.GrantToken), noIAMAllowsEncrypt)
			// An identity-policy Deny wins over the grant for the root's
			// users, as always.
			deny := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"},{"Effect":"Deny","Action":"kms:Encrypt","Resource":"*"}]}`
			wantDenied(t, encryptAs(e, e.identity(t, otherAccount, "denied", deny), md), "with an explicit deny in an identity-based policy")
			// A user of a third account is not the grantee at all.
			wantDenied(t, encryptAs(e, e.identity(t, "777788889999", "outsider", allowPolicy(`"kms:Encrypt"`)), md),
				"because no resource-based policy allows the kms:Encrypt action")
		})
	}
}

// TestAccountGranteeDelegatesSameAccount: the key's own account as grantee,
// on a key whose policy does not delegate to IAM (so only the grant can
// allow).
func TestAccountGranteeDelegatesSameAccount(t *testing.T) {
	e := newEnv(t, fakeDevice)
	md := e.createKey(t)
	adminARN := "arn:aws:iam::" + testAccount + ":user/admin"
	e.identity(t, testAccount, "admin")
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + adminARN + `"},"Action":"kms:*","Resource":"*"}]}`
	if _, err := e.svc.PutKeyPolicy(e.ctx, &kms.PutKeyPolicyInput{KeyId: ptr(md.KeyId), Policy: ptr(doc), BypassPolicyLockoutSafetyCheck: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	plain := e.identity(t, testAccount, "plain")
	delegate := e.identity(t, testAccount, "delegate", allowPolicy(`"kms:Encrypt"`))
	wantDenied(t, encryptAs(e, delegate, md), "because no resource-based policy allows the kms:Encrypt action")
	admin := kms.WithPrincipal(t.Context(), kms.Principal{AccountID: testAccount, ARN: adminARN, Type: kms.PrincipalUser, Username: "admin"})
	if _, err := e.svc.CreateGrant(admin, &kms.CreateGrantInput{KeyId: ptr(md.KeyId), GranteePrincipal: ptr("arn:aws:iam::" + testAccount + ":root"), Operations: []string{"Encrypt"}}); err != nil {
		t.Fatal(err)
	}
	if err := encryptAs(e, delegate, md); err != nil {
		t.Fatalf("a user of the key's account allowed kms:Encrypt, through the account grant: %v", err)
	}
	wantDenied(t, encryptAs(e, plain, md), noIAMAllowsEncrypt)

	// A grant that names the user itself needs no identity policy, also
	// beside an account grant.
	if _, err := e.svc.CreateGrant(admin, &kms.CreateGrantInput{KeyId: ptr(md.KeyId), GranteePrincipal: ptr("arn:aws:iam::" + testAccount + ":user/plain"), Operations: []string{"Encrypt"}}); err != nil {
		t.Fatal(err)
	}
	if err := encryptAs(e, plain, md); err != nil {
		t.Fatalf("the user a grant names: %v", err)
	}
}

// TestAccountGranteeRetire: a grant allowing RetireGrant to an account
// grantee lets that account's root retire it, and its users only with
// kms:RetireGrant in their identity policies.
func TestAccountGranteeRetire(t *testing.T) {
	f := newRetireFixture(t)
	f.ops = []string{"Encrypt", "RetireGrant"}
	plain := f.e.identity(t, otherAccount, "plain")
	delegate := f.e.identity(t, otherAccount, "delegate", allowPolicy(`"kms:RetireGrant"`))
	grant := func() string {
		t.Helper()
		out, err := f.e.svc.CreateGrant(f.e.ctx, &kms.CreateGrantInput{KeyId: ptr(f.md.KeyId),
			GranteePrincipal: ptr("arn:aws:iam::" + otherAccount + ":root"), Operations: f.ops})
		if err != nil {
			t.Fatal(err)
		}
		return out.GrantId
	}
	id := grant()
	f.wantKept(t, f.retire(plain, id), id, "a user of the grantee account without kms:RetireGrant", noIAMAllowsRetire)
	f.wantRetired(t, f.retire(delegate, id), id, "a user of the grantee account allowed kms:RetireGrant")
	id = grant()
	f.wantRetired(t, f.retire(rootOf(t, otherAccount), id), id, "the grantee account's root")
}

// TestAccountGranteeIdentityScope: the delegation is the identity policy's
// as written: an Allow for another key, or one whose condition the request
// does not meet, does not admit the user; an assumed-role session counts
// its role's policies; an identity Deny on kms:RetireGrant wins for an
// account grantee's retire too.
func TestAccountGranteeIdentityScope(t *testing.T) {
	e := newEnv(t, fakeDevice)
	md := e.createKey(t)
	otherKey := e.createKey(t)
	wrongKey := e.identity(t, otherAccount, "wrongkey",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"`+otherKey.Arn+`"}]}`)
	if _, err := e.svc.CreateGrant(e.ctx, &kms.CreateGrantInput{KeyId: ptr(md.KeyId), GranteePrincipal: ptr("arn:aws:iam::" + otherAccount + ":root"),
		Operations: []string{"Encrypt", "RetireGrant"}}); err != nil {
		t.Fatal(err)
	}
	wantDenied(t, encryptAs(e, wrongKey, md), noIAMAllowsEncrypt)
	conditioned := e.identity(t, otherAccount, "conditioned",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:job":"42"}}}]}`)
	wantDenied(t, encryptAs(e, conditioned, md), noIAMAllowsEncrypt)
	if _, err := e.svc.Encrypt(conditioned, &kms.EncryptInput{KeyId: ptr(md.Arn), Plaintext: []byte("x"), EncryptionContext: map[string]string{"job": "42"}}); err != nil {
		t.Fatalf("the condition met: %v", err)
	}

	// Sessions of a role of the grantee account: the role's policies.
	for name, policies := range map[string][]string{"allowed": {allowPolicy(`"kms:Encrypt"`)}, "bare": nil} {
		roleARN := "arn:aws:iam::" + otherAccount + ":role/" + name
		if err := e.store.CreatePrincipal(t.Context(), kms.PrincipalRecord{ARN: roleARN, AccountID: otherAccount, Kind: kms.KindRole, Name: name,
			UniqueID: "AROA" + strings.ToUpper(name) + "000000000000000"[:17-len(name)], CreatedAt: e.clock.Now()}); err != nil {
			t.Fatal(err)
		}
		for i, doc := range policies {
			if err := e.store.PutIdentityPolicy(t.Context(), roleARN, kms.NamedPolicy{Name: "p" + strconv.Itoa(i), Document: doc}, 10); err != nil {
				t.Fatal(err)
			}
		}
		session := kms.WithPrincipal(t.Context(), kms.Principal{AccountID: otherAccount, Type: kms.PrincipalAssumedRole,
			ARN: "arn:aws:sts::" + otherAccount + ":assumed-role/" + name + "/s1", RoleARN: roleARN})
		err := encryptAs(e, session, md)
		switch {
		case name == "allowed" && err != nil:
			t.Fatalf("a session of a role allowed kms:Encrypt: %v", err)
		case name == "bare":
			wantDenied(t, err, noIAMAllowsEncrypt)
		}
	}

	denyRetire := e.identity(t, otherAccount, "denyretire",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"},{"Effect":"Deny","Action":"kms:RetireGrant","Resource":"*"}]}`)
	list, err := e.svc.ListGrants(e.ctx, &kms.ListGrantsInput{KeyId: ptr(md.KeyId)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.RetireGrant(denyRetire, &kms.RetireGrantInput{KeyId: ptr(md.Arn), GrantId: ptr(list.Grants[0].GrantId)})
	wantDenied(t, err, "with an explicit deny in an identity-based policy")
}

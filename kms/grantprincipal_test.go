package kms_test

import (
	"testing"

	"hsmkms/kms"
)

// grantPrincipalFixture is a key of testAccount with a user, a role and a
// second account that exist, for CreateGrant's principal check.
type grantPrincipalFixture struct {
	e  *env
	md *kms.KeyMetadata
}

func newGrantPrincipalFixture(t *testing.T) *grantPrincipalFixture {
	e := newEnv(t, fakeDevice)
	md := e.createKey(t)
	e.identity(t, testAccount, "bob")
	e.identity(t, otherAccount, "partner") // creates otherAccount too
	if err := e.store.CreatePrincipal(t.Context(), kms.PrincipalRecord{
		ARN: "arn:aws:iam::" + testAccount + ":role/deployer", AccountID: testAccount, Kind: kms.KindRole, Name: "deployer",
		UniqueID: "AROADEPLOYER000000000", CreatedAt: e.clock.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	return &grantPrincipalFixture{e: e, md: md}
}

// input is a CreateGrant request naming p as the grantee, or as the
// retiring principal (the grantee then being a user that exists).
func (f *grantPrincipalFixture) input(p string, asRetiring bool) *kms.CreateGrantInput {
	in := &kms.CreateGrantInput{KeyId: ptr(f.md.KeyId), GranteePrincipal: ptr(p), Operations: []string{"Encrypt"}}
	if asRetiring {
		in.GranteePrincipal = ptr("arn:aws:iam::" + testAccount + ":user/bob")
		in.RetiringPrincipal = ptr(p)
	}
	return in
}

func (f *grantPrincipalFixture) grantCount(t *testing.T) int {
	t.Helper()
	out, err := f.e.svc.ListGrants(f.e.ctx, &kms.ListGrantsInput{KeyId: ptr(f.md.KeyId)})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Grants)
}

// Names that pass principalPattern (so they reach the existence check)
// but name no principal of this installation.
var unknownPrincipals = map[string]string{
	"unknown user":                     "arn:aws:iam::" + testAccount + ":user/bbo",
	"unknown role":                     "arn:aws:iam::" + testAccount + ":role/deployr",
	"user of an unknown account":       "arn:aws:iam::999999999999:user/bob",
	"unknown account root":             "arn:aws:iam::999999999999:root",
	"unknown bare account":             "999999999999",
	"session of an unknown account":    "arn:aws:sts::999999999999:assumed-role/deployer/s1",
	"session of an unknown role":       "arn:aws:sts::" + testAccount + ":assumed-role/deployr/s1",
	"not an IAM ARN":                   "arn:aws:s3:::bucket",
	"IAM ARN with a region":            "arn:aws:iam:us-east-1:" + testAccount + ":user/bob",
	"group":                            "arn:aws:iam::" + testAccount + ":group/admins",
	"assumed-role without session":     "arn:aws:sts::" + testAccount + ":assumed-role/deployer",
	"assumed-role under iam":           "arn:aws:iam::" + testAccount + ":assumed-role/deployer/s1",
	"other partition":                  "arn:aws-cn:iam::" + testAccount + ":root",
	"bare user name":                   "bob",
	"account ARN without resource":     "arn:aws:iam::" + testAccount + ":",
	"federated user (not in this KMS)": "arn:aws:sts::" + testAccount + ":federated-user/bob",
}

// TestCreateGrantRefusesUnknownPrincipals: a grantee or retiring principal
// that names nothing is InvalidArnException with AWS's message, also for a
// DryRun, and no grant is stored (before, any string matching the pattern
// was stored, so a typo gave a grant that allowed nobody, or a principal
// created later under that name).
func TestCreateGrantRefusesUnknownPrincipals(t *testing.T) {
	f := newGrantPrincipalFixture(t)
	for name, p := range unknownPrincipals {
		for _, asRetiring := range []bool{false, true} {
			for _, dryRun := range []bool{false, true} {
				in := f.input(p, asRetiring)
				if dryRun {
					in.DryRun = ptr(true)
				}
				_, err := f.e.svc.CreateGrant(f.e.ctx, in)
				var kerr *kms.Error
				if !errorsAs(err, &kerr) || kerr.Code != kms.CodeInvalidArn {
					t.Errorf("%s (retiring %v, dry run %v): %v, want InvalidArnException", name, asRetiring, dryRun, err)
					continue
				}
				if want := "ARN does not refer to a valid principal: " + p; kerr.Message != want {
					t.Errorf("%s: message %q, want %q", name, kerr.Message, want)
				}
			}
		}
	}
	if n := f.grantCount(t); n != 0 {
		t.Fatalf("%d grants stored for unknown principals", n)
	}
}

// TestCreateGrantAcceptsKnownPrincipals: users, roles, accounts (root ARN
// and bare id, the key's own and another) and assumed-role sessions of a
// role that exists are valid grantees and retiring principals.
func TestCreateGrantAcceptsKnownPrincipals(t *testing.T) {
	f := newGrantPrincipalFixture(t)
	known := []string{
		"arn:aws:iam::" + testAccount + ":user/bob",
		"arn:aws:iam::" + testAccount + ":role/deployer",
		"arn:aws:iam::" + testAccount + ":root",
		testAccount,
		"arn:aws:iam::" + otherAccount + ":root",
		otherAccount,
		"arn:aws:iam::" + otherAccount + ":user/partner",
		"arn:aws:sts::" + testAccount + ":assumed-role/deployer/s1",
	}
	for _, p := range known {
		for _, asRetiring := range []bool{false, true} {
			if _, err := f.e.svc.CreateGrant(f.e.ctx, f.input(p, asRetiring)); err != nil {
				t.Errorf("%s (retiring %v): %v", p, asRetiring, err)
			}
		}
	}
	if n, want := f.grantCount(t), 2*len(known); n != want {
		t.Fatalf("%d grants stored, want %d", n, want)
	}
	// A principal deleted since is unknown again.
	if err := f.e.store.DeletePrincipal(t.Context(), "arn:aws:iam::"+testAccount+":user/bob"); err != nil {
		t.Fatal(err)
	}
	_, err := f.e.svc.CreateGrant(f.e.ctx, f.input("arn:aws:iam::"+testAccount+":user/bob", false))
	wantCode(t, err, kms.CodeInvalidArn)
}

// TestCreateGrantPrincipalCheckAfterAuthorization: a caller not allowed
// kms:CreateGrant on the key learns nothing about which principals exist:
// it is denied whatever it names.
func TestCreateGrantPrincipalCheckAfterAuthorization(t *testing.T) {
	f := newGrantPrincipalFixture(t)
	nobody := f.e.identity(t, testAccount, "nobody") // no identity policy
	for _, p := range []string{"arn:aws:iam::" + testAccount + ":user/bbo", "arn:aws:iam::" + testAccount + ":user/bob"} {
		for _, asRetiring := range []bool{false, true} {
			_, err := f.e.svc.CreateGrant(nobody, f.input(p, asRetiring))
			wantDenied(t, err, "because no identity-based policy allows the kms:CreateGrant action")
		}
	}
}

// TestKeyPolicyAndGrantAgreeOnPrincipals: the key-policy check and
// CreateGrant use one existence check, so a name is refused by both or by
// neither.
func TestKeyPolicyAndGrantAgreeOnPrincipals(t *testing.T) {
	f := newGrantPrincipalFixture(t)
	names := map[string]bool{}
	for _, p := range unknownPrincipals {
		names[p] = false
	}
	for _, p := range []string{"arn:aws:iam::" + testAccount + ":user/bob", "arn:aws:iam::" + testAccount + ":role/deployer",
		otherAccount, "arn:aws:sts::" + testAccount + ":assumed-role/deployer/s1"} {
		names[p] = true
	}
	for p, exists := range names {
		doc := `{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + testAccount + `:root"},"Action":"kms:*","Resource":"*"},
			{"Effect":"Allow","Principal":{"AWS":"` + p + `"},"Action":"kms:Encrypt","Resource":"*"}]}`
		_, perr := f.e.svc.PutKeyPolicy(f.e.ctx, &kms.PutKeyPolicyInput{KeyId: ptr(f.md.KeyId), Policy: ptr(doc)})
		_, gerr := f.e.svc.CreateGrant(f.e.ctx, f.input(p, false))
		if (perr == nil) != exists || (gerr == nil) != exists {
			t.Errorf("%s: key policy error %v, grant error %v; want both to %s", p, perr, gerr, map[bool]string{true: "succeed", false: "fail"}[exists])
		}
		if !exists {
			wantCode(t, perr, kms.CodeMalformedPolicy)
			wantCode(t, gerr, kms.CodeInvalidArn)
		}
	}
}

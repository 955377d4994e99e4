package kms_test

import (
	"strconv"
	"testing"
	"time"

	"hsmkms/kms"
)

// TestRevokeOlderSessions: IAM's way to cut off leaked session credentials,
// a Deny on sessions whose aws:TokenIssueTime is before a moment, works:
// sessions issued before it are refused, later ones are not. Before,
// aws:TokenIssueTime was never set, so the Deny never matched.
func TestRevokeOlderSessions(t *testing.T) {
	e := newEnv(t, fakeDevice)
	boot, admin := bootstrapAdmin(t, e)
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + boot.AccountID + `:root"},"Action":"sts:AssumeRole"}]}`
	role, err := e.svc.AdminCreateRole(admin, &kms.CreateRoleInput{RoleName: ptr("ops"), AssumeRolePolicyDocument: ptr(trust)})
	if err != nil {
		t.Fatal(err)
	}
	roleARN := role.Role.Arn
	if _, err := e.svc.AdminAttachIdentityPolicy(admin, &kms.AttachIdentityPolicyInput{PrincipalArn: ptr(roleARN), PolicyName: ptr("use"),
		PolicyDocument: ptr(allowPolicy(`"kms:*"`))}); err != nil {
		t.Fatal(err)
	}
	session := func(name string) *kms.Principal {
		t.Helper()
		out, err := e.svc.AssumeRole(admin, &kms.AssumeRoleInput{RoleArn: roleARN, RoleSessionName: name})
		if err != nil {
			t.Fatal(err)
		}
		k, err := e.svc.LookupAccessKey(e.ctx, out.AccessKeyId)
		if err != nil {
			t.Fatal(err)
		}
		return &k.Principal
	}
	listKeys := func(p *kms.Principal) error {
		_, err := e.svc.ListKeys(kms.WithPrincipal(t.Context(), *p), &kms.ListKeysInput{})
		return err
	}
	old := session("old")
	if err := listKeys(old); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	cutoff := e.clock.Now().UTC().Format(time.RFC3339)
	e.clock.Advance(time.Minute)
	fresh := session("fresh")
	revoke := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"` + cutoff + `"}}}]}`
	if _, err := e.svc.AdminAttachIdentityPolicy(admin, &kms.AttachIdentityPolicyInput{PrincipalArn: ptr(roleARN), PolicyName: ptr("revoke-older-sessions"),
		PolicyDocument: ptr(revoke)}); err != nil {
		t.Fatal(err)
	}
	wantDenied(t, listKeys(old), "with an explicit deny in an identity-based policy")
	if err := listKeys(fresh); err != nil {
		t.Fatalf("a session issued after the cut-off: %v", err)
	}
}

// TestTrustPolicyPrincipalsMustExist: like key policies and grants (and
// IAM's "Invalid principal in policy"), a trust policy naming an account,
// user or role that does not exist is refused: the role would otherwise be
// assumable by whoever is created later under that name.
func TestTrustPolicyPrincipalsMustExist(t *testing.T) {
	e := newEnv(t, fakeDevice)
	boot, admin := bootstrapAdmin(t, e)
	trust := func(principal string) *string {
		return ptr(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + principal + `"},"Action":"sts:AssumeRole"}]}`)
	}
	for _, ghost := range []string{"arn:aws:iam::999988887777:user/ghost", "999988887777", "arn:aws:iam::" + boot.AccountID + ":user/ghost",
		"arn:aws:iam::" + boot.AccountID + ":role/ghost"} {
		_, err := e.svc.AdminCreateRole(admin, &kms.CreateRoleInput{RoleName: ptr("r"), AssumeRolePolicyDocument: trust(ghost)})
		kerr := wantCode(t, err, kms.CodeMalformedPolicy)
		if want := `Invalid principal in policy: "AWS":"` + ghost + `"`; kerr.Message != want {
			t.Errorf("message %q, want %q", kerr.Message, want)
		}
	}
	for _, real := range []string{"arn:aws:iam::" + boot.AccountID + ":root", boot.AccountID, "arn:aws:iam::" + boot.AccountID + ":user/admin", "*"} {
		if _, err := e.svc.AdminCreateRole(admin, &kms.CreateRoleInput{RoleName: ptr("r" + strconv.Itoa(len(real))), AssumeRolePolicyDocument: trust(real)}); err != nil {
			t.Errorf("trust in %s: %v", real, err)
		}
	}
}

package kms_test

import (
	"fmt"
	"slices"
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

// TestPrincipalTagKeysIgnoreCase: IAM compares tag keys of users and roles
// without regard to case. Two keys that differ only in case are refused in
// one request, and a new spelling of a key replaces the old one, so that
// aws:PrincipalTag/KEY has one value. Before, both were kept and which one
// a condition saw depended on map order: the same request was allowed or
// denied at random.
func TestPrincipalTagKeysIgnoreCase(t *testing.T) {
	e := newEnv(t, fakeDevice)
	boot, admin := bootstrapAdmin(t, e)
	tag := func(k, v string) kms.Tag { return kms.Tag{TagKey: ptr(k), TagValue: ptr(v)} }
	_, err := e.svc.AdminCreateUser(admin, &kms.CreateUserInput{UserName: ptr("x"), Tags: []kms.Tag{tag("Status", "a"), tag("status", "b")}})
	wantCode(t, err, kms.CodeValidation)
	if _, err := e.svc.AdminCreateUser(admin, &kms.CreateUserInput{UserName: ptr("bob"), Tags: []kms.Tag{tag("Status", "suspended")}}); err != nil {
		t.Fatal(err)
	}
	bobARN := "arn:aws:iam::" + boot.AccountID + ":user/bob"
	_, err = e.svc.AdminTagPrincipal(admin, &kms.TagPrincipalInput{PrincipalArn: ptr(bobARN), Tags: []kms.Tag{tag("Team", "a"), tag("TEAM", "b")}})
	wantCode(t, err, kms.CodeValidation)
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:ListKeys","Resource":"*"},
		{"Effect":"Deny","Action":"kms:ListKeys","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/Status":"suspended"}}}]}`
	if _, err := e.svc.AdminAttachIdentityPolicy(admin, &kms.AttachIdentityPolicyInput{PrincipalArn: ptr(bobARN), PolicyName: ptr("p"), PolicyDocument: ptr(doc)}); err != nil {
		t.Fatal(err)
	}
	bob := kms.WithPrincipal(t.Context(), kms.Principal{AccountID: boot.AccountID, ARN: bobARN, Type: kms.PrincipalUser, Username: "bob", Tags: map[string]string{"Status": "suspended"}})
	_, err = e.svc.ListKeys(bob, &kms.ListKeysInput{})
	wantDenied(t, err, "with an explicit deny in an identity-based policy")

	// Re-spelled: the new key replaces the old one.
	if _, err := e.svc.AdminTagPrincipal(admin, &kms.TagPrincipalInput{PrincipalArn: ptr(bobARN), Tags: []kms.Tag{tag("status", "active")}}); err != nil {
		t.Fatal(err)
	}
	tags, err := e.store.PrincipalTags(t.Context(), bobARN)
	if err != nil || len(tags) != 1 || tags[0].Key != "status" || tags[0].Value != "active" {
		t.Fatalf("bob's tags after re-spelling a key: %+v, %v", tags, err)
	}
	// A re-spelling refused for too many tags keeps the old spelling (the
	// replacement and the put are one transaction; before, the old key was
	// deleted first and lost).
	var fill []kms.Tag
	for i := range 49 {
		fill = append(fill, tag(fmt.Sprintf("k%02d", i), "v"))
	}
	if _, err := e.svc.AdminTagPrincipal(admin, &kms.TagPrincipalInput{PrincipalArn: ptr(bobARN), Tags: fill}); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.AdminTagPrincipal(admin, &kms.TagPrincipalInput{PrincipalArn: ptr(bobARN), Tags: []kms.Tag{tag("STATUS", "x"), tag("one-too-many", "v")}})
	wantCode(t, err, kms.CodeTag)
	tags, err = e.store.PrincipalTags(t.Context(), bobARN)
	if err != nil || len(tags) != 50 || !slices.ContainsFunc(tags, func(r kms.TagRecord) bool { return r.Key == "status" && r.Value == "active" }) {
		t.Fatalf("bob's tags after a refused re-spelling: %d tags, %v", len(tags), err)
	}
	// And a principal still carrying both (stored before) is decided the
	// same way every time.
	both := kms.WithPrincipal(t.Context(), kms.Principal{AccountID: boot.AccountID, ARN: bobARN, Type: kms.PrincipalUser, Username: "bob",
		Tags: map[string]string{"Status": "suspended", "status": "active"}})
	_, first := e.svc.ListKeys(both, &kms.ListKeysInput{})
	for range 50 {
		if _, err := e.svc.ListKeys(both, &kms.ListKeysInput{}); (err == nil) != (first == nil) {
			t.Fatalf("the same request decided differently: %v, then %v", first, err)
		}
	}
}

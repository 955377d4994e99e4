package kms_test

import (
	"testing"

	"hsmkms/kms"
)

// TestAdminTagConditions: admin policies see the request's tags
// (aws:RequestTag/K, aws:TagKeys) and the target principal's tags
// (aws:ResourceTag/K), so IAM's "tag only with these keys" and "not on
// protected users" policies hold; and a creation with tags needs
// kmsadmin:TagPrincipal as well. Before, none of these keys was set: a user
// could tag itself with any key (to meet another key policy's
// aws:PrincipalTag condition), act on protected users, and create users
// carrying any tag with CreateUser alone.
func TestAdminTagConditions(t *testing.T) {
	e := newEnv(t, fakeDevice)
	boot, admin := bootstrapAdmin(t, e)
	acct := boot.AccountID
	tag := func(k, v string) kms.Tag { return kms.Tag{TagKey: ptr(k), TagValue: ptr(v)} }
	userARN := func(name string) string { return "arn:aws:iam::" + acct + ":user/" + name }
	noAllow := func(op string) string {
		return "because no identity-based policy allows the kmsadmin:" + op + " action"
	}
	const explicitDeny = "with an explicit deny in an identity-based policy"
	if _, err := e.svc.AdminCreateUser(admin, &kms.CreateUserInput{UserName: ptr("breakglass"), Tags: []kms.Tag{tag("protected", "true")}}); err != nil {
		t.Fatal(err)
	}
	mallory := e.identity(t, acct, "mallory", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["kmsadmin:TagPrincipal","kmsadmin:UntagPrincipal","kmsadmin:CreateUser","kmsadmin:CreateAccessKey"],"Resource":"*",
		 "Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["project"]}}},
		{"Effect":"Deny","Action":"kmsadmin:*","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/protected":"true"}}}]}`)

	if _, err := e.svc.AdminTagPrincipal(mallory, &kms.TagPrincipalInput{PrincipalArn: ptr(userARN("mallory")), Tags: []kms.Tag{tag("project", "x")}}); err != nil {
		t.Fatalf("tagging with an allowed key: %v", err)
	}
	wantDenied(t, errOf(e.svc.AdminTagPrincipal(mallory, &kms.TagPrincipalInput{PrincipalArn: ptr(userARN("mallory")), Tags: []kms.Tag{tag("clearance", "finance")}})), noAllow("TagPrincipal"))
	wantDenied(t, errOf(e.svc.AdminUntagPrincipal(mallory, &kms.UntagPrincipalInput{PrincipalArn: ptr(userARN("mallory")), TagKeys: []string{"clearance"}})), noAllow("UntagPrincipal"))
	wantDenied(t, errOf(e.svc.AdminCreateUser(mallory, &kms.CreateUserInput{UserName: ptr("sock"), Tags: []kms.Tag{tag("clearance", "finance")}})), noAllow("CreateUser"))
	if _, err := e.svc.AdminCreateUser(mallory, &kms.CreateUserInput{UserName: ptr("sock"), Tags: []kms.Tag{tag("project", "y")}}); err != nil {
		t.Fatalf("creating a user with an allowed tag: %v", err)
	}
	if _, err := e.svc.AdminCreateAccessKey(mallory, &kms.CreateAccessKeyInput{UserName: ptr("sock")}); err != nil {
		t.Fatalf("an access key for an unprotected user: %v", err)
	}
	wantDenied(t, errOf(e.svc.AdminCreateAccessKey(mallory, &kms.CreateAccessKeyInput{UserName: ptr("breakglass")})), explicitDeny)

	// CreateUser alone does not let tags in.
	hr := e.identity(t, acct, "hr", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kmsadmin:CreateUser","Resource":"*"}]}`)
	wantDenied(t, errOf(e.svc.AdminCreateUser(hr, &kms.CreateUserInput{UserName: ptr("tagged"), Tags: []kms.Tag{tag("clearance", "finance")}})), noAllow("TagPrincipal"))
	if _, err := e.svc.AdminCreateUser(hr, &kms.CreateUserInput{UserName: ptr("plain")}); err != nil {
		t.Fatalf("CreateUser without tags: %v", err)
	}
	if _, err := e.store.GetPrincipal(t.Context(), userARN("tagged")); err == nil {
		t.Fatal("a refused creation left the user")
	}
}

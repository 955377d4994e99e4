package kms_test

import (
	"context"
	"strings"
	"testing"

	"hsmkms/kms"
)

// TestListRetirableGrantsAuthorization: "You must specify a principal in
// your AWS account" and "The authorized resource in ListRetirableGrants
// calls is the retiring principal specified in the request" (AWS KMS API
// reference). The grants listed may be on another account's keys; who may
// list them is decided by the caller's account alone.
func TestListRetirableGrantsAuthorization(t *testing.T) {
	e := newEnv(t, fakeDevice)
	md := e.createKey(t) // a key of testAccount
	retirerARN := "arn:aws:iam::" + otherAccount + ":user/retirer"
	e.identity(t, otherAccount, "retirer")
	e.identity(t, testAccount, "worker")
	if _, err := e.svc.CreateGrant(e.ctx, &kms.CreateGrantInput{KeyId: ptr(md.KeyId),
		GranteePrincipal: ptr("arn:aws:iam::" + testAccount + ":user/worker"), RetiringPrincipal: ptr(retirerARN),
		Operations: []string{"Encrypt"}}); err != nil {
		t.Fatal(err)
	}
	list := func(as context.Context, retiring string) (*kms.ListGrantsOutput, error) {
		return e.svc.ListRetirableGrants(as, &kms.ListRetirableGrantsInput{RetiringPrincipal: ptr(retiring)})
	}
	resourceIs := func(t *testing.T, err error, resource string) {
		t.Helper()
		wantDenied(t, err, "because no identity-based policy allows the kms:ListRetirableGrants action")
		if !strings.Contains(err.Error(), " on resource: "+resource+" because") {
			t.Fatalf("AccessDenied %q does not name the resource %s", err, resource)
		}
	}

	// The retiring principal's own account lists the grant on testAccount's key.
	out, err := list(rootOf(t, otherAccount), retirerARN)
	if err != nil || len(out.Grants) != 1 || out.Grants[0].KeyId != md.Arn {
		t.Fatalf("root of the retiring principal's account: %v %+v", err, out)
	}
	// The key owner's account may not list another account's principal
	// (before: anyone allowed kms:ListRetirableGrants saw it).
	_, err = list(e.ctx, retirerARN)
	resourceIs(t, err, retirerARN)
	_, err = list(e.identity(t, testAccount, "lister", allowPolicy(`"kms:ListRetirableGrants"`)), retirerARN)
	resourceIs(t, err, retirerARN)
	// A name that is no principal of any account is not in the caller's account.
	_, err = list(rootOf(t, otherAccount), "retirer")
	resourceIs(t, err, "retirer")

	// Users of the account need the permission on that principal.
	_, err = list(e.identity(t, otherAccount, "plain"), retirerARN)
	resourceIs(t, err, retirerARN)
	scoped := e.identity(t, otherAccount, "scoped", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
		"Action":"kms:ListRetirableGrants","Resource":"`+retirerARN+`"}]}`)
	if out, err := list(scoped, retirerARN); err != nil || len(out.Grants) != 1 {
		t.Fatalf("user allowed on the retiring principal: %v %+v", err, out)
	}
	other := "arn:aws:iam::" + otherAccount + ":user/someone-else"
	_, err = list(scoped, other)
	resourceIs(t, err, other)
	// A bare account id stands for the account's root ARN as the resource.
	_, err = list(scoped, otherAccount)
	resourceIs(t, err, "arn:aws:iam::"+otherAccount+":root")
	if out, err := list(rootOf(t, otherAccount), otherAccount); err != nil || len(out.Grants) != 0 {
		t.Fatalf("root listing its bare account id: %v %+v", err, out)
	}
	// The root ARN and the bare id are one principal: a grant naming the
	// account either way is listed under both spellings.
	for _, retiring := range []string{"arn:aws:iam::" + otherAccount + ":root", otherAccount} {
		if _, err := e.svc.CreateGrant(e.ctx, &kms.CreateGrantInput{KeyId: ptr(md.KeyId),
			GranteePrincipal: ptr("arn:aws:iam::" + testAccount + ":user/worker"), RetiringPrincipal: ptr(retiring),
			Operations: []string{"Decrypt"}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, spelling := range []string{"arn:aws:iam::" + otherAccount + ":root", otherAccount} {
		if out, err := list(rootOf(t, otherAccount), spelling); err != nil || len(out.Grants) != 2 {
			t.Fatalf("listing by %s: %v %+v, want both grants", spelling, err, out)
		}
	}
}

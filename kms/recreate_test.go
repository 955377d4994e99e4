package kms_test

import (
	"context"
	"strings"
	"testing"

	"hsmkms/kms"
)

// TestRecreatedPrincipalInheritsNothing: deleting a user replaces its ARN
// by its unique id in key policies, grants and trust policies, as AWS
// shows a deleted principal, so a user created later under the same name
// gets none of the old one's access (before, all of it: policies and
// grants match by ARN). A policy naming the unique id cannot be put back.
func TestRecreatedPrincipalInheritsNothing(t *testing.T) {
	e := newEnv(t, fakeDevice)
	boot, admin := bootstrapAdmin(t, e)
	acct := boot.AccountID
	aliceARN := "arn:aws:iam::" + acct + ":user/alice"
	createAlice := func() context.Context {
		out, err := e.svc.AdminCreateUser(admin, &kms.CreateUserInput{UserName: ptr("alice")})
		if err != nil {
			t.Fatal(err)
		}
		return kms.WithPrincipal(t.Context(), kms.Principal{AccountID: acct, ARN: aliceARN, Type: kms.PrincipalUser, Username: "alice", UserID: out.User.UserId})
	}
	alice := createAlice()
	oldID := func() string { p, _ := e.store.GetPrincipal(t.Context(), aliceARN); return p.UniqueID }()

	byPolicy, err := e.svc.CreateKey(admin, &kms.CreateKeyInput{Policy: ptr(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acct + `:root"},"Action":"kms:*","Resource":"*"},
		{"Effect":"Allow","Principal":{"AWS":"` + aliceARN + `"},"Action":"kms:Encrypt","Resource":"*"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	// The same ARN spelled with JSON escapes, which only decoding sees.
	byEscaped, err := e.svc.CreateKey(admin, &kms.CreateKeyInput{Policy: ptr(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acct + `:root"},"Action":"kms:*","Resource":"*"},
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acct + `:user\/\u0061lice"},"Action":"kms:Encrypt","Resource":"*"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	byGrant, err := e.svc.CreateKey(admin, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateGrant(admin, &kms.CreateGrantInput{KeyId: ptr(byGrant.KeyMetadata.KeyId), GranteePrincipal: ptr(aliceARN),
		RetiringPrincipal: ptr(aliceARN), Operations: []string{"Encrypt"}}); err != nil {
		t.Fatal(err)
	}
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + aliceARN + `"},"Action":"sts:AssumeRole"}]}`
	if _, err := e.svc.AdminCreateRole(admin, &kms.CreateRoleInput{RoleName: ptr("ops"), AssumeRolePolicyDocument: ptr(trust)}); err != nil {
		t.Fatal(err)
	}
	encrypt := func(ctx context.Context, key string) error {
		_, err := e.svc.Encrypt(ctx, &kms.EncryptInput{KeyId: ptr(key), Plaintext: []byte("x")})
		return err
	}
	for _, k := range []string{byPolicy.KeyMetadata.Arn, byEscaped.KeyMetadata.Arn, byGrant.KeyMetadata.Arn} {
		if err := encrypt(alice, k); err != nil {
			t.Fatalf("the first alice on %s: %v", k, err)
		}
	}

	if _, err := e.svc.AdminDeleteUser(admin, &kms.DeleteUserInput{UserName: ptr("alice")}); err != nil {
		t.Fatal(err)
	}
	alice = createAlice()
	for _, k := range []string{byPolicy.KeyMetadata.Arn, byEscaped.KeyMetadata.Arn, byGrant.KeyMetadata.Arn} {
		wantCode(t, encrypt(alice, k), kms.CodeAccessDenied)
	}
	_, err = e.svc.AssumeRole(alice, &kms.AssumeRoleInput{RoleArn: "arn:aws:iam::" + acct + ":role/ops", RoleSessionName: "s1"})
	wantCode(t, err, kms.CodeAccessDenied)

	// What AWS shows: the unique id where the name was.
	pol, err := e.svc.GetKeyPolicy(admin, &kms.GetKeyPolicyInput{KeyId: ptr(byPolicy.KeyMetadata.KeyId)})
	if err != nil || !strings.Contains(pol.Policy, `"`+oldID+`"`) || strings.Contains(pol.Policy, aliceARN) {
		t.Fatalf("key policy after the delete: %v %v", pol, err)
	}
	grants, err := e.svc.ListGrants(admin, &kms.ListGrantsInput{KeyId: ptr(byGrant.KeyMetadata.KeyId)})
	if err != nil || len(grants.Grants) != 1 || grants.Grants[0].GranteePrincipal != oldID || grants.Grants[0].RetiringPrincipal != oldID {
		t.Fatalf("grants after the delete: %+v %v", grants, err)
	}
	_, err = e.svc.PutKeyPolicy(admin, &kms.PutKeyPolicyInput{KeyId: ptr(byPolicy.KeyMetadata.KeyId), Policy: ptr(pol.Policy)})
	wantCode(t, err, kms.CodeMalformedPolicy)

	// A deleted role's session named in a key policy, with a one-letter
	// session name: the rewritten policy still parses, so the key stays
	// usable by the rest of the policy (before, it denied everything).
	if _, err := e.svc.AdminCreateRole(admin, &kms.CreateRoleInput{RoleName: ptr("short"), AssumeRolePolicyDocument: ptr(trust)}); err != nil {
		t.Fatal(err)
	}
	bySession, err := e.svc.CreateKey(admin, &kms.CreateKeyInput{Policy: ptr(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acct + `:root"},"Action":"kms:*","Resource":"*"},
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:sts::` + acct + `:assumed-role/short/x"},"Action":"kms:Encrypt","Resource":"*"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AdminDeleteRole(admin, &kms.DeleteRoleInput{RoleName: ptr("short")}); err != nil {
		t.Fatal(err)
	}
	if err := encrypt(admin, bySession.KeyMetadata.Arn); err != nil {
		t.Fatalf("the key after its policy's session principal was rewritten: %v", err)
	}
	pol, err = e.svc.GetKeyPolicy(admin, &kms.GetKeyPolicyInput{KeyId: ptr(bySession.KeyMetadata.KeyId)})
	if err != nil || !strings.Contains(pol.Policy, `:x"`) || strings.Contains(pol.Policy, "assumed-role/short/x") {
		t.Fatalf("session principal after the role's delete: %v %v", pol, err)
	}
}

package kms_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hsmkms/hsm"
	"hsmkms/kms"
	"hsmkms/kms/sqlstore"
)

// TestBootstrapSealsLegacySecrets starts the service on a database written
// before secrets were sealed (plain secret column, no identity records):
// Bootstrap seals the secret under the HSM, scrubs the file, and makes the
// admin a real user with the allow-all policy; the key still verifies.
func TestBootstrapSealsLegacySecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kms.db")
	store, err := sqlstore.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ctx := t.Context()
	const (
		account = "123456789012"
		keyID   = "AKIALEGACY0000000000"
		secret  = "LegacyPlainSecretLegacyPlainSecret012345"
	)
	adminARN := "arn:aws:iam::" + account + ":user/admin"
	if err := store.PutAccessKey(ctx, kms.AccessKey{ID: keyID, Secret: secret, AccountID: account, PrincipalARN: adminARN, Active: true, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"bootstrap_admin_access_key_id": keyID, "default_account_id": account} {
		if err := store.PutSetting(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	e := newEnvWith(t, hsm.NewFake(), store)
	res, err := e.svc.Bootstrap(ctx)
	if err != nil || res.Created || res.AccessKeyID != keyID {
		t.Fatalf("Bootstrap = %+v, %v", res, err)
	}
	if ids, err := store.PlainAccessKeyIDs(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("plain secrets left: %v, %v", ids, err)
	}
	stored, err := store.GetAccessKey(ctx, keyID)
	if err != nil || stored.Secret != "" || len(stored.SealedSecret) == 0 || bytes.Contains(stored.SealedSecret, []byte(secret)) {
		t.Fatalf("stored key: secret %q, sealed %d bytes, %v", stored.Secret, len(stored.SealedSecret), err)
	}
	files, _ := filepath.Glob(path + "*")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s still holds the plain-text secret", filepath.Base(f))
		}
	}
	k, err := e.svc.LookupAccessKey(ctx, keyID)
	if err != nil || k.Secret != secret {
		t.Fatalf("LookupAccessKey: %v (secret matches: %v)", err, k.Secret == secret)
	}
	p := k.Principal
	if p.ARN != adminARN || p.Type != kms.PrincipalUser || p.Username != "admin" || !strings.HasPrefix(p.UserID, "AIDA") || p.AccountID != account {
		t.Fatalf("Principal = %+v", p)
	}
	pols, err := store.IdentityPolicies(ctx, adminARN)
	if err != nil || len(pols) != 1 || !strings.Contains(pols[0].Document, `"Action":"*"`) {
		t.Fatalf("admin policies = %+v, %v", pols, err)
	}
	if ok, err := e.svc.IsBootstrapAdmin(ctx, p); !ok || err != nil {
		t.Fatalf("IsBootstrapAdmin = %v, %v", ok, err)
	}
	// A second start finds nothing to do.
	if _, err := e.svc.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	// The secret does not appear in fmt or log output of the key.
	if s := k.String() + " " + k.GoString(); strings.Contains(s, secret) {
		t.Errorf("AccessKey formats its secret: %s", s)
	}
}

// bootstrapAdmin bootstraps the service and returns the result and a
// context acting as the bootstrap admin.
func bootstrapAdmin(t *testing.T, e *env) (kms.BootstrapResult, context.Context) {
	t.Helper()
	boot, err := e.svc.Bootstrap(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	adminKey, err := e.svc.LookupAccessKey(e.ctx, boot.AccessKeyID)
	if err != nil {
		t.Fatal(err)
	}
	return boot, kms.WithPrincipal(t.Context(), adminKey.Principal)
}

// TestAdminAuthorization: the bootstrap admin may do anything; a user may
// use the admin API only as its identity policies allow, and only in its
// own account; denials carry AWS's message.
func TestAdminAuthorization(t *testing.T) {
	e := newEnv(t, fakeDevice)
	boot, admin := bootstrapAdmin(t, e)
	var err error
	const other = "222222222222"
	if _, err := e.svc.AdminCreateAccount(admin, &kms.CreateAccountInput{AccountId: ptr(other)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AdminCreateAccount(admin, &kms.CreateAccountInput{AccountId: ptr("000000000000")}); err == nil {
		t.Fatal("the internal account id was accepted")
	}
	if _, err := e.svc.AdminCreateUser(admin, &kms.CreateUserInput{UserName: ptr("carol")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.AdminCreateUser(admin, &kms.CreateUserInput{UserName: ptr("CAROL")})
	wantCode(t, err, kms.CodeAlreadyExists)
	_, err = e.svc.AdminCreateUser(admin, &kms.CreateUserInput{UserName: ptr("bad name")})
	wantCode(t, err, kms.CodeValidation)
	_, err = e.svc.AdminDeleteUser(admin, &kms.DeleteUserInput{UserName: ptr("admin")})
	wantCode(t, err, kms.CodeValidation)
	key, err := e.svc.AdminCreateAccessKey(admin, &kms.CreateAccessKeyInput{UserName: ptr("carol")})
	if err != nil {
		t.Fatal(err)
	}
	carolKey, err := e.svc.LookupAccessKey(e.ctx, key.AccessKey.AccessKeyId)
	if err != nil || carolKey.Secret != key.AccessKey.SecretAccessKey {
		t.Fatalf("carol's key: %v", err)
	}
	carolARN := "arn:aws:iam::" + boot.AccountID + ":user/carol"
	carol := kms.WithPrincipal(t.Context(), carolKey.Principal)

	_, err = e.svc.AdminListUsers(carol, &kms.ListUsersInput{})
	kerr := wantCode(t, err, kms.CodeAccessDenied)
	want := "User: " + carolARN + " is not authorized to perform: kmsadmin:ListUsers on resource: arn:aws:iam::" + boot.AccountID + ":root because no identity-based policy allows the kmsadmin:ListUsers action"
	if kerr != nil && kerr.Message != want {
		t.Errorf("message\n got %q\nwant %q", kerr.Message, want)
	}

	// Allowed by an identity policy, in her own account only.
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kmsadmin:List*","Resource":"*"}]}`
	if _, err := e.svc.AdminAttachIdentityPolicy(admin, &kms.AttachIdentityPolicyInput{PrincipalArn: ptr(carolARN), PolicyName: ptr("lister"), PolicyDocument: ptr(doc)}); err != nil {
		t.Fatal(err)
	}
	if out, err := e.svc.AdminListUsers(carol, &kms.ListUsersInput{}); err != nil || len(out.Users) != 2 {
		t.Fatalf("ListUsers as carol = %+v, %v", out, err)
	}
	_, err = e.svc.AdminListUsers(carol, &kms.ListUsersInput{AccountId: ptr(other)})
	wantCode(t, err, kms.CodeAccessDenied)
	_, err = e.svc.AdminListAccounts(carol, &kms.ListAccountsInput{})
	wantCode(t, err, kms.CodeAccessDenied)
	_, err = e.svc.AdminCreateUser(carol, &kms.CreateUserInput{UserName: ptr("dave")})
	wantCode(t, err, kms.CodeAccessDenied)

	// Identity policies are validated by the policy engine.
	_, err = e.svc.AdminAttachIdentityPolicy(admin, &kms.AttachIdentityPolicyInput{PrincipalArn: ptr(carolARN), PolicyName: ptr("p"),
		PolicyDocument: ptr(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*"}]}`)})
	wantCode(t, err, kms.CodeMalformedPolicy)
	// Trust policies name principals and have no Resource.
	_, err = e.svc.AdminCreateRole(admin, &kms.CreateRoleInput{RoleName: ptr("r"),
		AssumeRolePolicyDocument: ptr(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + carolARN + `"},"Action":"sts:AssumeRole","Resource":"*"}]}`)})
	wantCode(t, err, kms.CodeMalformedPolicy)

	// Deactivating a key takes effect at once for this process.
	if _, err := e.svc.AdminUpdateAccessKey(admin, &kms.UpdateAccessKeyInput{AccessKeyId: ptr(carolKey.ID), Status: ptr("Inactive")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.LookupAccessKey(e.ctx, carolKey.ID); err == nil {
		t.Fatal("an Inactive key still verifies")
	}
}

// As in IAM, a user with access keys or policies, or a role with policies,
// is not deleted (DeleteConflictException) until they are removed.
func TestDeletePrincipalConflicts(t *testing.T) {
	e := newEnv(t, fakeDevice)
	boot, admin := bootstrapAdmin(t, e)
	var err error
	if _, err := e.svc.AdminCreateUser(admin, &kms.CreateUserInput{UserName: ptr("erin")}); err != nil {
		t.Fatal(err)
	}
	erinARN := "arn:aws:iam::" + boot.AccountID + ":user/erin"
	key, err := e.svc.AdminCreateAccessKey(admin, &kms.CreateAccessKeyInput{UserName: ptr("erin")})
	if err != nil {
		t.Fatal(err)
	}
	const doc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:ListKeys","Resource":"*"}]}`
	if _, err := e.svc.AdminAttachIdentityPolicy(admin, &kms.AttachIdentityPolicyInput{PrincipalArn: ptr(erinARN), PolicyName: ptr("p"), PolicyDocument: ptr(doc)}); err != nil {
		t.Fatal(err)
	}

	_, err = e.svc.AdminDeleteUser(admin, &kms.DeleteUserInput{UserName: ptr("erin")})
	wantCode(t, err, kms.CodeDeleteConflict)
	if k, err := e.svc.LookupAccessKey(e.ctx, key.AccessKey.AccessKeyId); err != nil || k.Secret != key.AccessKey.SecretAccessKey {
		t.Fatalf("a refused delete removed erin's key: %v", err)
	}
	if _, err := e.svc.AdminDeleteAccessKey(admin, &kms.DeleteAccessKeyInput{AccessKeyId: ptr(key.AccessKey.AccessKeyId)}); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.AdminDeleteUser(admin, &kms.DeleteUserInput{UserName: ptr("erin")})
	wantCode(t, err, kms.CodeDeleteConflict)
	if _, err := e.svc.AdminDetachIdentityPolicy(admin, &kms.DetachIdentityPolicyInput{PrincipalArn: ptr(erinARN), PolicyName: ptr("p")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AdminDeleteUser(admin, &kms.DeleteUserInput{UserName: ptr("erin")}); err != nil {
		t.Fatalf("deleting erin with nothing attached: %v", err)
	}
	_, err = e.svc.AdminDeleteUser(admin, &kms.DeleteUserInput{UserName: ptr("erin")})
	wantCode(t, err, kms.CodeNotFound)

	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + boot.AccountID + `:root"},"Action":"sts:AssumeRole"}]}`
	role, err := e.svc.AdminCreateRole(admin, &kms.CreateRoleInput{RoleName: ptr("ops"), AssumeRolePolicyDocument: ptr(trust)})
	if err != nil {
		t.Fatal(err)
	}
	roleARN := role.Role.Arn
	if _, err := e.svc.AdminAttachIdentityPolicy(admin, &kms.AttachIdentityPolicyInput{PrincipalArn: ptr(roleARN), PolicyName: ptr("p"), PolicyDocument: ptr(doc)}); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.AdminDeleteRole(admin, &kms.DeleteRoleInput{RoleName: ptr("ops")})
	wantCode(t, err, kms.CodeDeleteConflict)
	if _, err := e.svc.AdminDetachIdentityPolicy(admin, &kms.DetachIdentityPolicyInput{PrincipalArn: ptr(roleARN), PolicyName: ptr("p")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AdminDeleteRole(admin, &kms.DeleteRoleInput{RoleName: ptr("ops")}); err != nil {
		t.Fatalf("deleting the role with nothing attached: %v", err)
	}
}

// The admin lists page like IAM's: MaxItems, Marker, IsTruncated, and
// every item exactly once across the pages.
func TestAdminListsPage(t *testing.T) {
	e := newEnv(t, fakeDevice)
	_, admin := bootstrapAdmin(t, e)
	var err error
	want := map[string]bool{"admin": true}
	for _, n := range []string{"u1", "u2", "u3", "u4"} {
		if _, err := e.svc.AdminCreateUser(admin, &kms.CreateUserInput{UserName: ptr(n)}); err != nil {
			t.Fatal(err)
		}
		want[n] = true
	}
	seen := map[string]bool{}
	var marker *string
	pages := 0
	for {
		out, err := e.svc.AdminListUsers(admin, &kms.ListUsersInput{MaxItems: ptr(int32(2)), Marker: marker})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(out.Users) > 2 || (out.IsTruncated && len(out.Users) != 2) {
			t.Fatalf("page %d: %d users, truncated %v", pages, len(out.Users), out.IsTruncated)
		}
		for _, u := range out.Users {
			if seen[u.UserName] {
				t.Fatalf("user %s listed twice", u.UserName)
			}
			seen[u.UserName] = true
		}
		if !out.IsTruncated {
			if out.Marker != "" {
				t.Fatalf("last page has a marker %q", out.Marker)
			}
			break
		}
		marker = ptr(out.Marker)
	}
	if pages != 3 || len(seen) != len(want) {
		t.Fatalf("%d pages, users %v; want 3 pages of %v", pages, seen, want)
	}
	_, err = e.svc.AdminListUsers(admin, &kms.ListUsersInput{Marker: ptr("not-a-marker")})
	wantCode(t, err, kms.CodeInvalidMarker)
	_, err = e.svc.AdminListUsers(admin, &kms.ListUsersInput{MaxItems: ptr(int32(0))})
	wantCode(t, err, kms.CodeValidation)
	_, err = e.svc.AdminListRoles(admin, &kms.ListRolesInput{MaxItems: ptr(int32(1001))})
	wantCode(t, err, kms.CodeValidation)

	for _, id := range []string{"222222222222", "333333333333"} {
		if _, err := e.svc.AdminCreateAccount(admin, &kms.CreateAccountInput{AccountId: ptr(id)}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := e.svc.AdminListAccounts(admin, &kms.ListAccountsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if all.IsTruncated || len(all.Accounts) < 3 {
		t.Fatalf("one default page: %d accounts, truncated %v", len(all.Accounts), all.IsTruncated)
	}
	var paged []string
	marker = nil
	for {
		out, err := e.svc.AdminListAccounts(admin, &kms.ListAccountsInput{MaxItems: ptr(int32(2)), Marker: marker})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range out.Accounts {
			paged = append(paged, a.AccountId)
		}
		if !out.IsTruncated {
			break
		}
		marker = ptr(out.Marker)
	}
	var unpaged []string
	for _, a := range all.Accounts {
		unpaged = append(unpaged, a.AccountId)
	}
	if strings.Join(paged, ",") != strings.Join(unpaged, ",") {
		t.Fatalf("accounts in pages of 2: %v; in one page: %v", paged, unpaged)
	}
}

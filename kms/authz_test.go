package kms_test

import (
	"context"
	"strings"
	"testing"

	"hsmkms/kms"
	"hsmkms/kms/policy"
)

const otherAccount = "444455556666"

// identity makes an IAM user in an account (creating the account when
// needed), attaches the given identity policies and returns a context that
// acts as that user.
func (e *env) identity(t *testing.T, account, name string, policies ...string) context.Context {
	t.Helper()
	ctx := t.Context()
	if _, err := e.store.GetAccount(ctx, account); err != nil {
		if err := e.store.CreateAccount(ctx, kms.AccountRecord{ID: account, CreatedAt: e.clock.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	arn := "arn:aws:iam::" + account + ":user/" + name
	if err := e.store.CreatePrincipal(ctx, kms.PrincipalRecord{
		ARN: arn, AccountID: account, Kind: kms.KindUser, Name: name,
		UniqueID: "AIDA" + strings.ToUpper(name) + "00000000000000000"[:17-len(name)], CreatedAt: e.clock.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	for i, doc := range policies {
		if err := e.store.PutIdentityPolicy(ctx, arn, kms.NamedPolicy{Name: "p" + string(rune('0'+i)), Document: doc}, 10); err != nil {
			t.Fatal(err)
		}
	}
	return kms.WithPrincipal(ctx, kms.Principal{AccountID: account, ARN: arn, Type: kms.PrincipalUser, Username: name, AccessKeyID: "AKIA" + name})
}

// rootOf returns a context acting as an account's root.
func rootOf(t *testing.T, account string) context.Context {
	return kms.WithPrincipal(t.Context(), kms.Principal{AccountID: account, ARN: "arn:aws:iam::" + account + ":root", Type: kms.PrincipalAccount})
}

func allowPolicy(actions string) string {
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":` + actions + `,"Resource":"*"}]}`
}

// wantDenied fails unless err is AccessDeniedException whose message ends
// with the given reason.
func wantDenied(t *testing.T, err error, reason string) {
	t.Helper()
	kerr := wantCode(t, err, kms.CodeAccessDenied)
	if !strings.HasSuffix(kerr.Message, reason) || !strings.HasPrefix(kerr.Message, "User: arn:aws:") {
		t.Fatalf("AccessDenied message %q, want it to end with %q", kerr.Message, reason)
	}
}

func TestDefaultKeyPolicyDelegatesToIdentityPolicies(t *testing.T) {
	e := newEnv(t, fakeDevice)
	md := e.createKey(t)
	got, err := e.svc.GetKeyPolicy(e.ctx, &kms.GetKeyPolicyInput{KeyId: ptr(md.KeyId)})
	if err != nil {
		t.Fatal(err)
	}
	if got.Policy != policy.DefaultKeyPolicy(testAccount) || got.PolicyName != "default" {
		t.Fatalf("default policy:\n%s", got.Policy)
	}
	nobody := e.identity(t, testAccount, "nobody")
	encryptor := e.identity(t, testAccount, "encryptor", allowPolicy(`"kms:Encrypt"`))
	wildcard := e.identity(t, testAccount, "wildcard", allowPolicy(`["kms:Generate*","kms:Describe*"]`))

	_, err = e.svc.Encrypt(nobody, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("x")})
	wantDenied(t, err, "because no identity-based policy allows the kms:Encrypt action")
	enc, err := e.svc.Encrypt(encryptor, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("x")})
	if err != nil {
		t.Fatalf("Encrypt allowed by identity policy: %v", err)
	}
	_, err = e.svc.Decrypt(encryptor, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	wantDenied(t, err, "because no identity-based policy allows the kms:Decrypt action")
	if _, err := e.svc.GenerateDataKey(wildcard, &kms.GenerateDataKeyInput{KeyId: ptr(md.KeyId), KeySpec: ptr("AES_256")}); err != nil {
		t.Fatalf("kms:Generate* did not allow GenerateDataKey: %v", err)
	}
	if _, err := e.svc.DescribeKey(wildcard, &kms.DescribeKeyInput{KeyId: ptr(md.Arn)}); err != nil {
		t.Fatalf("kms:Describe* did not allow DescribeKey: %v", err)
	}
	_, err = e.svc.Encrypt(wildcard, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("x")})
	wantDenied(t, err, "because no identity-based policy allows the kms:Encrypt action")
	// IAM-only actions: identity policies alone.
	_, err = e.svc.ListKeys(nobody, &kms.ListKeysInput{})
	wantDenied(t, err, "because no identity-based policy allows the kms:ListKeys action")
	_, err = e.svc.CreateKey(nobody, &kms.CreateKeyInput{})
	wantDenied(t, err, "because no identity-based policy allows the kms:CreateKey action")
	_, err = e.svc.GenerateRandom(nobody, &kms.GenerateRandomInput{NumberOfBytes: ptr(int32(8))})
	wantDenied(t, err, "because no identity-based policy allows the kms:GenerateRandom action")
}

func TestKeyPolicyAllowsAndDenies(t *testing.T) {
	e := newEnv(t, fakeDevice)
	md := e.createKey(t)
	user := e.identity(t, testAccount, "app")
	userARN := "arn:aws:iam::" + testAccount + ":user/app"
	doc := `{"Version":"2012-10-17","Statement":[
		{"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + testAccount + `:root"},"Action":"kms:*","Resource":"*"},
		{"Sid":"AppEncrypt","Effect":"Allow","Principal":{"AWS":"` + userARN + `"},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"},
		{"Sid":"TenantOnly","Effect":"Deny","Principal":{"AWS":"` + userARN + `"},"Action":"kms:*","Resource":"*",
		 "Condition":{"StringNotEquals":{"kms:EncryptionContext:tenant":"blue"}}}]}`
	if _, err := e.svc.PutKeyPolicy(e.ctx, &kms.PutKeyPolicyInput{KeyId: ptr(md.KeyId), Policy: ptr(doc)}); err != nil {
		t.Fatal(err)
	}
	got, _ := e.svc.GetKeyPolicy(e.ctx, &kms.GetKeyPolicyInput{KeyId: ptr(md.KeyId), PolicyName: ptr("default")})
	if got.Policy != doc {
		t.Fatal("GetKeyPolicy does not return the policy put")
	}
	blue := map[string]string{"tenant": "blue"}
	enc, err := e.svc.Encrypt(user, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("x"), EncryptionContext: blue})
	if err != nil {
		t.Fatalf("key policy naming the user did not allow Encrypt: %v", err)
	}
	if _, err := e.svc.Decrypt(user, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: blue}); err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	// Naming the key must not change the decision: the context-based Deny
	// sees the request's context whether or not KeyId is given.
	if _, err := e.svc.Decrypt(user, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: blue, KeyId: ptr(md.Arn)}); err != nil {
		t.Fatalf("Decrypt with KeyId: %v", err)
	}
	_, err = e.svc.Encrypt(user, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("x"), EncryptionContext: map[string]string{"tenant": "red"}})
	wantDenied(t, err, "with an explicit deny in a resource-based policy")
	// The Root statement delegates the rest to identity policies; the user
	// has none.
	_, err = e.svc.GenerateDataKey(user, &kms.GenerateDataKeyInput{KeyId: ptr(md.KeyId), KeySpec: ptr("AES_256"), EncryptionContext: blue})
	wantDenied(t, err, "because no identity-based policy allows the kms:GenerateDataKey action")

	// The lockout safety check, and its bypass.
	lockout := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + userARN + `"},"Action":"kms:Encrypt","Resource":"*"}]}`
	_, err = e.svc.PutKeyPolicy(e.ctx, &kms.PutKeyPolicyInput{KeyId: ptr(md.KeyId), Policy: ptr(lockout)})
	if kerr := wantCode(t, err, kms.CodeMalformedPolicy); kerr.Message != policy.MsgLockout {
		t.Fatalf("lockout message %q", kerr.Message)
	}
	wantCode(t, errOf(e.svc.PutKeyPolicy(e.ctx, &kms.PutKeyPolicyInput{KeyId: ptr(md.KeyId), Policy: ptr(`{"Statement":`)})), kms.CodeMalformedPolicy)
	wantCode(t, errOf(e.svc.PutKeyPolicy(e.ctx, &kms.PutKeyPolicyInput{KeyId: ptr(md.KeyId), Policy: ptr(doc), PolicyName: ptr("other")})), kms.CodeNotFound)
	big := `{"Version":"2012-10-17","Statement":[{"Sid":"` + strings.Repeat("a", 33000) + `","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}`
	wantCode(t, errOf(e.svc.PutKeyPolicy(e.ctx, &kms.PutKeyPolicyInput{KeyId: ptr(md.KeyId), Policy: ptr(big)})), kms.CodeLimitExceeded)
	if _, err := e.svc.PutKeyPolicy(e.ctx, &kms.PutKeyPolicyInput{KeyId: ptr(md.KeyId), Policy: ptr(lockout), BypassPolicyLockoutSafetyCheck: ptr(true)}); err != nil {
		t.Fatalf("bypass: %v", err)
	}
	// Now even the root, which the policy no longer names, is locked out.
	_, err = e.svc.DescribeKey(e.ctx, &kms.DescribeKeyInput{KeyId: ptr(md.KeyId)})
	wantDenied(t, err, "because no resource-based policy allows the kms:DescribeKey action")
	lp, err := e.svc.ListKeyPolicies(user, &kms.ListKeyPoliciesInput{KeyId: ptr(md.KeyId)})
	if err == nil || lp != nil {
		t.Fatal("ListKeyPolicies allowed without permission")
	}

	// CreateKey with a policy, and the lockout check there.
	created, err := e.svc.CreateKey(e.ctx, &kms.CreateKeyInput{Policy: ptr(doc)})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = e.svc.GetKeyPolicy(e.ctx, &kms.GetKeyPolicyInput{KeyId: ptr(created.KeyMetadata.KeyId)})
	if got.Policy != doc {
		t.Fatal("CreateKey did not attach its Policy")
	}
	wantCode(t, errOf(e.svc.CreateKey(e.ctx, &kms.CreateKeyInput{Policy: ptr(lockout)})), kms.CodeMalformedPolicy)
	external, err := e.svc.CreateKey(e.ctx, &kms.CreateKeyInput{Policy: ptr(doc), Origin: ptr("EXTERNAL")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = e.svc.GetKeyPolicy(e.ctx, &kms.GetKeyPolicyInput{KeyId: ptr(external.KeyMetadata.KeyId)})
	if got.Policy != doc {
		t.Fatal("CreateKey with Origin EXTERNAL did not attach its Policy")
	}
}

func TestCrossAccountNeedsBothSides(t *testing.T) {
	e := newEnv(t, fakeDevice)
	md := e.createKey(t)
	outsiderRoot := rootOf(t, otherAccount)
	outsiderUser := e.identity(t, otherAccount, "partner", allowPolicy(`["kms:Encrypt","kms:Decrypt"]`))
	outsiderNoIAM := e.identity(t, otherAccount, "stranger")

	// The default policy names only the key's own account.
	_, err := e.svc.Encrypt(outsiderRoot, &kms.EncryptInput{KeyId: ptr(md.Arn), Plaintext: []byte("x")})
	wantDenied(t, err, "because no resource-based policy allows the kms:Encrypt action")
	// A key id alone means "in my account": not found there.
	wantCode(t, errOf(e.svc.Encrypt(outsiderRoot, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("x")})), kms.CodeNotFound)

	doc := `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + testAccount + `:root"},"Action":"kms:*","Resource":"*"},
		{"Effect":"Allow","Principal":{"AWS":"` + otherAccount + `"},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}]}`
	if _, err := e.svc.PutKeyPolicy(e.ctx, &kms.PutKeyPolicyInput{KeyId: ptr(md.KeyId), Policy: ptr(doc)}); err != nil {
		t.Fatal(err)
	}
	enc, err := e.svc.Encrypt(outsiderUser, &kms.EncryptInput{KeyId: ptr(md.Arn), Plaintext: []byte("shared")})
	if err != nil {
		t.Fatalf("cross-account Encrypt allowed on both sides: %v", err)
	}
	dec, err := e.svc.Decrypt(outsiderUser, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	if err != nil || string(dec.Plaintext) != "shared" {
		t.Fatalf("cross-account Decrypt: %v", err)
	}
	_, err = e.svc.Encrypt(outsiderNoIAM, &kms.EncryptInput{KeyId: ptr(md.Arn), Plaintext: []byte("x")})
	wantDenied(t, err, "because no identity-based policy allows the kms:Encrypt action")
	_, err = e.svc.GenerateDataKey(outsiderUser, &kms.GenerateDataKeyInput{KeyId: ptr(md.Arn), KeySpec: ptr("AES_256")})
	wantDenied(t, err, "because no resource-based policy allows the kms:GenerateDataKey action")
	// ListKeys shows only what the caller's account owns.
	list, err := e.svc.ListKeys(outsiderRoot, &kms.ListKeysInput{})
	if err != nil || len(list.Keys) != 0 {
		t.Fatalf("ListKeys of the other account: %v %+v", err, list)
	}
}

func TestGrants(t *testing.T) {
	e := newEnv(t, fakeDevice)
	md := e.createKey(t)
	granteeARN := "arn:aws:iam::" + testAccount + ":user/worker"
	worker := e.identity(t, testAccount, "worker")
	retirerARN := "arn:aws:iam::" + testAccount + ":user/retirer"
	retirer := e.identity(t, testAccount, "retirer")
	ec := map[string]string{"job": "42", "extra": "ok"}

	_, err := e.svc.Encrypt(worker, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("x"), EncryptionContext: ec})
	wantDenied(t, err, "because no identity-based policy allows the kms:Encrypt action")

	out, err := e.svc.CreateGrant(e.ctx, &kms.CreateGrantInput{
		KeyId: ptr(md.KeyId), GranteePrincipal: ptr(granteeARN), RetiringPrincipal: ptr(retirerARN),
		Operations:  []string{"Encrypt", "Decrypt"},
		Constraints: &kms.GrantConstraints{EncryptionContextSubset: map[string]string{"job": "42"}},
		Name:        ptr("nightly"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.GrantId) != 64 || out.GrantToken == "" {
		t.Fatalf("CreateGrant output %+v", out)
	}
	// The token works at once; then the grant itself, through its id.
	enc, err := e.svc.Encrypt(worker, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("x"), EncryptionContext: ec, GrantTokens: []string{out.GrantToken}})
	if err != nil {
		t.Fatalf("Encrypt with the grant token: %v", err)
	}
	if _, err := e.svc.Decrypt(worker, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec}); err != nil {
		t.Fatalf("Decrypt through the grant: %v", err)
	}
	// The constraint holds; operations outside the grant stay denied.
	_, err = e.svc.Encrypt(worker, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("x"), EncryptionContext: map[string]string{"job": "43"}})
	wantDenied(t, err, "because no identity-based policy allows the kms:Encrypt action")
	_, err = e.svc.GenerateDataKey(worker, &kms.GenerateDataKeyInput{KeyId: ptr(md.KeyId), KeySpec: ptr("AES_256"), EncryptionContext: ec})
	wantDenied(t, err, "because no identity-based policy allows the kms:GenerateDataKey action")
	wantCode(t, errOf(e.svc.Encrypt(worker, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("x"), GrantTokens: []string{"forged"}})), kms.CodeInvalidGrantToken)

	// Same name and parameters: the same grant.
	again, err := e.svc.CreateGrant(e.ctx, &kms.CreateGrantInput{
		KeyId: ptr(md.Arn), GranteePrincipal: ptr(granteeARN), RetiringPrincipal: ptr(retirerARN),
		Operations:  []string{"Decrypt", "Encrypt"},
		Constraints: &kms.GrantConstraints{EncryptionContextSubset: map[string]string{"job": "42"}},
		Name:        ptr("nightly"),
	})
	if err != nil || again.GrantId != out.GrantId {
		t.Fatalf("idempotent CreateGrant: %v %+v", err, again)
	}
	list, err := e.svc.ListGrants(e.ctx, &kms.ListGrantsInput{KeyId: ptr(md.KeyId)})
	if err != nil || len(list.Grants) != 1 {
		t.Fatalf("ListGrants: %v %+v", err, list)
	}
	g := list.Grants[0]
	if g.KeyId != md.Arn || g.GrantId != out.GrantId || g.IssuingAccount != "arn:aws:iam::"+testAccount+":root" || g.Name != "nightly" ||
		g.Constraints == nil || g.Constraints.EncryptionContextSubset["job"] != "42" {
		t.Fatalf("grant entry %+v", g)
	}
	retirable, err := e.svc.ListRetirableGrants(e.ctx, &kms.ListRetirableGrantsInput{RetiringPrincipal: ptr(retirerARN)})
	if err != nil || len(retirable.Grants) != 1 {
		t.Fatalf("ListRetirableGrants: %v %+v", err, retirable)
	}
	// Validation.
	wantCode(t, errOf(e.svc.CreateGrant(e.ctx, &kms.CreateGrantInput{KeyId: ptr(md.KeyId), GranteePrincipal: ptr(granteeARN), Operations: []string{"Sign"}})), kms.CodeValidation)
	wantCode(t, errOf(e.svc.CreateGrant(e.ctx, &kms.CreateGrantInput{KeyId: ptr(md.KeyId), GranteePrincipal: ptr(granteeARN), Operations: []string{"Fly"}})), kms.CodeValidation)
	// The worker may not retire (no RetireGrant operation); the retirer may.
	_, err = e.svc.RetireGrant(worker, &kms.RetireGrantInput{KeyId: ptr(md.Arn), GrantId: ptr(out.GrantId)})
	wantDenied(t, err, "because no identity-based policy allows the kms:RetireGrant action")
	if _, err := e.svc.RetireGrant(retirer, &kms.RetireGrantInput{GrantToken: ptr(out.GrantToken)}); err != nil {
		t.Fatalf("RetireGrant by the retiring principal: %v", err)
	}
	_, err = e.svc.Encrypt(worker, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("x"), EncryptionContext: ec})
	wantDenied(t, err, "because no identity-based policy allows the kms:Encrypt action")

	// RevokeGrant.
	second, err := e.svc.CreateGrant(e.ctx, &kms.CreateGrantInput{KeyId: ptr(md.KeyId), GranteePrincipal: ptr(granteeARN), Operations: []string{"Encrypt"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Encrypt(worker, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("x")}); err != nil {
		t.Fatalf("Encrypt through the second grant: %v", err)
	}
	if _, err := e.svc.RevokeGrant(e.ctx, &kms.RevokeGrantInput{KeyId: ptr(md.KeyId), GrantId: ptr(second.GrantId)}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, errOf(e.svc.RevokeGrant(e.ctx, &kms.RevokeGrantInput{KeyId: ptr(md.KeyId), GrantId: ptr(second.GrantId)})), kms.CodeNotFound)
	_, err = e.svc.Encrypt(worker, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("x")})
	wantDenied(t, err, "because no identity-based policy allows the kms:Encrypt action")
}

func TestKeyPolicyPrincipalsMustExist(t *testing.T) {
	e := newEnv(t, fakeDevice)
	md := e.createKey(t)
	e.identity(t, testAccount, "known")
	for doc, ok := range map[string]bool{
		`{"Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::` + testAccount + `:root","arn:aws:iam::` + testAccount + `:user/known"]},"Action":"kms:*","Resource":"*"}]}`: true,
		`{"Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::` + testAccount + `:root","arn:aws:iam::` + testAccount + `:user/typo"]},"Action":"kms:*","Resource":"*"}]}`:  false,
		`{"Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::` + testAccount + `:root","999999999999"]},"Action":"kms:*","Resource":"*"}]}`:                                false,
	} {
		_, err := e.svc.PutKeyPolicy(e.ctx, &kms.PutKeyPolicyInput{KeyId: ptr(md.KeyId), Policy: ptr(doc)})
		if ok && err != nil {
			t.Errorf("policy naming known principals refused: %v", err)
		}
		if !ok {
			if kerr := wantCode(t, err, kms.CodeMalformedPolicy); kerr.Message != policy.MsgInvalidPrincipals {
				t.Errorf("message %q", kerr.Message)
			}
		}
	}
}

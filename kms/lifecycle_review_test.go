package kms_test

import (
	"testing"

	"hsmkms/kms"
)

// TestCancelDeletionOfKeyWithoutMaterial: an EXTERNAL key with no material
// (never imported into, or its material deleted while deletion was
// pending) comes out of CancelKeyDeletion in PendingImport, and EnableKey
// refuses it. Before, it came back Disabled, EnableKey made it Enabled, and
// Encrypt answered KMSInternalException (HTTP 500, retried by the SDKs).
func TestCancelDeletionOfKeyWithoutMaterial(t *testing.T) {
	e := newEnv(t, fakeDevice)
	state := func(id string) string {
		t.Helper()
		d, err := e.svc.DescribeKey(e.ctx, &kms.DescribeKeyInput{KeyId: ptr(id)})
		if err != nil {
			t.Fatal(err)
		}
		return d.KeyMetadata.KeyState
	}
	scheduleAndCancel := func(id string) {
		t.Helper()
		if _, err := e.svc.ScheduleKeyDeletion(e.ctx, &kms.ScheduleKeyDeletionInput{KeyId: ptr(id), PendingWindowInDays: ptr(int32(7))}); err != nil {
			t.Fatal(err)
		}
	}
	never := newExternalKey(t, e.svc, e.ctx)
	deleted := newExternalKey(t, e.svc, e.ctx)
	mustImport(t, e.svc, e.ctx, deleted, newMaterial())
	kept := newExternalKey(t, e.svc, e.ctx)
	mustImport(t, e.svc, e.ctx, kept, newMaterial())
	for _, id := range []string{never, deleted, kept} {
		scheduleAndCancel(id)
	}
	if _, err := e.svc.DeleteImportedKeyMaterial(e.ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: ptr(deleted)}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{never, deleted, kept} {
		if _, err := e.svc.CancelKeyDeletion(e.ctx, &kms.KeyIdInput{KeyId: ptr(id)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{never, deleted} {
		if got := state(id); got != "PendingImport" {
			t.Fatalf("a key without material after CancelKeyDeletion: %s, want PendingImport", got)
		}
		wantCode(t, errOf(e.svc.EnableKey(e.ctx, &kms.KeyIdInput{KeyId: ptr(id)})), kms.CodeInvalidState)
		_, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(id), Plaintext: []byte("x")})
		wantCode(t, err, kms.CodeInvalidState)
	}
	// A key with its material comes back Disabled, and enables.
	if got := state(kept); got != "Disabled" {
		t.Fatalf("a key with material after CancelKeyDeletion: %s, want Disabled", got)
	}
	if _, err := e.svc.EnableKey(e.ctx, &kms.KeyIdInput{KeyId: ptr(kept)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(kept), Plaintext: []byte("x")}); err != nil {
		t.Fatal(err)
	}
}

// TestCreateKeyTagsNeedTagResource: "To add tags when creating a KMS key,
// the caller must have kms:TagResource permission in an IAM policy";
// before, CreateKey's Tags dodged a Deny on kms:TagResource.
func TestCreateKeyTagsNeedTagResource(t *testing.T) {
	e := newEnv(t, fakeDevice)
	denyTag := e.identity(t, testAccount, "denytag",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:CreateKey","Resource":"*"},{"Effect":"Deny","Action":"kms:TagResource","Resource":"*"}]}`)
	noTag := e.identity(t, testAccount, "notag", allowPolicy(`"kms:CreateKey"`))
	tagger := e.identity(t, testAccount, "tagger", allowPolicy(`["kms:CreateKey","kms:TagResource"]`))
	in := func() *kms.CreateKeyInput {
		return &kms.CreateKeyInput{Tags: []kms.Tag{{TagKey: ptr("team"), TagValue: ptr("admins")}}}
	}
	_, err := e.svc.CreateKey(denyTag, in())
	wantDenied(t, err, "with an explicit deny in an identity-based policy")
	_, err = e.svc.CreateKey(noTag, in())
	wantDenied(t, err, "because no identity-based policy allows the kms:TagResource action")
	if _, err := e.svc.CreateKey(noTag, &kms.CreateKeyInput{}); err != nil {
		t.Fatalf("CreateKey without tags needs no kms:TagResource: %v", err)
	}
	if _, err := e.svc.CreateKey(tagger, in()); err != nil {
		t.Fatalf("CreateKey with tags and kms:TagResource: %v", err)
	}
}

// TestUpdateAliasWithinKeyType: UpdateAlias moves an alias between keys of
// the same type (symmetric, asymmetric or HMAC) and key usage, whatever
// their specs, as AWS documents; not across types or usages.
func TestUpdateAliasWithinKeyType(t *testing.T) {
	e := newEnv(t, fakeDevice)
	create := func(spec, usage string) string {
		t.Helper()
		out, err := e.svc.CreateKey(e.ctx, &kms.CreateKeyInput{KeySpec: ptr(spec), KeyUsage: ptr(usage)})
		if err != nil {
			t.Fatal(err)
		}
		return out.KeyMetadata.KeyId
	}
	update := func(alias, id string) error {
		_, err := e.svc.UpdateAlias(e.ctx, &kms.AliasInput{AliasName: ptr(alias), TargetKeyId: ptr(id)})
		return err
	}
	for _, c := range []struct{ from, to [2]string }{
		{[2]string{"RSA_2048", "SIGN_VERIFY"}, [2]string{"ECC_NIST_P256", "SIGN_VERIFY"}},
		{[2]string{"RSA_2048", "SIGN_VERIFY"}, [2]string{"RSA_3072", "SIGN_VERIFY"}},
		{[2]string{"HMAC_256", "GENERATE_VERIFY_MAC"}, [2]string{"HMAC_512", "GENERATE_VERIFY_MAC"}},
	} {
		alias := "alias/" + c.from[0] + "-" + c.to[0]
		if _, err := e.svc.CreateAlias(e.ctx, &kms.AliasInput{AliasName: ptr(alias), TargetKeyId: ptr(create(c.from[0], c.from[1]))}); err != nil {
			t.Fatal(err)
		}
		if err := update(alias, create(c.to[0], c.to[1])); err != nil {
			t.Fatalf("%s -> %s: %v", c.from[0], c.to[0], err)
		}
	}
	if _, err := e.svc.CreateAlias(e.ctx, &kms.AliasInput{AliasName: ptr("alias/rsa"), TargetKeyId: ptr(create("RSA_2048", "SIGN_VERIFY"))}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, update("alias/rsa", create("RSA_2048", "ENCRYPT_DECRYPT")), kms.CodeValidation)          // another usage
	wantCode(t, update("alias/rsa", create("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")), kms.CodeValidation) // another type
}

// TestListAliasesForeignKey: ListAliases is decided before its KeyId is
// looked at, and another account's key is answered as one that does not
// exist, so the answer tells nobody whether a foreign key exists.
func TestListAliasesForeignKey(t *testing.T) {
	e := newEnv(t, fakeDevice)
	md := e.createKey(t)
	missing := "arn:aws:kms:us-east-1:" + testAccount + ":key/00000000-0000-0000-0000-000000000000"
	nobody := e.identity(t, otherAccount, "nobody")
	for _, id := range []string{md.Arn, missing} {
		_, err := e.svc.ListAliases(nobody, &kms.ListAliasesInput{KeyId: ptr(id)})
		wantDenied(t, err, "because no identity-based policy allows the kms:ListAliases action")
	}
	lister := e.identity(t, otherAccount, "lister", allowPolicy(`"kms:ListAliases"`))
	for _, id := range []string{md.Arn, missing} {
		_, err := e.svc.ListAliases(lister, &kms.ListAliasesInput{KeyId: ptr(id)})
		wantCode(t, err, kms.CodeNotFound)
	}
}

// TestResourceTagKeysIgnoreCase: tag keys that differ only in case are one
// key to aws:RequestTag conditions, so a request with both is refused
// (before, [Env=prod, env=dev] dodged a Deny on aws:RequestTag/env=prod).
// Across requests both spellings stand, as in AWS, and aws:ResourceTag sees
// them in key order: the same request is decided the same way every time
// (it was random).
func TestResourceTagKeysIgnoreCase(t *testing.T) {
	e := newEnv(t, fakeDevice)
	md := e.createKey(t)
	tag := func(k, v string) kms.Tag { return kms.Tag{TagKey: ptr(k), TagValue: ptr(v)} }
	_, err := e.svc.TagResource(e.ctx, &kms.TagResourceInput{KeyId: ptr(md.KeyId), Tags: []kms.Tag{tag("Env", "prod"), tag("env", "dev")}})
	wantCode(t, err, kms.CodeTag)
	_, err = e.svc.CreateKey(e.ctx, &kms.CreateKeyInput{Tags: []kms.Tag{tag("Env", "prod"), tag("env", "dev")}})
	wantCode(t, err, kms.CodeTag)

	for _, tg := range []kms.Tag{tag("Env", "prod"), tag("env", "dev")} {
		if _, err := e.svc.TagResource(e.ctx, &kms.TagResourceInput{KeyId: ptr(md.KeyId), Tags: []kms.Tag{tg}}); err != nil {
			t.Fatal(err)
		}
	}
	tags, err := e.svc.ListResourceTags(e.ctx, &kms.ListResourceTagsInput{KeyId: ptr(md.KeyId)})
	if err != nil || len(tags.Tags) != 2 {
		t.Fatalf("both spellings kept: %+v, %v", tags, err)
	}
	prodOnly := e.identity(t, testAccount, "prodonly",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/env":"prod"}}}]}`)
	_, first := e.svc.Encrypt(prodOnly, &kms.EncryptInput{KeyId: ptr(md.Arn), Plaintext: []byte("x")})
	for range 50 {
		if _, err := e.svc.Encrypt(prodOnly, &kms.EncryptInput{KeyId: ptr(md.Arn), Plaintext: []byte("x")}); (err == nil) != (first == nil) {
			t.Fatalf("the same request decided differently: %v, then %v", first, err)
		}
	}
}

// TestLockoutCheckSeesTheKeysConditions: the lockout safety check asks
// whether the caller could still call PutKeyPolicy, so it sees what that
// call's authorization sees: kms:BypassPolicyLockoutSafetyCheck (false) and
// the key's resource tags. Before, an admin allowed only with those
// conditions was told a policy would lock it out when it would not.
func TestLockoutCheckSeesTheKeysConditions(t *testing.T) {
	e := newEnv(t, fakeDevice)
	adminARN := "arn:aws:iam::" + testAccount + ":user/admin"
	admin := e.identity(t, testAccount, "admin")
	for _, cond := range []string{
		`{"Bool":{"kms:BypassPolicyLockoutSafetyCheck":"false"}}`,
		`{"StringEquals":{"aws:ResourceTag/team":"ops"}}`,
	} {
		md := e.createKey(t)
		if _, err := e.svc.TagResource(e.ctx, &kms.TagResourceInput{KeyId: ptr(md.KeyId), Tags: []kms.Tag{{TagKey: ptr("team"), TagValue: ptr("ops")}}}); err != nil {
			t.Fatal(err)
		}
		doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + adminARN + `"},"Action":"kms:*","Resource":"*","Condition":` + cond + `}]}`
		if _, err := e.svc.PutKeyPolicy(e.ctx, &kms.PutKeyPolicyInput{KeyId: ptr(md.KeyId), Policy: ptr(doc), BypassPolicyLockoutSafetyCheck: ptr(true)}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.PutKeyPolicy(admin, &kms.PutKeyPolicyInput{KeyId: ptr(md.Arn), Policy: ptr(doc)}); err != nil {
			t.Fatalf("re-putting a policy under %s that keeps the admin's access: %v", cond, err)
		}
	}
	// At CreateKey, the new key's attributes under their deprecated names
	// too, which addKeyContext sets for PutKeyPolicy's authorization.
	creator := e.identity(t, testAccount, "creator", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:CreateKey","Resource":"*"}]}`)
	creatorARN := "arn:aws:iam::" + testAccount + ":user/creator"
	for _, cond := range []string{
		`{"StringEquals":{"kms:CustomerMasterKeySpec":"SYMMETRIC_DEFAULT"}}`,
		`{"StringEquals":{"kms:CustomerMasterKeyUsage":"ENCRYPT_DECRYPT"}}`,
	} {
		doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + creatorARN + `"},"Action":"kms:*","Resource":"*","Condition":` + cond + `}]}`
		md, err := e.svc.CreateKey(creator, &kms.CreateKeyInput{Policy: ptr(doc)})
		if err != nil {
			t.Fatalf("CreateKey with a policy under %s that keeps the creator's access: %v", cond, err)
		}
		if _, err := e.svc.PutKeyPolicy(creator, &kms.PutKeyPolicyInput{KeyId: ptr(md.KeyMetadata.Arn), Policy: ptr(doc)}); err != nil {
			t.Fatalf("the creator's access under %s: %v", cond, err)
		}
	}
}

// TestServiceWildcardRefusedOnPut: a new key policy or trust policy naming
// {"Service":"*"} is refused; a stored one still parses and names no user
// (so no key is locked out, and no user let in).
func TestServiceWildcardRefusedOnPut(t *testing.T) {
	e := newEnv(t, fakeDevice)
	md := e.createKey(t)
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + testAccount + `:root"},"Action":"kms:*","Resource":"*"},
		{"Effect":"Allow","Principal":{"Service":"*"},"Action":"kms:Encrypt","Resource":"*"}]}`
	_, err := e.svc.PutKeyPolicy(e.ctx, &kms.PutKeyPolicyInput{KeyId: ptr(md.KeyId), Policy: ptr(doc)})
	wantCode(t, err, kms.CodeMalformedPolicy)
	// Stored before this rule: the root keeps its access, a user gets none.
	if err := e.store.PutKeyPolicy(t.Context(), md.KeyId, doc, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("x")}); err != nil {
		t.Fatalf("the root under a stored policy with Service:*: %v", err)
	}
	user := e.identity(t, testAccount, "nobody")
	_, err = e.svc.Encrypt(user, &kms.EncryptInput{KeyId: ptr(md.Arn), Plaintext: []byte("x")})
	wantCode(t, err, kms.CodeAccessDenied)
}

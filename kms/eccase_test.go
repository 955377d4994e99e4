package kms_test

import (
	"context"
	"strings"
	"testing"

	"hsmkms/kms"
)

// TestGrantConstraintKeysIgnoreCase: "in a grant constraint, the key in
// each key-value pair is not case sensitive, but the value is case
// sensitive" (GrantConstraints, AWS KMS API reference). Before, keys had
// to match exactly, so requests AWS allows were refused.
func TestGrantConstraintKeysIgnoreCase(t *testing.T) {
	e := newEnv(t, fakeDevice)
	md := e.createKey(t)
	worker := e.identity(t, otherAccount, "worker", allowPolicy(`"kms:Encrypt"`))
	for _, tc := range []struct {
		name        string
		constraints kms.GrantConstraints
	}{
		{"equals", kms.GrantConstraints{EncryptionContextEquals: map[string]string{"Purpose": "Test", "Job": "42"}}},
		{"subset", kms.GrantConstraints{EncryptionContextSubset: map[string]string{"Purpose": "Test"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := e.svc.CreateGrant(e.ctx, &kms.CreateGrantInput{KeyId: ptr(md.KeyId), Constraints: &tc.constraints,
				GranteePrincipal: ptr("arn:aws:iam::" + otherAccount + ":user/worker"), Operations: []string{"Encrypt"}})
			if err != nil {
				t.Fatal(err)
			}
			defer e.svc.RevokeGrant(e.ctx, &kms.RevokeGrantInput{KeyId: ptr(md.KeyId), GrantId: ptr(g.GrantId)})
			encrypt := func(ec map[string]string) error {
				_, err := e.svc.Encrypt(worker, &kms.EncryptInput{KeyId: ptr(md.Arn), Plaintext: []byte("x"), EncryptionContext: ec})
				return err
			}
			if err := encrypt(map[string]string{"purpose": "Test", "JOB": "42"}); err != nil {
				t.Fatalf("keys in another case: %v", err)
			}
			wantDenied(t, encrypt(map[string]string{"purpose": "test", "JOB": "42"}), "because no resource-based policy allows the kms:Encrypt action")
			if tc.name == "equals" {
				// Two spellings of one key with the constraint's value
				// match it; with another value they do not.
				if err := encrypt(map[string]string{"Purpose": "Test", "purpose": "Test", "JOB": "42"}); err != nil {
					t.Fatalf("both spellings with the constraint's value: %v", err)
				}
				wantDenied(t, encrypt(map[string]string{"Purpose": "Test", "purpose": "other", "JOB": "42"}), "because no resource-based policy allows the kms:Encrypt action")
				wantDenied(t, encrypt(map[string]string{"purpose": "Test"}), "because no resource-based policy allows the kms:Encrypt action")
				wantDenied(t, encrypt(map[string]string{"purpose": "Test", "JOB": "42", "extra": "1"}), "because no resource-based policy allows the kms:Encrypt action")
			}
		})
	}
}

// TestEncryptionContextConditionKeyCollision: two pairs whose keys differ
// only in case meet in one kms:EncryptionContext:KEY condition key (its key
// part is not case sensitive). The request is allowed only if it would be
// allowed with either pair's value: an Allow must hold for both, and a Deny
// that matches either applies, whatever the operator (before, whichever
// pair map iteration visited last stood for both, so the same request was
// allowed or denied at random, and a StringNotEquals Deny could be dodged
// by adding a second spelling of the key).
func TestEncryptionContextConditionKeyCollision(t *testing.T) {
	e := newEnv(t, fakeDevice)
	md := e.createKey(t)
	policy := `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:purpose":"billing"}}},
		{"Effect":"Deny","Action":"kms:Encrypt","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:purpose":"secret"}}}]}`
	user := e.identity(t, testAccount, "user", policy)
	onlyFinance := `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"},
		{"Effect":"Deny","Action":"kms:Encrypt","Resource":"*","Condition":{"StringNotEquals":{"kms:EncryptionContext:dept":"finance"}}}]}`
	finance := e.identity(t, testAccount, "finance", onlyFinance)
	encrypt := func(as context.Context, ec map[string]string) error {
		_, err := e.svc.Encrypt(as, &kms.EncryptInput{KeyId: ptr(md.Arn), Plaintext: []byte("x"), EncryptionContext: ec})
		return err
	}
	const noAllow = "because no identity-based policy allows the kms:Encrypt action"
	const deny = "with an explicit deny in an identity-based policy"
	for range 20 {
		if err := encrypt(user, map[string]string{"purpose": "billing", "PURPOSE": "billing"}); err != nil {
			t.Fatalf("both spellings carry the allowed value: %v", err)
		}
		wantDenied(t, encrypt(user, map[string]string{"purpose": "billing", "PURPOSE": "other"}), noAllow)
		wantDenied(t, encrypt(user, map[string]string{"Purpose": "billing", "purpose": "secret"}), deny)

		if err := encrypt(finance, map[string]string{"dept": "finance"}); err != nil {
			t.Fatal(err)
		}
		wantDenied(t, encrypt(finance, map[string]string{"dept": "hr"}), deny)
		wantDenied(t, encrypt(finance, map[string]string{"dept": "finance", "Dept": "hr"}), deny)
	}
	// Too many such pairs to evaluate every choice: refused outright.
	many := map[string]string{}
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		many[k], many[strings.ToUpper(k)] = "1", "2"
	}
	wantCode(t, encrypt(user, many), kms.CodeValidation)
}

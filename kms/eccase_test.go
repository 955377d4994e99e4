package kms_test

import (
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
				wantDenied(t, encrypt(map[string]string{"purpose": "Test"}), "because no resource-based policy allows the kms:Encrypt action")
				wantDenied(t, encrypt(map[string]string{"purpose": "Test", "JOB": "42", "extra": "1"}), "because no resource-based policy allows the kms:Encrypt action")
			}
		})
	}
}

// TestEncryptionContextConditionKeyCollision: two pairs whose keys differ
// only in case meet in one kms:EncryptionContext:KEY condition key (its key
// part is not case sensitive). The decision must not depend on Go's map
// iteration order (before, the value of whichever pair came last was used,
// so the same request was allowed or denied at random), and a Deny that
// matches either value applies.
func TestEncryptionContextConditionKeyCollision(t *testing.T) {
	e := newEnv(t, fakeDevice)
	md := e.createKey(t)
	policy := `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:purpose":"billing"}}},
		{"Effect":"Deny","Action":"kms:Encrypt","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:purpose":"secret"}}}]}`
	user := e.identity(t, testAccount, "user", policy)
	encrypt := func(ec map[string]string) error {
		_, err := e.svc.Encrypt(user, &kms.EncryptInput{KeyId: ptr(md.Arn), Plaintext: []byte("x"), EncryptionContext: ec})
		return err
	}
	for range 40 {
		if err := encrypt(map[string]string{"purpose": "billing", "PURPOSE": "other"}); err != nil {
			t.Fatalf("one of the colliding values is allowed: %v", err)
		}
		wantDenied(t, encrypt(map[string]string{"Purpose": "billing", "purpose": "secret"}), "with an explicit deny in an identity-based policy")
	}
}

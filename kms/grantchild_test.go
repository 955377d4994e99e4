package kms_test

import (
	"context"
	"strings"
	"testing"

	"hsmkms/kms"
)

// TestChildGrantLimits: a grantee that may call CreateGrant only through a
// grant creates grants within it ("Granting CreateGrant permission", AWS KMS
// developer guide): some or all of its operations, and constraints at least
// as strict (a Subset may gain pairs or become an Equals that contains
// them; an Equals stays). Before, such a grantee could grant any operation
// without any constraint. Principals allowed CreateGrant by a policy are
// not limited.
func TestChildGrantLimits(t *testing.T) {
	e := newEnv(t, fakeDevice)
	md := e.createKey(t)
	worker := e.identity(t, testAccount, "worker") // no identity policy: only grants help
	e.identity(t, testAccount, "other")
	parent := func(c *kms.GrantConstraints) {
		t.Helper()
		if _, err := e.svc.CreateGrant(e.ctx, &kms.CreateGrantInput{KeyId: ptr(md.KeyId), GranteePrincipal: ptr("arn:aws:iam::" + testAccount + ":user/worker"),
			Operations: []string{"Decrypt", "DescribeKey", "CreateGrant"}, Constraints: c}); err != nil {
			t.Fatal(err)
		}
	}
	child := func(ops []string, c *kms.GrantConstraints) error {
		_, err := e.svc.CreateGrant(worker, &kms.CreateGrantInput{KeyId: ptr(md.Arn), GranteePrincipal: ptr("arn:aws:iam::" + testAccount + ":user/other"),
			Operations: ops, Constraints: c})
		return err
	}
	subset := func(kv ...string) *kms.GrantConstraints {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return &kms.GrantConstraints{EncryptionContextSubset: m}
	}
	equals := func(kv ...string) *kms.GrantConstraints {
		return &kms.GrantConstraints{EncryptionContextEquals: subset(kv...).EncryptionContextSubset}
	}
	const denied = "because no identity-based policy allows the kms:CreateGrant action"

	parent(subset("Department", "IT"))
	for _, ok := range []struct {
		ops []string
		c   *kms.GrantConstraints
	}{
		{[]string{"Decrypt"}, subset("Department", "IT")},
		{[]string{"Decrypt", "CreateGrant"}, subset("Department", "IT", "Purpose", "Test")},
		{[]string{"Decrypt"}, equals("Department", "IT")},
		{[]string{"Decrypt"}, subset("department", "IT")}, // keys match without regard to case
	} {
		if err := child(ok.ops, ok.c); err != nil {
			t.Fatalf("child %v %+v within the parent: %v", ok.ops, *ok.c, err)
		}
	}
	for _, bad := range []struct {
		ops []string
		c   *kms.GrantConstraints
	}{
		{[]string{"Encrypt"}, subset("Department", "IT")},                                          // an operation the parent lacks
		{[]string{"Decrypt"}, nil},                                                                 // no constraint
		{[]string{"Decrypt"}, subset("Purpose", "Test")},                                           // another constraint
		{[]string{"Decrypt"}, subset("Department", "it")},                                          // values are exact
		{[]string{"Decrypt"}, &kms.GrantConstraints{EncryptionContextSubset: map[string]string{}}}, // empty
	} {
		wantDenied(t, child(bad.ops, bad.c), denied)
	}

	// An Equals parent admits only the same Equals.
	md2 := e.createKey(t)
	md = md2
	parent(equals("A", "1"))
	if err := child([]string{"Decrypt"}, equals("a", "1")); err != nil {
		t.Fatalf("the same Equals constraint: %v", err)
	}
	wantDenied(t, child([]string{"Decrypt"}, subset("A", "1")), denied)
	wantDenied(t, child([]string{"Decrypt"}, equals("A", "1", "B", "2")), denied)

	// The key's root holds CreateGrant through the key policy: not limited.
	if _, err := e.svc.CreateGrant(e.ctx, &kms.CreateGrantInput{KeyId: ptr(md.KeyId), GranteePrincipal: ptr("arn:aws:iam::" + testAccount + ":user/other"),
		Operations: []string{"Encrypt"}}); err != nil {
		t.Fatal(err)
	}
}

// TestGrantConstraintIgnoredWithoutContext: "The encryption context
// constraint is ignored for DescribeKey and RetireGrant operations"; before,
// a constrained grant never allowed DescribeKey.
func TestGrantConstraintIgnoredWithoutContext(t *testing.T) {
	e := newEnv(t, fakeDevice)
	md := e.createKey(t)
	worker := e.identity(t, testAccount, "worker")
	if _, err := e.svc.DescribeKey(worker, &kms.DescribeKeyInput{KeyId: ptr(md.Arn)}); err == nil {
		t.Fatal("DescribeKey allowed without the grant")
	}
	if _, err := e.svc.CreateGrant(e.ctx, &kms.CreateGrantInput{KeyId: ptr(md.KeyId), GranteePrincipal: ptr("arn:aws:iam::" + testAccount + ":user/worker"),
		Operations: []string{"DescribeKey", "Decrypt"}, Constraints: &kms.GrantConstraints{EncryptionContextSubset: map[string]string{"job": "1"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.DescribeKey(worker, &kms.DescribeKeyInput{KeyId: ptr(md.Arn)}); err != nil {
		t.Fatalf("DescribeKey through a grant with an encryption-context constraint: %v", err)
	}
}

// TestEmptyGrantConstraintKept: an empty EncryptionContextEquals is a
// constraint (only an empty encryption context matches it); the store used
// to drop it, leaving a grant without any constraint.
func TestEmptyGrantConstraintKept(t *testing.T) {
	e := newEnv(t, fakeDevice)
	md := e.createKey(t)
	worker := e.identity(t, testAccount, "worker")
	if _, err := e.svc.CreateGrant(e.ctx, &kms.CreateGrantInput{KeyId: ptr(md.KeyId), GranteePrincipal: ptr("arn:aws:iam::" + testAccount + ":user/worker"),
		Operations: []string{"Encrypt"}, Constraints: &kms.GrantConstraints{EncryptionContextEquals: map[string]string{}}}); err != nil {
		t.Fatal(err)
	}
	encrypt := func(ec map[string]string) error {
		_, err := e.svc.Encrypt(worker, &kms.EncryptInput{KeyId: ptr(md.Arn), Plaintext: []byte("x"), EncryptionContext: ec})
		return err
	}
	if err := encrypt(nil); err != nil {
		t.Fatalf("no encryption context: %v", err)
	}
	wantDenied(t, encrypt(map[string]string{"a": "b"}), "because no identity-based policy allows the kms:Encrypt action")
	list, err := e.svc.ListGrants(e.ctx, &kms.ListGrantsInput{KeyId: ptr(md.KeyId)})
	if err != nil {
		t.Fatal(err)
	}
	if c := list.Grants[0].Constraints; c == nil || c.EncryptionContextEquals == nil || len(c.EncryptionContextEquals) != 0 {
		t.Fatalf("listed constraints %+v, want an empty EncryptionContextEquals", c)
	}
}

// TestGrantConstraintsOnlyForSymmetricKeys: "Encryption context
// constraints are valid only in a grant for a symmetric encryption KMS
// key."
func TestGrantConstraintsOnlyForSymmetricKeys(t *testing.T) {
	e := newEnv(t, fakeDevice)
	e.identity(t, testAccount, "worker")
	out, err := e.svc.CreateKey(e.ctx, &kms.CreateKeyInput{KeySpec: ptr("ECC_NIST_P256"), KeyUsage: ptr("SIGN_VERIFY")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.CreateGrant(e.ctx, &kms.CreateGrantInput{KeyId: ptr(out.KeyMetadata.KeyId), GranteePrincipal: ptr("arn:aws:iam::" + testAccount + ":user/worker"),
		Operations: []string{"Sign"}, Constraints: &kms.GrantConstraints{EncryptionContextSubset: map[string]string{"a": "b"}}})
	wantCode(t, err, kms.CodeValidation)
}

// TestChildGrantLimitsMore: a child needs every one of its operations in
// the parent, an Equals child must contain the parent's Subset pairs, an
// empty Subset parent limits nothing, a named retry cannot swap no
// constraint for an empty one, and the limit holds when the parent is known
// only through its grant token (another kmsd made it, and this one's grant
// list is cached).
func TestChildGrantLimitsMore(t *testing.T) {
	e := newEnv(t, fakeDevice)
	md := e.createKey(t)
	worker := e.identity(t, testAccount, "worker")
	e.identity(t, testAccount, "other")
	workerARN := "arn:aws:iam::" + testAccount + ":user/worker"
	otherARN := "arn:aws:iam::" + testAccount + ":user/other"
	const denied = "because no identity-based policy allows the kms:CreateGrant action"
	_, err := e.svc.CreateGrant(e.ctx, &kms.CreateGrantInput{KeyId: ptr(md.KeyId), GranteePrincipal: ptr(workerARN),
		Operations: []string{"Decrypt", "CreateGrant"}, Constraints: &kms.GrantConstraints{EncryptionContextSubset: map[string]string{"Department": "IT"}}})
	if err != nil {
		t.Fatal(err)
	}
	child := func(ops []string, c *kms.GrantConstraints, tokens ...string) error {
		_, err := e.svc.CreateGrant(worker, &kms.CreateGrantInput{KeyId: ptr(md.Arn), GranteePrincipal: ptr(otherARN), Operations: ops, Constraints: c, GrantTokens: tokens})
		return err
	}
	it := map[string]string{"Department": "IT"}
	wantDenied(t, child([]string{"Decrypt", "Encrypt"}, &kms.GrantConstraints{EncryptionContextSubset: it}), denied)
	wantDenied(t, child([]string{"Decrypt"}, &kms.GrantConstraints{EncryptionContextEquals: map[string]string{"Purpose": "Test"}}), denied)
	if err := child([]string{"Decrypt"}, &kms.GrantConstraints{EncryptionContextEquals: map[string]string{"Department": "IT", "Purpose": "Test"}}); err != nil {
		t.Fatalf("an Equals child containing the parent's pairs: %v", err)
	}

	// An empty Subset parent limits nothing.
	md2 := e.createKey(t)
	if _, err := e.svc.CreateGrant(e.ctx, &kms.CreateGrantInput{KeyId: ptr(md2.KeyId), GranteePrincipal: ptr(workerARN),
		Operations: []string{"Decrypt", "CreateGrant"}, Constraints: &kms.GrantConstraints{EncryptionContextSubset: map[string]string{}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateGrant(worker, &kms.CreateGrantInput{KeyId: ptr(md2.Arn), GranteePrincipal: ptr(otherARN), Operations: []string{"Decrypt"}}); err != nil {
		t.Fatalf("a child of an empty-Subset parent: %v", err)
	}

	// A named retry with an empty Equals is not the unconstrained grant of
	// that name.
	first, err := e.svc.CreateGrant(e.ctx, &kms.CreateGrantInput{KeyId: ptr(md.KeyId), GranteePrincipal: ptr(otherARN), Name: ptr("n"), Operations: []string{"Encrypt"}})
	if err != nil {
		t.Fatal(err)
	}
	second, err := e.svc.CreateGrant(e.ctx, &kms.CreateGrantInput{KeyId: ptr(md.KeyId), GranteePrincipal: ptr(otherARN), Name: ptr("n"), Operations: []string{"Encrypt"},
		Constraints: &kms.GrantConstraints{EncryptionContextEquals: map[string]string{}}})
	if err != nil {
		t.Fatal(err)
	}
	if first.GrantId == second.GrantId {
		t.Fatal("a named grant with an empty Equals constraint was taken for the unconstrained one")
	}

	// The parent known only through its token: another service on the same
	// store makes it after this one cached the key's grants.
	md3 := e.createKey(t)
	wantDenied(t, child2(e, worker, md3, otherARN, []string{"Decrypt"}, nil), denied) // caches the (empty) grant list
	other := newEnvWith(t, e.device, e.store)
	tok, err := other.svc.CreateGrant(other.ctx, &kms.CreateGrantInput{KeyId: ptr(md3.KeyId), GranteePrincipal: ptr(workerARN),
		Operations: []string{"Decrypt", "CreateGrant"}, Constraints: &kms.GrantConstraints{EncryptionContextSubset: it}})
	if err != nil {
		t.Fatal(err)
	}
	wantDenied(t, child2(e, worker, md3, otherARN, []string{"Encrypt"}, &kms.GrantConstraints{EncryptionContextSubset: it}, tok.GrantToken), denied)
	wantDenied(t, child2(e, worker, md3, otherARN, []string{"Decrypt"}, nil, tok.GrantToken), denied)
	if err := child2(e, worker, md3, otherARN, []string{"Decrypt"}, &kms.GrantConstraints{EncryptionContextSubset: it}, tok.GrantToken); err != nil {
		t.Fatalf("a child within a parent known through its token: %v", err)
	}
}

func child2(e *env, as context.Context, md *kms.KeyMetadata, grantee string, ops []string, c *kms.GrantConstraints, tokens ...string) error {
	_, err := e.svc.CreateGrant(as, &kms.CreateGrantInput{KeyId: ptr(md.Arn), GranteePrincipal: ptr(grantee), Operations: ops, Constraints: c, GrantTokens: tokens})
	return err
}

// TestGrantConstraintOnEveryContextOperation: a constrained grant allows
// none of the operations that take an encryption context with the wrong
// context (GenerateDataKeyPair, ReEncrypt's two sides), and a constrained
// grant stored for a key that takes no context allows nothing.
func TestGrantConstraintOnEveryContextOperation(t *testing.T) {
	e := newEnv(t, fakeDevice)
	md := e.createKey(t)
	worker := e.identity(t, otherAccount, "worker")
	workerARN := "arn:aws:iam::" + otherAccount + ":user/worker"
	if _, err := e.svc.CreateGrant(e.ctx, &kms.CreateGrantInput{KeyId: ptr(md.KeyId), GranteePrincipal: ptr(workerARN),
		Operations:  []string{"GenerateDataKeyPair", "ReEncryptFrom", "ReEncryptTo", "Encrypt"},
		Constraints: &kms.GrantConstraints{EncryptionContextSubset: map[string]string{"job": "1"}}}); err != nil {
		t.Fatal(err)
	}
	right, wrong := map[string]string{"job": "1"}, map[string]string{"job": "2"}
	const noGrant = "because no resource-based policy allows the kms:"
	_, err := e.svc.GenerateDataKeyPair(worker, &kms.GenerateDataKeyPairInput{KeyId: ptr(md.Arn), KeyPairSpec: ptr("ECC_NIST_P256"), EncryptionContext: wrong})
	wantDeniedPrefix(t, err, noGrant+"GenerateDataKeyPair")
	if _, err := e.svc.GenerateDataKeyPair(worker, &kms.GenerateDataKeyPairInput{KeyId: ptr(md.Arn), KeyPairSpec: ptr("ECC_NIST_P256"), EncryptionContext: right}); err != nil {
		t.Fatalf("GenerateDataKeyPair with the right context: %v", err)
	}
	enc, err := e.svc.Encrypt(worker, &kms.EncryptInput{KeyId: ptr(md.Arn), Plaintext: []byte("x"), EncryptionContext: right})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.ReEncrypt(worker, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: right,
		DestinationKeyId: ptr(md.Arn), DestinationEncryptionContext: wrong})
	wantDeniedPrefix(t, err, noGrant+"ReEncryptTo")
	if _, err := e.svc.ReEncrypt(worker, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: right,
		DestinationKeyId: ptr(md.Arn), DestinationEncryptionContext: right}); err != nil {
		t.Fatalf("ReEncrypt with the right contexts: %v", err)
	}

	// A constraint stored on a grant for a signing key (CreateGrant now
	// refuses one) still allows nothing.
	out, err := e.svc.CreateKey(e.ctx, &kms.CreateKeyInput{KeySpec: ptr("ECC_NIST_P256"), KeyUsage: ptr("SIGN_VERIFY")})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateGrant(t.Context(), kms.GrantRecord{GrantID: strings.Repeat("ab", 32), KeyID: out.KeyMetadata.KeyId, IssuingAccount: testAccount,
		GranteePrincipal: workerARN, Operations: []string{"Sign"}, EncryptionContextSubset: map[string]string{"a": "b"}, CreatedAt: e.clock.Now()}, 100); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Sign(worker, &kms.SignInput{KeyId: ptr(out.KeyMetadata.Arn), Message: []byte("m"), SigningAlgorithm: ptr("ECDSA_SHA_256")})
	wantDeniedPrefix(t, err, noGrant+"Sign")
}

// wantDeniedPrefix fails unless err is AccessDeniedException whose message
// contains reason.
func wantDeniedPrefix(t *testing.T, err error, reason string) {
	t.Helper()
	kerr := wantCode(t, err, kms.CodeAccessDenied)
	if !strings.Contains(kerr.Message, reason) {
		t.Fatalf("AccessDenied message %q, want it to contain %q", kerr.Message, reason)
	}
}

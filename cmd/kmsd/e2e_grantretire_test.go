package main

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// TestE2ERetiringPrincipalAccount: through the AWS SDK, a grant whose
// retiring principal is another account can be retired by that account's
// users only when their identity policies allow kms:RetireGrant (AWS KMS
// developer guide, "Retiring and revoking grants"); an identity policy that
// denies it wins even for the retiring principal named in the grant.
func TestE2ERetiringPrincipalAccount(t *testing.T) {
	const other = "210987654321"
	sc := newGrantScene(t, other)
	srv, admin, ac, keyARN, account, ctx := sc.srv, sc.admin, sc.ac, sc.keyARN, sc.account, t.Context()
	var err error
	plain, plainARN := e2eUser(t, srv, admin, other, "plain", "")
	delegate, _ := e2eUser(t, srv, admin, other, "delegate", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:RetireGrant","Resource":"*"}]}`)
	denied, deniedARN := e2eUser(t, srv, admin, account, "denied", `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"kms:RetireGrant","Resource":"*"}]}`)

	grant := func(retiring string) *awskms.CreateGrantOutput {
		t.Helper()
		out, err := ac.CreateGrant(ctx, &awskms.CreateGrantInput{
			KeyId: aws.String(keyARN), GranteePrincipal: aws.String("arn:aws:iam::" + account + ":user/denied"),
			RetiringPrincipal: aws.String(retiring), Operations: []types.GrantOperation{types.GrantOperationEncrypt},
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	listed := func(id string) bool {
		t.Helper()
		out, err := ac.ListGrants(ctx, &awskms.ListGrantsInput{KeyId: aws.String(keyARN)})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range out.Grants {
			if aws.ToString(g.GrantId) == id {
				return true
			}
		}
		return false
	}

	g := grant("arn:aws:iam::" + other + ":root")
	_, err = plain.RetireGrant(ctx, &awskms.RetireGrantInput{KeyId: aws.String(keyARN), GrantId: g.GrantId})
	wantAccessDenied(t, err, plainARN, "RetireGrant", "because no identity-based policy allows the kms:RetireGrant action")
	if !listed(aws.ToString(g.GrantId)) {
		t.Fatal("a refused RetireGrant deleted the grant")
	}
	if _, err := delegate.RetireGrant(ctx, &awskms.RetireGrantInput{GrantToken: g.GrantToken}); err != nil {
		t.Fatalf("RetireGrant by a user of the retiring account allowed kms:RetireGrant: %v", err)
	}
	if listed(aws.ToString(g.GrantId)) {
		t.Fatal("the retired grant is still listed")
	}

	g = grant(deniedARN)
	_, err = denied.RetireGrant(ctx, &awskms.RetireGrantInput{KeyId: aws.String(keyARN), GrantId: g.GrantId})
	wantAccessDenied(t, err, deniedARN, "RetireGrant", "with an explicit deny in an identity-based policy")
	if !listed(aws.ToString(g.GrantId)) {
		t.Fatal("a denied RetireGrant deleted the grant")
	}
}

// TestE2EAccountGrantee: through the AWS SDK, a grant to another account
// (its root ARN) lets that account's users encrypt only when their
// identity policies allow kms:Encrypt, as an account named in a key policy
// delegates to IAM; before, every principal of the account could.
func TestE2EAccountGrantee(t *testing.T) {
	const other = "210987654321"
	sc := newGrantScene(t, other)
	srv, admin, ac, keyARN, ctx := sc.srv, sc.admin, sc.ac, sc.keyARN, t.Context()
	plain, plainARN := e2eUser(t, srv, admin, other, "plain", "")
	delegate, _ := e2eUser(t, srv, admin, other, "delegate", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]}`)
	if _, err := ac.CreateGrant(ctx, &awskms.CreateGrantInput{
		KeyId: aws.String(keyARN), GranteePrincipal: aws.String("arn:aws:iam::" + other + ":root"),
		Operations: []types.GrantOperation{types.GrantOperationEncrypt},
	}); err != nil {
		t.Fatal(err)
	}
	in := &awskms.EncryptInput{KeyId: aws.String(keyARN), Plaintext: []byte("x")}
	if _, err := delegate.Encrypt(ctx, in); err != nil {
		t.Fatalf("Encrypt by a user of the grantee account allowed kms:Encrypt: %v", err)
	}
	_, err := plain.Encrypt(ctx, in)
	wantAccessDenied(t, err, plainARN, "Encrypt", "because no identity-based policy allows the kms:Encrypt action")
}

// TestE2EChildGrantLimits: through the AWS SDK, a grantee holding
// CreateGrant only through a grant may create grants with a subset of its
// operations and constraints at least as strict, and no others.
func TestE2EChildGrantLimits(t *testing.T) {
	sc := newGrantScene(t, "")
	srv, admin, ac, keyARN, account, ctx := sc.srv, sc.admin, sc.ac, sc.keyARN, sc.account, t.Context()
	worker, workerARN := e2eUser(t, srv, admin, account, "worker", "")
	_, otherARN := e2eUser(t, srv, admin, account, "other", "")
	if _, err := ac.CreateGrant(ctx, &awskms.CreateGrantInput{KeyId: aws.String(keyARN), GranteePrincipal: aws.String(workerARN),
		Operations:  []types.GrantOperation{types.GrantOperationDecrypt, types.GrantOperationCreateGrant},
		Constraints: &types.GrantConstraints{EncryptionContextSubset: map[string]string{"Department": "IT"}},
	}); err != nil {
		t.Fatal(err)
	}
	child := func(op types.GrantOperation, c *types.GrantConstraints) error {
		_, err := worker.CreateGrant(ctx, &awskms.CreateGrantInput{KeyId: aws.String(keyARN), GranteePrincipal: aws.String(otherARN),
			Operations: []types.GrantOperation{op}, Constraints: c})
		return err
	}
	if err := child(types.GrantOperationDecrypt, &types.GrantConstraints{EncryptionContextEquals: map[string]string{"Department": "IT"}}); err != nil {
		t.Fatalf("a child grant within the parent: %v", err)
	}
	const reason = "because no identity-based policy allows the kms:CreateGrant action"
	wantAccessDenied(t, child(types.GrantOperationEncrypt, &types.GrantConstraints{EncryptionContextSubset: map[string]string{"Department": "IT"}}),
		workerARN, "CreateGrant", reason)
	wantAccessDenied(t, child(types.GrantOperationDecrypt, nil), workerARN, "CreateGrant", reason)
}

// grantScene is what the grant tests start from: a kmsd, its bootstrap
// admin (credentials and KMS client), one key of the admin's account, and,
// if partner is set, a second account of that id.
type grantScene struct {
	srv     *server
	admin   aws.Credentials
	ac      *awskms.Client
	keyARN  string
	account string
}

func newGrantScene(t *testing.T, partner string) *grantScene {
	t.Helper()
	st := newE2EState(t)
	srv := startKMSD(t)
	admin, ac := adminClient(t, st, srv.addr)
	key, err := ac.CreateKey(t.Context(), &awskms.CreateKeyInput{Description: aws.String("grants")})
	if err != nil {
		t.Fatal(err)
	}
	if partner != "" {
		mustAdmin(t, srv.addr, admin, "CreateAccount", map[string]any{"AccountId": partner, "Name": "partner"}, nil)
	}
	return &grantScene{srv: srv, admin: admin, ac: ac, keyARN: aws.ToString(key.KeyMetadata.Arn), account: aws.ToString(key.KeyMetadata.AWSAccountId)}
}

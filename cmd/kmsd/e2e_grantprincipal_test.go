package main

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// TestE2ECreateGrantUnknownPrincipal: through the AWS SDK, a grant to a
// principal that does not exist (a typo) is refused with the modeled
// *types.InvalidArnException and AWS's message, for a DryRun too, and
// stores nothing; once the user exists the same request succeeds.
func TestE2ECreateGrantUnknownPrincipal(t *testing.T) {
	st := newE2EState(t)
	srv := startKMSD(t)
	ctx := t.Context()
	admin, ac := adminClient(t, st, srv.addr)

	key, err := ac.CreateKey(ctx, &awskms.CreateKeyInput{Description: aws.String("grant principal")})
	if err != nil {
		t.Fatal(err)
	}
	account := aws.ToString(key.KeyMetadata.AWSAccountId)
	typo := "arn:aws:iam::" + account + ":user/bbo"
	in := func(dryRun bool) *awskms.CreateGrantInput {
		return &awskms.CreateGrantInput{
			KeyId: key.KeyMetadata.KeyId, GranteePrincipal: aws.String(typo),
			Operations: []types.GrantOperation{types.GrantOperationEncrypt}, DryRun: aws.Bool(dryRun),
		}
	}
	for _, dryRun := range []bool{true, false} {
		_, err := ac.CreateGrant(ctx, in(dryRun))
		var invalid *types.InvalidArnException
		if !errors.As(err, &invalid) {
			t.Fatalf("CreateGrant to %s (dry run %v): %v, want InvalidArnException", typo, dryRun, err)
		}
		if got, want := aws.ToString(invalid.Message), "ARN does not refer to a valid principal: "+typo; got != want {
			t.Fatalf("message %q, want %q", got, want)
		}
	}
	grants, err := ac.ListGrants(ctx, &awskms.ListGrantsInput{KeyId: key.KeyMetadata.KeyId})
	if err != nil || len(grants.Grants) != 0 {
		t.Fatalf("ListGrants after refused CreateGrant: %v %+v", err, grants)
	}

	mustAdmin(t, srv.addr, admin, "CreateUser", map[string]any{"AccountId": account, "UserName": "bbo"}, nil)
	if _, err := ac.CreateGrant(ctx, in(false)); err != nil {
		t.Fatalf("CreateGrant once the user exists: %v", err)
	}
}

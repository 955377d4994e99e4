package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// e2eUser creates a user with an access key (and optional identity policy)
// through the admin API and returns a KMS client acting as it.
func e2eUser(t *testing.T, srv *server, admin aws.Credentials, account, name, identityPolicy string) (*awskms.Client, string) {
	t.Helper()
	mustAdmin(t, srv.addr, admin, "CreateUser", map[string]any{"AccountId": account, "UserName": name}, nil)
	arn := "arn:aws:iam::" + account + ":user/" + name
	if identityPolicy != "" {
		mustAdmin(t, srv.addr, admin, "AttachIdentityPolicy", map[string]any{"PrincipalArn": arn, "PolicyName": "p", "PolicyDocument": identityPolicy}, nil)
	}
	var key struct {
		AccessKey struct{ AccessKeyId, SecretAccessKey string }
	}
	mustAdmin(t, srv.addr, admin, "CreateAccessKey", map[string]any{"AccountId": account, "UserName": name}, &key)
	creds := aws.Credentials{AccessKeyID: key.AccessKey.AccessKeyId, SecretAccessKey: key.AccessKey.SecretAccessKey}
	return staticKMSClient(srv.addr, credentials.StaticCredentialsProvider{Value: creds}), arn
}

// wantAccessDenied fails unless err is the SDK's AccessDeniedException with
// AWS's message shape for this principal, action and reason.
func wantAccessDenied(t *testing.T, err error, principal, action, reason string) {
	t.Helper()
	// AccessDeniedException is not in the KMS model: the SDK surfaces it
	// as a generic API error with its code.
	code, msg := apiCode(err)
	if code != "AccessDeniedException" {
		t.Fatalf("%s: error = %v, want AccessDeniedException", action, err)
	}
	if !strings.HasPrefix(msg, "User: "+principal+" is not authorized to perform: kms:"+action+" on resource: ") || !strings.HasSuffix(msg, reason) {
		t.Fatalf("%s: message %q, want principal %s and reason %q", action, msg, principal, reason)
	}
}

// TestE2EAuthorization drives key policies, identity policies, grants and
// cross-account use through the AWS SDK with real users of two accounts.
func TestE2EAuthorization(t *testing.T) {
	st := newE2EState(t)
	t.Setenv("KMSD_LOG_LEVEL", "info") // denials are logged at Info
	srv := startKMSD(t)
	ctx := t.Context()
	admin, ac := adminClient(t, st, srv.addr)

	key, err := ac.CreateKey(ctx, &awskms.CreateKeyInput{Description: aws.String("shared")})
	if err != nil {
		t.Fatal(err)
	}
	keyARN := aws.ToString(key.KeyMetadata.Arn)
	account := aws.ToString(key.KeyMetadata.AWSAccountId)
	const other = "210987654321"
	mustAdmin(t, srv.addr, admin, "CreateAccount", map[string]any{"AccountId": other, "Name": "partner"}, nil)

	app, appARN := e2eUser(t, srv, admin, account, "app", "")
	partner, partnerARN := e2eUser(t, srv, admin, other, "partner", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}]}`)
	stranger, strangerARN := e2eUser(t, srv, admin, other, "stranger", "")

	// The default key policy delegates to the account; app has no identity policy.
	pol, err := ac.GetKeyPolicy(ctx, &awskms.GetKeyPolicyInput{KeyId: key.KeyMetadata.KeyId})
	if err != nil || !strings.Contains(aws.ToString(pol.Policy), `"Sid" : "Enable IAM User Permissions"`) || aws.ToString(pol.PolicyName) != "default" {
		t.Fatalf("default policy: %v %v", err, pol)
	}
	_, err = app.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(keyARN), Plaintext: []byte("x")})
	wantAccessDenied(t, err, appARN, "Encrypt", "because no identity-based policy allows the kms:Encrypt action")

	// A policy that lets app Encrypt but not Decrypt, denies any other
	// tenant, and lets the partner account Encrypt and Decrypt.
	doc := `{"Version":"2012-10-17","Statement":[
	  {"Sid":"Admins","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"kms:*","Resource":"*"},
	  {"Sid":"AppEncrypt","Effect":"Allow","Principal":{"AWS":"` + appARN + `"},"Action":"kms:Encrypt","Resource":"*"},
	  {"Sid":"BlueTenantOnly","Effect":"Deny","Principal":{"AWS":"` + appARN + `"},"Action":"kms:Encrypt","Resource":"*",
	   "Condition":{"StringNotEquals":{"kms:EncryptionContext:tenant":"blue"}}},
	  {"Sid":"Partner","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + other + `:root"},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}]}`
	if _, err := ac.PutKeyPolicy(ctx, &awskms.PutKeyPolicyInput{KeyId: key.KeyMetadata.KeyId, Policy: aws.String(doc)}); err != nil {
		t.Fatal(err)
	}
	blue := map[string]string{"tenant": "blue"}
	enc, err := app.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(keyARN), Plaintext: []byte("secret"), EncryptionContext: blue})
	if err != nil {
		t.Fatalf("app Encrypt allowed by the key policy: %v", err)
	}
	_, err = app.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: blue})
	wantAccessDenied(t, err, appARN, "Decrypt", "because no identity-based policy allows the kms:Decrypt action")
	_, err = app.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(keyARN), Plaintext: []byte("x"), EncryptionContext: map[string]string{"tenant": "red"}})
	wantAccessDenied(t, err, appARN, "Encrypt", "with an explicit deny in a resource-based policy")

	// Cross-account: both the key policy and the caller's identity policy.
	penc, err := partner.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(keyARN), Plaintext: []byte("across")})
	if err != nil {
		t.Fatalf("cross-account Encrypt: %v", err)
	}
	pdec, err := partner.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: penc.CiphertextBlob})
	if err != nil || string(pdec.Plaintext) != "across" || aws.ToString(pdec.KeyId) != keyARN {
		t.Fatalf("cross-account Decrypt: %v", err)
	}
	_, err = stranger.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(keyARN), Plaintext: []byte("x")})
	wantAccessDenied(t, err, strangerARN, "Encrypt", "because no identity-based policy allows the kms:Encrypt action")
	_, err = partner.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: aws.String(keyARN), KeySpec: types.DataKeySpecAes256})
	wantAccessDenied(t, err, partnerARN, "GenerateDataKey", "because no resource-based policy allows the kms:GenerateDataKey action")

	// The lockout safety check.
	lockout := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + appARN + `"},"Action":"kms:Encrypt","Resource":"*"}]}`
	_, err = ac.PutKeyPolicy(ctx, &awskms.PutKeyPolicyInput{KeyId: key.KeyMetadata.KeyId, Policy: aws.String(lockout)})
	var mpd *types.MalformedPolicyDocumentException
	if !errors.As(err, &mpd) || aws.ToString(mpd.Message) != "The new key policy will not allow you to update the key policy in the future." {
		t.Fatalf("lockout check: %v", err)
	}

	// A grant: usable through its token at once, then by itself.
	grant, err := ac.CreateGrant(ctx, &awskms.CreateGrantInput{
		KeyId: key.KeyMetadata.KeyId, GranteePrincipal: aws.String(appARN), RetiringPrincipal: aws.String(appARN),
		Operations:  []types.GrantOperation{types.GrantOperationDecrypt},
		Constraints: &types.GrantConstraints{EncryptionContextSubset: blue},
	})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := app.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: blue, GrantTokens: []string{aws.ToString(grant.GrantToken)}})
	if err != nil || string(dec.Plaintext) != "secret" {
		t.Fatalf("Decrypt with the grant token: %v", err)
	}
	grants, err := ac.ListGrants(ctx, &awskms.ListGrantsInput{KeyId: key.KeyMetadata.KeyId})
	if err != nil || len(grants.Grants) != 1 || aws.ToString(grants.Grants[0].GrantId) != aws.ToString(grant.GrantId) ||
		aws.ToString(grants.Grants[0].KeyId) != keyARN || aws.ToString(grants.Grants[0].GranteePrincipal) != appARN {
		t.Fatalf("ListGrants: %v %+v", err, grants)
	}
	if _, err := app.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: blue}); err != nil {
		t.Fatalf("Decrypt through the listed grant: %v", err)
	}
	// Retire (by the retiring principal) and revoke.
	if _, err := app.RetireGrant(ctx, &awskms.RetireGrantInput{KeyId: aws.String(keyARN), GrantId: grant.GrantId}); err != nil {
		t.Fatalf("RetireGrant: %v", err)
	}
	_, err = app.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: blue})
	wantAccessDenied(t, err, appARN, "Decrypt", "because no identity-based policy allows the kms:Decrypt action")
	grant2, err := ac.CreateGrant(ctx, &awskms.CreateGrantInput{
		KeyId: key.KeyMetadata.KeyId, GranteePrincipal: aws.String(appARN), Operations: []types.GrantOperation{types.GrantOperationDecrypt},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: blue}); err != nil {
		t.Fatalf("Decrypt through the second grant: %v", err)
	}
	if _, err := ac.RevokeGrant(ctx, &awskms.RevokeGrantInput{KeyId: key.KeyMetadata.KeyId, GrantId: grant2.GrantId}); err != nil {
		t.Fatal(err)
	}
	_, err = app.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: blue})
	wantAccessDenied(t, err, appARN, "Decrypt", "because no identity-based policy allows the kms:Decrypt action")
	pols, err := ac.ListKeyPolicies(ctx, &awskms.ListKeyPoliciesInput{KeyId: key.KeyMetadata.KeyId})
	if err != nil || len(pols.PolicyNames) != 1 || pols.PolicyNames[0] != "default" {
		t.Fatalf("ListKeyPolicies: %v %+v", err, pols)
	}

	// Every denial is in the log with the statement that decided it.
	logs := srv.stderr.String()
	if !strings.Contains(logs, "access denied") || !strings.Contains(logs, "sid=BlueTenantOnly") {
		t.Fatalf("denials not logged with their statement:\n%s", logs)
	}
}

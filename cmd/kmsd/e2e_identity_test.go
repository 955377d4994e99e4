package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// testClock is the service clock the identity test controls (clock.go):
// wall time plus an offset.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// startKMSDWithClock is startKMSD with the service clock replaced.
func startKMSDWithClock(t *testing.T, clock *testClock) *server {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	ctx, cancel := context.WithCancel(context.WithValue(t.Context(), clockKey{}, clock.now))
	s := &server{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		s.done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-addr-file", addrFile}, s.stdout, s.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(addrFile); err == nil {
			s.addr = strings.TrimSpace(string(b))
			return s
		}
		select {
		case err := <-s.done:
			t.Fatalf("kmsd exited before serving: %v\nstderr:\n%s", err, s.stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("kmsd did not write its addr-file\nstderr:\n%s", s.stderr)
		}
	}
}

// adminAPIError is an error answer of the admin API.
type adminAPIError struct {
	Status  int
	Type    string `json:"__type"`
	Message string `json:"message"`
}

func (e *adminAPIError) Error() string { return e.Type + ": " + e.Message }

// adminCall signs a KmsAdmin.<op> JSON 1.1 request with SigV4 (service
// kms), as kmsctl does, and decodes the answer into out.
func adminCall(t *testing.T, addr string, creds aws.Credentials, op string, in, out any) error {
	t.Helper()
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+addr+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "KmsAdmin."+op)
	sum := sha256Hex(body)
	if err := v4.NewSigner().SignHTTP(t.Context(), creds, req, sum, "kms", e2eRegion, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &adminAPIError{Status: resp.StatusCode}
		if err := json.Unmarshal(data, e); err != nil {
			t.Fatalf("%s: status %d, body %q", op, resp.StatusCode, data)
		}
		return e
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s: %v in %q", op, err, data)
		}
	}
	return nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func mustAdmin(t *testing.T, addr string, creds aws.Credentials, op string, in, out any) {
	t.Helper()
	if err := adminCall(t, addr, creds, op, in, out); err != nil {
		t.Fatalf("%s: %v", op, err)
	}
}

func staticKMSClient(addr string, creds aws.CredentialsProvider) *awskms.Client {
	return awskms.New(awskms.Options{
		Region:           e2eRegion,
		BaseEndpoint:     aws.String("http://" + addr),
		Credentials:      creds,
		RetryMaxAttempts: 1,
	})
}

func stsClient(addr string, creds aws.CredentialsProvider) *sts.Client {
	return sts.New(sts.Options{
		Region:           e2eRegion,
		BaseEndpoint:     aws.String("http://" + addr),
		Credentials:      creds,
		RetryMaxAttempts: 1,
	})
}

func apiCode(err error) (code, message string) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode(), ae.ErrorMessage()
	}
	return "", ""
}

// TestE2EIdentities drives accounts, users, access keys, roles and
// AssumeRole through the admin API, the official SDK's KMS and STS clients
// and stscreds.
func TestE2EIdentities(t *testing.T) {
	st := newE2EState(t)
	clock := &testClock{}
	srv := startKMSDWithClock(t, clock)
	ctx := t.Context()
	adminID, adminSecret := adminCredentials(t, st.creds)
	admin := aws.Credentials{AccessKeyID: adminID, SecretAccessKey: adminSecret}

	// A second account with a user, an identity policy and an access key.
	const acct2 = "210987654321"
	var acc struct {
		Account struct{ AccountId, Arn string }
	}
	mustAdmin(t, srv.addr, admin, "CreateAccount", map[string]any{"AccountId": acct2, "Name": "team"}, &acc)
	if acc.Account.AccountId != acct2 || acc.Account.Arn != "arn:aws:iam::"+acct2+":root" {
		t.Fatalf("CreateAccount = %+v", acc)
	}
	var user struct{ User struct{ UserId, Arn string } }
	mustAdmin(t, srv.addr, admin, "CreateUser", map[string]any{"AccountId": acct2, "UserName": "alice"}, &user)
	aliceARN := "arn:aws:iam::" + acct2 + ":user/alice"
	if user.User.Arn != aliceARN || !strings.HasPrefix(user.User.UserId, "AIDA") || len(user.User.UserId) != 21 {
		t.Fatalf("CreateUser = %+v", user)
	}
	kmsAll := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`
	mustAdmin(t, srv.addr, admin, "AttachIdentityPolicy", map[string]any{"PrincipalArn": aliceARN, "PolicyName": "kms-all", "PolicyDocument": kmsAll}, nil)
	err := adminCall(t, srv.addr, admin, "AttachIdentityPolicy", map[string]any{"PrincipalArn": aliceARN, "PolicyName": "bad", "PolicyDocument": `{"Statement":`}, nil)
	if ae, ok := err.(*adminAPIError); !ok || ae.Type != "MalformedPolicyDocumentException" || ae.Status != 400 {
		t.Errorf("malformed identity policy: %v", err)
	}
	var key struct {
		AccessKey struct{ AccessKeyId, SecretAccessKey, Status string }
	}
	mustAdmin(t, srv.addr, admin, "CreateAccessKey", map[string]any{"AccountId": acct2, "UserName": "alice"}, &key)
	if !strings.HasPrefix(key.AccessKey.AccessKeyId, "AKIA") || len(key.AccessKey.SecretAccessKey) != 40 || key.AccessKey.Status != "Active" {
		t.Fatalf("CreateAccessKey = %+v", key)
	}
	alice := aws.Credentials{AccessKeyID: key.AccessKey.AccessKeyId, SecretAccessKey: key.AccessKey.SecretAccessKey}

	// The secrets are nowhere on disk in plain text.
	files, _ := filepath.Glob(st.db + "*")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{adminSecret, alice.SecretAccessKey} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s contains a secret access key in plain text", filepath.Base(f))
			}
		}
	}
	// Listing shows the key without its secret.
	var keys struct{ AccessKeyMetadata []map[string]any }
	mustAdmin(t, srv.addr, admin, "ListAccessKeys", map[string]any{"AccountId": acct2, "UserName": "alice"}, &keys)
	if len(keys.AccessKeyMetadata) != 1 || keys.AccessKeyMetadata[0]["SecretAccessKey"] != nil {
		t.Errorf("ListAccessKeys = %+v", keys)
	}

	// Alice's key works for KMS in her own account.
	ac := staticKMSClient(srv.addr, credentials.StaticCredentialsProvider{Value: alice})
	ck, err := ac.CreateKey(ctx, &awskms.CreateKeyInput{Description: aws.String("alice's")})
	if err != nil {
		t.Fatalf("CreateKey as alice: %v", err)
	}
	if !strings.Contains(*ck.KeyMetadata.Arn, ":"+acct2+":key/") || *ck.KeyMetadata.AWSAccountId != acct2 {
		t.Fatalf("alice's key is not in her account: %s", *ck.KeyMetadata.Arn)
	}
	enc, err := ac.Encrypt(ctx, &awskms.EncryptInput{KeyId: ck.KeyMetadata.KeyId, Plaintext: []byte("hello")})
	if err != nil {
		t.Fatalf("Encrypt as alice: %v", err)
	}
	if dec, err := ac.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}); err != nil || string(dec.Plaintext) != "hello" {
		t.Fatalf("Decrypt as alice = %v", err)
	}

	// Alice is not an admin: AWS's AccessDeniedException message.
	err = adminCall(t, srv.addr, alice, "ListUsers", map[string]any{}, nil)
	want := "User: " + aliceARN + " is not authorized to perform: kmsadmin:ListUsers on resource: arn:aws:iam::" + acct2 + ":root because no identity-based policy allows the kmsadmin:ListUsers action"
	if ae, ok := err.(*adminAPIError); !ok || ae.Type != "AccessDeniedException" || ae.Message != want || ae.Status != 400 {
		t.Errorf("ListUsers as alice = %v\nwant AccessDeniedException: %s", err, want)
	}
	err = adminCall(t, srv.addr, alice, "CreateAccount", map[string]any{}, nil)
	if ae, ok := err.(*adminAPIError); !ok || ae.Type != "AccessDeniedException" {
		t.Errorf("CreateAccount as alice = %v", err)
	}

	// An Inactive key is refused like an unknown one, at once.
	mustAdmin(t, srv.addr, admin, "UpdateAccessKey", map[string]any{"AccessKeyId": alice.AccessKeyID, "Status": "Inactive"}, nil)
	_, err = ac.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: ck.KeyMetadata.KeyId})
	expectErr[*smithy.GenericAPIError](t, err, "UnrecognizedClientException", msgInvalidToken)
	mustAdmin(t, srv.addr, admin, "UpdateAccessKey", map[string]any{"AccessKeyId": alice.AccessKeyID, "Status": "Active"}, nil)
	if _, err := ac.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: ck.KeyMetadata.KeyId}); err != nil {
		t.Fatalf("DescribeKey after reactivation: %v", err)
	}

	// A role alice may assume, with a policy for KMS.
	roleARN := "arn:aws:iam::" + acct2 + ":role/reader"
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + aliceARN + `"},"Action":"sts:AssumeRole"}]}`
	var role struct{ Role struct{ RoleId, Arn string } }
	mustAdmin(t, srv.addr, admin, "CreateRole", map[string]any{"AccountId": acct2, "RoleName": "reader", "AssumeRolePolicyDocument": trust}, &role)
	if role.Role.Arn != roleARN || !strings.HasPrefix(role.Role.RoleId, "AROA") {
		t.Fatalf("CreateRole = %+v", role)
	}
	mustAdmin(t, srv.addr, admin, "AttachIdentityPolicy", map[string]any{"PrincipalArn": roleARN, "PolicyName": "kms-all", "PolicyDocument": kmsAll}, nil)

	// AssumeRole through the SDK's STS client; the credentials sign KMS calls.
	aliceSTS := stsClient(srv.addr, credentials.StaticCredentialsProvider{Value: alice})
	out, err := aliceSTS.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("s1"), DurationSeconds: aws.Int32(900)})
	if err != nil {
		t.Fatalf("AssumeRole: %v", err)
	}
	c := out.Credentials
	if !strings.HasPrefix(*c.AccessKeyId, "ASIA") || *c.SessionToken == "" || !within(*c.Expiration, time.Now().Add(900*time.Second), 5*time.Second) {
		t.Fatalf("AssumeRole credentials: %s, expiry %v", *c.AccessKeyId, c.Expiration)
	}
	sessionARN := "arn:aws:sts::" + acct2 + ":assumed-role/reader/s1"
	if *out.AssumedRoleUser.Arn != sessionARN || *out.AssumedRoleUser.AssumedRoleId != role.Role.RoleId+":s1" {
		t.Fatalf("AssumedRoleUser = %s %s", *out.AssumedRoleUser.Arn, *out.AssumedRoleUser.AssumedRoleId)
	}
	temp := aws.Credentials{AccessKeyID: *c.AccessKeyId, SecretAccessKey: *c.SecretAccessKey, SessionToken: *c.SessionToken}
	tc := staticKMSClient(srv.addr, credentials.StaticCredentialsProvider{Value: temp})
	if _, err := tc.Encrypt(ctx, &awskms.EncryptInput{KeyId: ck.KeyMetadata.Arn, Plaintext: []byte("x")}); err != nil {
		t.Fatalf("Encrypt with temporary credentials: %v", err)
	}
	id, err := stsClient(srv.addr, credentials.StaticCredentialsProvider{Value: temp}).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || *id.Arn != sessionARN || *id.Account != acct2 || *id.UserId != role.Role.RoleId+":s1" {
		t.Fatalf("GetCallerIdentity = %+v, %v", id, err)
	}
	// Without the token, or with another one, the key is not recognised.
	noToken := temp
	noToken.SessionToken = ""
	_, err = staticKMSClient(srv.addr, credentials.StaticCredentialsProvider{Value: noToken}).ListKeys(ctx, &awskms.ListKeysInput{})
	expectErr[*smithy.GenericAPIError](t, err, "UnrecognizedClientException", msgInvalidToken)
	wrongToken := temp
	wrongToken.SessionToken = temp.SessionToken[:len(temp.SessionToken)-4] + "AAAA"
	_, err = staticKMSClient(srv.addr, credentials.StaticCredentialsProvider{Value: wrongToken}).ListKeys(ctx, &awskms.ListKeysInput{})
	expectErr[*smithy.GenericAPIError](t, err, "UnrecognizedClientException", msgInvalidToken)

	// The SDK's credential provider (stscreds) against kmsd.
	provider := aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(aliceSTS, roleARN, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = "provider"
	}))
	if _, err := staticKMSClient(srv.addr, provider).DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: ck.KeyMetadata.Arn}); err != nil {
		t.Fatalf("DescribeKey through stscreds: %v", err)
	}

	// STS errors in STS's shape: a caller the trust policy does not name,
	// a role that does not exist, a duration below the minimum.
	adminSTS := stsClient(srv.addr, credentials.StaticCredentialsProvider{Value: admin})
	_, err = adminSTS.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("s2")})
	if code, msg := apiCode(err); code != "AccessDenied" || !strings.Contains(msg, "is not authorized to perform: sts:AssumeRole on resource: "+roleARN) {
		t.Errorf("AssumeRole by an untrusted caller = %v", err)
	}
	_, err = aliceSTS.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN + "x"), RoleSessionName: aws.String("s2")})
	if code, _ := apiCode(err); code != "AccessDenied" {
		t.Errorf("AssumeRole of an absent role = %v", err)
	}
	_, err = aliceSTS.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("s2"), DurationSeconds: aws.Int32(100)})
	if code, _ := apiCode(err); code != "ValidationError" {
		t.Errorf("AssumeRole for 100 s = %v", err)
	}
	// Session policies, tags and the like are refused, never ignored (a
	// session asked to be narrowed would get the role's full access):
	// through the SDK's own spelling of each, whatever the member index.
	for name, in := range map[string]*sts.AssumeRoleInput{
		"PolicyArns": {PolicyArns: []ststypes.PolicyDescriptorType{{Arn: aws.String("arn:aws:iam::aws:policy/ReadOnlyAccess")}}},
		"Policy":     {Policy: aws.String(`{"Version":"2012-10-17","Statement":[]}`)},
		"Tags":       {Tags: []ststypes.Tag{{Key: aws.String("a"), Value: aws.String("b")}}},
		"ExternalId": {ExternalId: aws.String("x")},
	} {
		in.RoleArn, in.RoleSessionName = aws.String(roleARN), aws.String("narrowed")
		_, err := aliceSTS.AssumeRole(ctx, in)
		if code, msg := apiCode(err); code != "ValidationError" || !strings.Contains(msg, "The parameter "+name+" is not supported") {
			t.Errorf("AssumeRole with %s = %v, want it refused", name, err)
		}
	}
	// Also in the URL's query string, which the query protocol accepts and
	// SigV4 signs (added before signing).
	_, err = aliceSTS.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("narrowed")},
		func(o *sts.Options) {
			o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
				return stack.Build.Add(middleware.BuildMiddlewareFunc("queryPolicyArns", func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
					req := in.Request.(*smithyhttp.Request)
					q := req.URL.Query()
					q.Set("PolicyArns.member.1.arn", "arn:aws:iam::aws:policy/ReadOnlyAccess")
					req.URL.RawQuery = q.Encode()
					return next.HandleBuild(ctx, in)
				}), middleware.After)
			})
		})
	if code, msg := apiCode(err); code != "ValidationError" || !strings.Contains(msg, "The parameter PolicyArns is not supported") {
		t.Errorf("AssumeRole with PolicyArns in the query string = %v, want it refused", err)
	}

	// Expiry: with the service clock two hours behind, a 15-minute session
	// has expired by the wall clock the moment it is issued.
	clock.offset.Store(int64(-2 * time.Hour))
	out, err = aliceSTS.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("old"), DurationSeconds: aws.Int32(900)})
	clock.offset.Store(0)
	if err != nil {
		t.Fatalf("AssumeRole (behind): %v", err)
	}
	c = out.Credentials
	expired := aws.Credentials{AccessKeyID: *c.AccessKeyId, SecretAccessKey: *c.SecretAccessKey, SessionToken: *c.SessionToken}
	_, err = staticKMSClient(srv.addr, credentials.StaticCredentialsProvider{Value: expired}).ListKeys(ctx, &awskms.ListKeysInput{})
	expectErr[*smithy.GenericAPIError](t, err, "ExpiredTokenException", "The security token included in the request is expired")

	// As in IAM, a user with an access key or a policy is not deleted;
	// deleting the key ends it at once, and then the user can go.
	err = adminCall(t, srv.addr, admin, "DeleteUser", map[string]any{"AccountId": acct2, "UserName": "alice"}, nil)
	if ae, ok := err.(*adminAPIError); !ok || ae.Type != "DeleteConflictException" || ae.Message != "Cannot delete entity, must delete access keys first." || ae.Status != 400 {
		t.Errorf("DeleteUser of alice with a key = %v, want DeleteConflictException", err)
	}
	if _, err := ac.ListKeys(ctx, &awskms.ListKeysInput{}); err != nil {
		t.Fatalf("a refused DeleteUser ended alice's key: %v", err)
	}
	mustAdmin(t, srv.addr, admin, "DeleteAccessKey", map[string]any{"AccessKeyId": alice.AccessKeyID}, nil)
	_, err = ac.ListKeys(ctx, &awskms.ListKeysInput{})
	expectErr[*smithy.GenericAPIError](t, err, "UnrecognizedClientException", msgInvalidToken)
	mustAdmin(t, srv.addr, admin, "DetachIdentityPolicy", map[string]any{"PrincipalArn": aliceARN, "PolicyName": "kms-all"}, nil)
	mustAdmin(t, srv.addr, admin, "DeleteUser", map[string]any{"AccountId": acct2, "UserName": "alice"}, nil)
	for _, secret := range []string{adminSecret, alice.SecretAccessKey, temp.SecretAccessKey} {
		if strings.Contains(srv.stderr.String(), secret) || strings.Contains(srv.stdout.String(), secret) {
			t.Error("a secret access key reached kmsd's output")
		}
	}
}

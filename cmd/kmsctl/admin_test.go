package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hsmkms/cmd/kmsctl/testkmsd"
)

// TestAdminCommands drives `kmsctl admin` against a real kmsd as the
// bootstrap admin, then as the user it created: its key works for KMS
// commands in its own account, and the admin API refuses it.
func TestAdminCommands(t *testing.T) {
	srv := testkmsd.Start(t)
	const acct = "333333333333"
	acc := jsonOut(t, mustRun(t, srv, nil, "admin", "create-account", "--account-id", acct, "--name", "ops"))
	if acc["Account"].(map[string]any)["AccountId"] != acct {
		t.Fatalf("create-account = %v", acc)
	}
	if !strings.Contains(mustRun(t, srv, nil, "admin", "list-accounts"), acct) {
		t.Fatal("list-accounts does not show the new account")
	}
	mustRun(t, srv, nil, "admin", "create-user", "--account-id", acct, "--user-name", "bob", "--tags", "team=ops")
	policy := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(policy, []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	bob := "arn:aws:iam::" + acct + ":user/bob"
	mustRun(t, srv, nil, "admin", "attach-identity-policy", "--principal-arn", bob, "--policy-name", "kms", "--policy-document", "file://"+policy)
	pols := jsonOut(t, mustRun(t, srv, nil, "admin", "list-identity-policies", "--principal-arn", bob))
	if ps := pols["Policies"].([]any); len(ps) != 1 || ps[0].(map[string]any)["PolicyName"] != "kms" {
		t.Fatalf("list-identity-policies = %v", pols)
	}
	key := jsonOut(t, mustRun(t, srv, nil, "admin", "create-access-key", "--account-id", acct, "--user-name", "bob"))["AccessKey"].(map[string]any)
	id, secret := key["AccessKeyId"].(string), key["SecretAccessKey"].(string)
	if !strings.HasPrefix(id, "AKIA") || len(secret) != 40 {
		t.Fatalf("create-access-key = %v", key)
	}
	if out := mustRun(t, srv, nil, "admin", "list-access-keys", "--account-id", acct, "--user-name", "bob", "--output", "table"); !strings.Contains(out, id) || strings.Contains(out, secret) {
		t.Fatalf("list-access-keys:\n%s", out)
	}
	if _, errs, code := kmsctlRun(t, srv, nil, "admin", "create-user", "--account-id", acct); code == 0 || !strings.Contains(errs, "--user-name is required") {
		t.Fatalf("create-user without a name: exit %d, %s", code, errs)
	}

	// Bob's credentials: KMS in his account works, the admin API does not.
	creds := filepath.Join(t.TempDir(), "bob")
	if err := os.WriteFile(creds, []byte("[default]\naws_access_key_id = "+id+"\naws_secret_access_key = "+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bobSrv := *srv
	bobSrv.CredsFile = creds
	made := jsonOut(t, mustRun(t, &bobSrv, nil, "kms", "create-key", "--description", "bob's"))
	if arn := made["KeyMetadata"].(map[string]any)["Arn"].(string); !strings.Contains(arn, ":"+acct+":key/") {
		t.Fatalf("bob's key %s is not in his account", arn)
	}
	_, errs, code := kmsctlRun(t, &bobSrv, nil, "admin", "list-accounts")
	if code == 0 || !strings.Contains(errs, "AccessDeniedException") || !strings.Contains(errs, "User: "+bob+" is not authorized to perform: kmsadmin:ListAccounts") {
		t.Fatalf("list-accounts as bob: exit %d, %s", code, errs)
	}

	// Lists come back whole, whatever the page size of each call.
	for _, n := range []string{"carol", "dave"} {
		mustRun(t, srv, nil, "admin", "create-user", "--account-id", acct, "--user-name", n)
	}
	whole := jsonOut(t, mustRun(t, srv, nil, "admin", "list-users", "--account-id", acct))
	paged := jsonOut(t, mustRun(t, srv, nil, "admin", "list-users", "--account-id", acct, "--page-size", "1"))
	names := func(out map[string]any) (ns []string) {
		for _, u := range out["Users"].([]any) {
			ns = append(ns, u.(map[string]any)["UserName"].(string))
		}
		return ns
	}
	if got, want := names(paged), names(whole); len(want) != 3 || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("list-users --page-size 1 = %v, one page = %v (want bob, carol, dave)", got, want)
	}
	if _, truncated := paged["IsTruncated"]; truncated {
		t.Fatalf("the merged list still carries IsTruncated: %v", paged)
	}

	// Deactivate, then delete, the key.
	mustRun(t, srv, nil, "admin", "update-access-key", "--access-key-id", id, "--status", "Inactive")
	if _, errs, code := kmsctlRun(t, &bobSrv, nil, "kms", "list-keys"); code == 0 || !strings.Contains(errs, "UnrecognizedClientException") {
		t.Fatalf("list-keys with an inactive key: exit %d, %s", code, errs)
	}
	mustRun(t, srv, nil, "admin", "delete-access-key", "--access-key-id", id)
	mustRun(t, srv, nil, "admin", "detach-identity-policy", "--principal-arn", bob, "--policy-name", "kms")
	mustRun(t, srv, nil, "admin", "delete-user", "--account-id", acct, "--user-name", "bob")
	if out := mustRun(t, srv, nil, "admin", "list-users", "--account-id", acct); strings.Contains(out, "bob") {
		t.Fatalf("bob survived delete-user:\n%s", out)
	}
}

package main

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// TestE2EAuditAssumeRole: an AssumeRole through the SDK's STS client leaves
// an event naming the role, the session and the temporary access key id,
// so that the session's later requests trace back to who assumed the role,
// and neither the secret access key nor the session token. Before, the
// event had no requestParameters or responseElements.
func TestE2EAuditAssumeRole(t *testing.T) {
	st := newE2EState(t)
	s := st.start(t, "-config", auditConfig(t, ""))
	ctx := t.Context()
	admin, _ := adminClient(t, st, s.addr)
	roleARN := "arn:aws:iam::" + s.account + ":role/ops"
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + s.account + `:root"},"Action":"sts:AssumeRole"}]}`
	mustAdmin(t, s.addr, admin, "CreateRole", map[string]any{"RoleName": "ops", "AssumeRolePolicyDocument": trust}, nil)
	out, err := stsClient(s.addr, credentials.StaticCredentialsProvider{Value: admin}).AssumeRole(ctx,
		&sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("audited"), DurationSeconds: aws.Int32(900)})
	if err != nil {
		t.Fatal(err)
	}
	// In another account: the role's creation by the bootstrap admin and
	// its assumption are filed there, where its auditors look (CloudTrail
	// delivers IAM and STS events to the resource's account); before, both
	// went to the caller's account, whose auditors then read the other
	// account's trust policies.
	const other = "444455556666"
	otherRole := "arn:aws:iam::" + other + ":role/xacct"
	mustAdmin(t, s.addr, admin, "CreateAccount", map[string]any{"AccountId": other, "Name": "other"}, nil)
	mustAdmin(t, s.addr, admin, "CreateRole", map[string]any{"AccountId": other, "RoleName": "xacct", "AssumeRolePolicyDocument": trust}, nil)
	if _, err := stsClient(s.addr, credentials.StaticCredentialsProvider{Value: admin}).AssumeRole(ctx,
		&sts.AssumeRoleInput{RoleArn: aws.String(otherRole), RoleSessionName: aws.String("across")}); err != nil {
		t.Fatal(err)
	}
	// A refused attempt stays with the caller's account, whether or not
	// the role exists: the trail must not tell which roles exist.
	closedRole := "arn:aws:iam::" + other + ":role/closed"
	closedTrust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + other + `:root"},"Action":"sts:AssumeRole"}]}`
	mustAdmin(t, s.addr, admin, "CreateRole", map[string]any{"AccountId": other, "RoleName": "closed", "AssumeRolePolicyDocument": closedTrust}, nil)
	for _, role := range []string{closedRole, "arn:aws:iam::" + other + ":role/nosuch"} {
		if _, err := stsClient(s.addr, credentials.StaticCredentialsProvider{Value: admin}).AssumeRole(ctx,
			&sts.AssumeRoleInput{RoleArn: aws.String(role), RoleSessionName: aws.String("refused")}); err == nil {
			t.Fatalf("AssumeRole of %s succeeded", role)
		}
	}
	s.stop(t)
	filed := map[string]string{}
	for _, e := range readAudit(t, filepath.Join(filepath.Dir(st.db), "audit.db")) {
		rp, _ := e.ev["requestParameters"].(map[string]any)
		if e.ev["eventName"] == "CreateRole" && rp["roleName"] == "xacct" || e.ev["eventName"] == "AssumeRole" && rp["roleSessionName"] != "audited" {
			filed[e.ev["eventName"].(string)+" "+fmt.Sprintf("%v %v", rp["roleArn"], rp["roleName"])], _ = e.ev["recipientAccountId"].(string)
		}
	}
	want := map[string]string{
		"CreateRole <nil> xacct":                                  other,
		"AssumeRole " + otherRole + " <nil>":                      other,
		"AssumeRole " + closedRole + " <nil>":                     s.account,
		"AssumeRole arn:aws:iam::" + other + ":role/nosuch <nil>": s.account,
	}
	if !maps.Equal(filed, want) {
		t.Errorf("events filed under %v, want %v", filed, want)
	}

	var found bool
	for _, e := range readAudit(t, filepath.Join(filepath.Dir(st.db), "audit.db")) {
		for _, secret := range []string{aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken)} {
			if bytes.Contains(e.body, []byte(secret)) {
				t.Fatalf("event %d holds a secret of the session: %s", e.seq, e.body)
			}
		}
		rp, _ := e.ev["requestParameters"].(map[string]any)
		if e.ev["eventName"] != "AssumeRole" || rp["roleArn"] != roleARN {
			continue
		}
		found = true
		re, _ := e.ev["responseElements"].(map[string]any)
		if rp["roleArn"] != roleARN || rp["roleSessionName"] != "audited" || rp["durationSeconds"] != float64(900) {
			t.Errorf("requestParameters %v", rp)
		}
		if re["accessKeyId"] != aws.ToString(out.Credentials.AccessKeyId) || re["assumedRoleArn"] != aws.ToString(out.AssumedRoleUser.Arn) ||
			re["assumedRoleId"] != aws.ToString(out.AssumedRoleUser.AssumedRoleId) || re["expiration"] == nil {
			t.Errorf("responseElements %v", re)
		}
		if e.ev["eventSource"] != "sts.amazonaws.com" {
			t.Errorf("eventSource %v", e.ev["eventSource"])
		}
	}
	if !found {
		t.Fatal("no AssumeRole event")
	}
}

// TestE2EAuditNamesRefusedRequests: a request refused before its operation
// was resolved is named after its target only if that is a KMS operation
// (without the TrentService. prefix, so that a lookup by event name finds
// it), and "Unknown" otherwise; before, the raw header was the event name.
func TestE2EAuditNamesRefusedRequests(t *testing.T) {
	st := newE2EState(t)
	s := st.start(t, "-config", auditConfig(t, ""))
	post := func(target string, body []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+s.addr+"/", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", target)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatalf("%s: status %d, want a refusal", target, resp.StatusCode)
		}
	}
	post("TrentService.Decrypt", bytes.Repeat([]byte("x"), 100<<10)) // over the body limit
	post("ScheduleKeyDeletion", []byte("{}"))
	post("TrentService.NoSuchOperation", []byte("{}"))
	s.stop(t)
	var names []string
	for _, e := range readAudit(t, filepath.Join(filepath.Dir(st.db), "audit.db")) {
		names = append(names, fmt.Sprint(e.ev["eventName"]))
	}
	if want := []string{"Decrypt", "Unknown", "Unknown"}; !slices.Equal(names, want) {
		t.Fatalf("event names %q, want %q", names, want)
	}
}

// TestE2EAuditEventSizeBounded: what a client sends cannot set the size of
// its audit event. An unsigned request whose Credential is 60 KB (echoed
// in the error message) and a signed PutKeyPolicy with a 200 KB policy
// (refused: over AWS's 32 KB) each leave an event of a few KB, the policy
// recorded as its length and SHA-256. Before, the events were 61 KB and
// 1.2 MB (HTML escapes made each '<' six bytes).
func TestE2EAuditEventSizeBounded(t *testing.T) {
	st := newE2EState(t)
	s := st.start(t, "-config", auditConfig(t, ""))
	_, admin := adminClient(t, st, s.addr)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+s.addr+"/", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "TrentService.ListKeys")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+strings.Repeat("A", 60<<10)+", SignedHeaders=host, Signature=00")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	key, err := admin.CreateKey(t.Context(), &awskms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutKeyPolicy(t.Context(), &awskms.PutKeyPolicyInput{KeyId: key.KeyMetadata.KeyId,
		Policy: aws.String(strings.Repeat("<", 200<<10))}); err == nil {
		t.Fatal("a 200 KB key policy was accepted")
	}
	s.stop(t)
	for _, e := range readAudit(t, filepath.Join(filepath.Dir(st.db), "audit.db")) {
		if len(e.body) > 40<<10 {
			t.Errorf("event %d (%v) is %d bytes", e.seq, e.ev["eventName"], len(e.body))
		}
		if e.ev["eventName"] == "PutKeyPolicy" {
			rp, _ := e.ev["requestParameters"].(map[string]any)
			if p, _ := rp["policy"].(map[string]any); p["truncated"] != true || p["length"] == nil || p["sha256"] == nil {
				t.Errorf("the refused policy recorded as %.200v", rp["policy"])
			}
		}
	}
}

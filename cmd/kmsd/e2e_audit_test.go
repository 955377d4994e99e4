package main

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	_ "github.com/mattn/go-sqlite3"
)

// auditConfig writes a kmsd configuration with a short digest interval.
func auditConfig(t *testing.T, extra string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kmsd.yaml")
	if err := os.WriteFile(p, []byte("audit:\n  digest_interval: 200ms\n"+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type storedAuditEvent struct {
	seq  int64
	body []byte
	ev   map[string]any
}

// readAudit returns every stored event of an audit file, in order.
func readAudit(t *testing.T, path string) []storedAuditEvent {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT seq, body FROM events ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []storedAuditEvent
	for rows.Next() {
		var e storedAuditEvent
		if err := rows.Scan(&e.seq, &e.body); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(e.body, &e.ev); err != nil {
			t.Fatalf("event %d is not JSON: %v", e.seq, err)
		}
		out = append(out, e)
	}
	return out
}

// TestE2EAuditEveryOperation drives every KMS operation through the SDK
// (successes and failures, plus an unauthenticated request) and checks that
// each HTTP exchange left exactly one CloudTrail-shaped event with the
// right fields, and that no plaintext, data key, signature, MAC, grant
// token or secret reached the stored events or the log.
func TestE2EAuditEveryOperation(t *testing.T) {
	st := newE2EState(t)
	kmsdEnv(t, mergeEnv(st.env(), map[string]string{"KMSD_LOG_LEVEL": "debug"}))
	s := st.start(t, "-config", auditConfig(t, ""))
	c, ctx := s.client, t.Context()
	var secrets [][]byte
	secret := func(b []byte) { secrets = append(secrets, b) }
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	plaintext := []byte("audit-trail-plaintext-7f3a9c")
	secret(plaintext)
	_, adminSecret := adminCredentials(t, st.creds)
	secret([]byte(adminSecret))

	key, err := c.CreateKey(ctx, &awskms.CreateKeyInput{Description: aws.String("audited"), Tags: []types.Tag{{TagKey: aws.String("team"), TagValue: aws.String("blue")}}})
	must("CreateKey", err)
	kid := key.KeyMetadata.KeyId
	_, err = c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: kid})
	must("DescribeKey", err)
	_, err = c.ListKeys(ctx, &awskms.ListKeysInput{})
	must("ListKeys", err)
	_, err = c.UpdateKeyDescription(ctx, &awskms.UpdateKeyDescriptionInput{KeyId: kid, Description: aws.String("still audited")})
	must("UpdateKeyDescription", err)
	ec := map[string]string{"purpose": "audit-test"}
	enc, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: kid, Plaintext: plaintext, EncryptionContext: ec})
	must("Encrypt", err)
	_, err = c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	must("Decrypt", err)
	_, err = c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}) // wrong context: fails
	if err == nil {
		t.Fatal("Decrypt without its context succeeded")
	}
	_, err = c.ReEncrypt(ctx, &awskms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: ec, DestinationKeyId: kid})
	must("ReEncrypt", err)
	dk, err := c.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: kid, KeySpec: types.DataKeySpecAes256})
	must("GenerateDataKey", err)
	secret(dk.Plaintext)
	_, err = c.GenerateDataKeyWithoutPlaintext(ctx, &awskms.GenerateDataKeyWithoutPlaintextInput{KeyId: kid, NumberOfBytes: aws.Int32(32)})
	must("GenerateDataKeyWithoutPlaintext", err)
	rnd, err := c.GenerateRandom(ctx, &awskms.GenerateRandomInput{NumberOfBytes: aws.Int32(32)})
	must("GenerateRandom", err)
	secret(rnd.Plaintext)
	_, err = c.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: kid})
	must("DisableKey", err)
	_, err = c.EnableKey(ctx, &awskms.EnableKeyInput{KeyId: kid})
	must("EnableKey", err)
	_, err = c.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String("alias/audited"), TargetKeyId: kid})
	must("CreateAlias", err)
	_, err = c.UpdateAlias(ctx, &awskms.UpdateAliasInput{AliasName: aws.String("alias/audited"), TargetKeyId: kid})
	must("UpdateAlias", err)
	_, err = c.ListAliases(ctx, &awskms.ListAliasesInput{})
	must("ListAliases", err)
	_, err = c.DeleteAlias(ctx, &awskms.DeleteAliasInput{AliasName: aws.String("alias/audited")})
	must("DeleteAlias", err)
	_, err = c.TagResource(ctx, &awskms.TagResourceInput{KeyId: kid, Tags: []types.Tag{{TagKey: aws.String("k"), TagValue: aws.String("v")}}})
	must("TagResource", err)
	_, err = c.UntagResource(ctx, &awskms.UntagResourceInput{KeyId: kid, TagKeys: []string{"k"}})
	must("UntagResource", err)
	_, err = c.ListResourceTags(ctx, &awskms.ListResourceTagsInput{KeyId: kid})
	must("ListResourceTags", err)
	_, err = c.EnableKeyRotation(ctx, &awskms.EnableKeyRotationInput{KeyId: kid})
	must("EnableKeyRotation", err)
	_, err = c.GetKeyRotationStatus(ctx, &awskms.GetKeyRotationStatusInput{KeyId: kid})
	must("GetKeyRotationStatus", err)
	_, err = c.DisableKeyRotation(ctx, &awskms.DisableKeyRotationInput{KeyId: kid})
	must("DisableKeyRotation", err)
	_, err = c.RotateKeyOnDemand(ctx, &awskms.RotateKeyOnDemandInput{KeyId: kid})
	must("RotateKeyOnDemand", err)
	_, err = c.ListKeyRotations(ctx, &awskms.ListKeyRotationsInput{KeyId: kid})
	must("ListKeyRotations", err)
	_, err = c.GetKeyPolicy(ctx, &awskms.GetKeyPolicyInput{KeyId: kid})
	must("GetKeyPolicy", err)
	_, err = c.ListKeyPolicies(ctx, &awskms.ListKeyPoliciesInput{KeyId: kid})
	must("ListKeyPolicies", err)
	pol, err := c.GetKeyPolicy(ctx, &awskms.GetKeyPolicyInput{KeyId: kid})
	must("GetKeyPolicy", err)
	_, err = c.PutKeyPolicy(ctx, &awskms.PutKeyPolicyInput{KeyId: kid, Policy: pol.Policy})
	must("PutKeyPolicy", err)
	grant, err := c.CreateGrant(ctx, &awskms.CreateGrantInput{KeyId: kid, GranteePrincipal: aws.String("arn:aws:iam::" + s.account + ":root"),
		Operations: []types.GrantOperation{types.GrantOperationEncrypt}})
	must("CreateGrant", err)
	secret([]byte(aws.ToString(grant.GrantToken)))
	_, err = c.ListGrants(ctx, &awskms.ListGrantsInput{KeyId: kid})
	must("ListGrants", err)
	_, err = c.ListRetirableGrants(ctx, &awskms.ListRetirableGrantsInput{RetiringPrincipal: aws.String("arn:aws:iam::" + s.account + ":root")})
	must("ListRetirableGrants", err)
	_, err = c.RetireGrant(ctx, &awskms.RetireGrantInput{GrantToken: grant.GrantToken})
	must("RetireGrant", err)
	grant2, err := c.CreateGrant(ctx, &awskms.CreateGrantInput{KeyId: kid, GranteePrincipal: aws.String("arn:aws:iam::" + s.account + ":root"),
		Operations: []types.GrantOperation{types.GrantOperationDecrypt}})
	must("CreateGrant", err)
	secret([]byte(aws.ToString(grant2.GrantToken)))
	_, err = c.RevokeGrant(ctx, &awskms.RevokeGrantInput{KeyId: kid, GrantId: grant2.GrantId})
	must("RevokeGrant", err)

	ecKey, err := c.CreateKey(ctx, &awskms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify})
	must("CreateKey ECC", err)
	msg := []byte("audit-signed-message-4b1d")
	secret(msg)
	sig, err := c.Sign(ctx, &awskms.SignInput{KeyId: ecKey.KeyMetadata.KeyId, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	must("Sign", err)
	secret(sig.Signature)
	_, err = c.Verify(ctx, &awskms.VerifyInput{KeyId: ecKey.KeyMetadata.KeyId, Message: msg, Signature: sig.Signature, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	must("Verify", err)
	_, err = c.GetPublicKey(ctx, &awskms.GetPublicKeyInput{KeyId: ecKey.KeyMetadata.KeyId})
	must("GetPublicKey", err)
	hk, err := c.CreateKey(ctx, &awskms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
	must("CreateKey HMAC", err)
	mac, err := c.GenerateMac(ctx, &awskms.GenerateMacInput{KeyId: hk.KeyMetadata.KeyId, Message: msg, MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
	must("GenerateMac", err)
	secret(mac.Mac)
	_, err = c.VerifyMac(ctx, &awskms.VerifyMacInput{KeyId: hk.KeyMetadata.KeyId, Message: msg, Mac: mac.Mac, MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
	must("VerifyMac", err)
	pair, err := c.GenerateDataKeyPair(ctx, &awskms.GenerateDataKeyPairInput{KeyId: kid, KeyPairSpec: types.DataKeyPairSpecEccNistP256})
	must("GenerateDataKeyPair", err)
	secret(pair.PrivateKeyPlaintext)
	_, err = c.GenerateDataKeyPairWithoutPlaintext(ctx, &awskms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: kid, KeyPairSpec: types.DataKeyPairSpecEccNistP256})
	must("GenerateDataKeyPairWithoutPlaintext", err)

	ext, err := c.CreateKey(ctx, &awskms.CreateKeyInput{Origin: types.OriginTypeExternal})
	must("CreateKey EXTERNAL", err)
	params, err := c.GetParametersForImport(ctx, &awskms.GetParametersForImportInput{KeyId: ext.KeyMetadata.KeyId,
		WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha1, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	must("GetParametersForImport", err)
	secret(params.ImportToken)
	wrapped := bytes.Repeat([]byte{0x5a}, 256)
	secret(wrapped)
	if _, err := c.ImportKeyMaterial(ctx, &awskms.ImportKeyMaterialInput{KeyId: ext.KeyMetadata.KeyId, ImportToken: params.ImportToken,
		EncryptedKeyMaterial: wrapped, ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire}); err == nil {
		t.Fatal("ImportKeyMaterial of garbage succeeded")
	}
	if _, err := c.DeleteImportedKeyMaterial(ctx, &awskms.DeleteImportedKeyMaterialInput{KeyId: ext.KeyMetadata.KeyId}); err != nil {
		t.Logf("DeleteImportedKeyMaterial: %v", err)
	}
	_, err = c.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: kid, PendingWindowInDays: aws.Int32(7)})
	must("ScheduleKeyDeletion", err)
	_, err = c.CancelKeyDeletion(ctx, &awskms.CancelKeyDeletionInput{KeyId: kid})
	must("CancelKeyDeletion", err)

	// An unauthenticated request: a real access key id with a wrong secret.
	adminID, _ := adminCredentials(t, st.creds)
	bad := awskms.New(awskms.Options{Region: e2eRegion, BaseEndpoint: aws.String("http://" + s.addr), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(adminID, "wrong-secret-wrong-secret-wrong-secret0", "")})
	if _, err := bad.ListKeys(ctx, &awskms.ListKeysInput{}); err == nil {
		t.Fatal("a wrong secret was accepted")
	}

	s.stop(t)
	events := readAudit(t, filepath.Join(filepath.Dir(st.db), "audit.db"))

	// Exactly one event per HTTP exchange, matched by request id.
	byReq := map[string][]storedAuditEvent{}
	for _, e := range events {
		id, _ := e.ev["requestID"].(string)
		byReq[id] = append(byReq[id], e)
	}
	responses := s.log.snapshot()
	for _, r := range responses {
		got := byReq[r.requestID]
		if len(got) != 1 {
			t.Errorf("%s (request %s): %d audit events, want 1", r.operation, r.requestID, len(got))
			continue
		}
		ev := got[0].ev
		if ev["eventName"] != r.operation {
			t.Errorf("request %s: eventName %v, want %s", r.requestID, ev["eventName"], r.operation)
		}
		for _, f := range []string{"eventVersion", "userIdentity", "eventTime", "eventSource", "eventName", "awsRegion",
			"sourceIPAddress", "userAgent", "requestParameters", "responseElements", "requestID", "eventID", "readOnly",
			"eventType", "managementEvent", "recipientAccountId", "eventCategory"} {
			if _, ok := ev[f]; !ok {
				t.Errorf("%s event lacks %s", r.operation, f)
			}
		}
		uid, _ := ev["userIdentity"].(map[string]any)
		if uid["arn"] != "arn:aws:iam::"+s.account+":user/admin" && uid["type"] != "IAMUser" {
			t.Errorf("%s: userIdentity %v", r.operation, uid)
		}
		if ev["sourceIPAddress"] != "127.0.0.1" || ev["awsRegion"] != e2eRegion || ev["eventSource"] != "kms.amazonaws.com" {
			t.Errorf("%s: source %v region %v eventSource %v", r.operation, ev["sourceIPAddress"], ev["awsRegion"], ev["eventSource"])
		}
		if r.status >= 400 && ev["errorCode"] == nil {
			t.Errorf("%s failed with %d but its event has no errorCode", r.operation, r.status)
		}
		if r.status < 400 && ev["errorCode"] != nil {
			t.Errorf("%s succeeded but its event has errorCode %v", r.operation, ev["errorCode"])
		}
	}
	if len(events) != len(responses)+1 {
		t.Errorf("%d events for %d SDK exchanges and 1 unauthenticated request", len(events), len(responses))
	}
	// Every operation of the API is covered.
	seen := map[string]bool{}
	for _, r := range responses {
		seen[r.operation] = true
	}
	for _, op := range []string{"CreateKey", "DescribeKey", "ListKeys", "UpdateKeyDescription", "Encrypt", "Decrypt", "ReEncrypt",
		"GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "GenerateRandom", "EnableKey", "DisableKey", "ScheduleKeyDeletion",
		"CancelKeyDeletion", "CreateAlias", "UpdateAlias", "DeleteAlias", "ListAliases", "TagResource", "UntagResource",
		"ListResourceTags", "EnableKeyRotation", "DisableKeyRotation", "GetKeyRotationStatus", "RotateKeyOnDemand", "ListKeyRotations",
		"GetParametersForImport", "ImportKeyMaterial", "DeleteImportedKeyMaterial", "Sign", "Verify", "GetPublicKey", "GenerateMac",
		"VerifyMac", "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "GetKeyPolicy", "PutKeyPolicy", "ListKeyPolicies",
		"CreateGrant", "ListGrants", "ListRetirableGrants", "RetireGrant", "RevokeGrant"} {
		if !seen[op] {
			t.Errorf("operation %s was not exercised", op)
		}
	}

	// Specific fields.
	keyARN := aws.ToString(key.KeyMetadata.Arn)
	for _, e := range events {
		switch e.ev["eventName"] {
		case "Encrypt":
			rp, _ := e.ev["requestParameters"].(map[string]any)
			if ctx, _ := rp["encryptionContext"].(map[string]any); ctx["purpose"] != "audit-test" || rp["keyId"] != aws.ToString(kid) {
				t.Errorf("Encrypt requestParameters %v", rp)
			}
			res, _ := e.ev["resources"].([]any)
			if len(res) != 1 || res[0].(map[string]any)["ARN"] != keyARN || res[0].(map[string]any)["type"] != "AWS::KMS::Key" {
				t.Errorf("Encrypt resources %v", res)
			}
			if e.ev["readOnly"] != true {
				t.Errorf("Encrypt readOnly %v", e.ev["readOnly"])
			}
		case "CreateGrant":
			re, _ := e.ev["responseElements"].(map[string]any)
			if re["grantId"] == nil || re["grantToken"] != nil {
				t.Errorf("CreateGrant responseElements %v", re)
			}
		case "ListKeys":
			uid, _ := e.ev["userIdentity"].(map[string]any)
			if e.ev["errorCode"] != nil && (uid["type"] != "Unknown" || uid["accessKeyId"] != adminID) {
				t.Errorf("unauthenticated ListKeys: userIdentity %v", uid)
			}
		}
	}

	// No secret in the stored events or the log.
	logText := s.stderr.String() + s.stdout.String()
	for _, sec := range secrets {
		forms := [][]byte{sec, []byte(base64.StdEncoding.EncodeToString(sec)), []byte(hex.EncodeToString(sec))}
		for _, e := range events {
			for _, f := range forms {
				if len(f) >= 8 && bytes.Contains(e.body, f) {
					t.Errorf("event %d (%v) contains a secret: %.20q", e.seq, e.ev["eventName"], f)
				}
			}
		}
		for _, f := range forms {
			if len(f) >= 8 && strings.Contains(logText, string(f)) {
				t.Errorf("the log contains a secret: %.20q", f)
			}
		}
	}
}

func mergeEnv(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// buildBinary compiles a command of this module into a temporary directory.
func buildBinary(t *testing.T, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, pkg)
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// chainHashForTest is the audit chain's hash, as an attacker who knows the
// format would compute it for a forged event.
func chainHashForTest(prev, body []byte) []byte {
	h := sha256.New()
	h.Write([]byte("kmsd-audit-event-v1\x00"))
	h.Write(prev)
	h.Write(body)
	return h.Sum(nil)
}

// TestE2EAuditTamperVerify edits, deletes, inserts and reorders one stored
// event and checks that kmsctl audit verify names it, with exit status 1,
// and passes (status 0) on the untouched trail.
func TestE2EAuditTamperVerify(t *testing.T) {
	kmsctl := buildBinary(t, "./cmd/kmsctl")
	st := newE2EState(t)
	cfg := auditConfig(t, "")
	s := st.start(t, "-config", cfg)
	key, err := s.client.CreateKey(t.Context(), &awskms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	for range 12 {
		if _, err := s.client.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	s.stop(t) // writes a last digest
	auditDB := filepath.Join(filepath.Dir(st.db), "audit.db")
	pristine, err := os.ReadFile(auditDB)
	if err != nil {
		t.Fatal(err)
	}
	// Each run below signs a digest more and anchors it in the metadata
	// database; restoring the pristine audit file alone would then be
	// refused as an old copy (TestE2EAuditAnchor), so the anchor is
	// restored with it.
	anchor := readSetting(t, st.db, "audit_digest_anchor")

	verify := func(t *testing.T) (string, int) {
		t.Helper()
		s := st.start(t, "-config", cfg)
		defer s.stop(t)
		cmd := exec.CommandContext(t.Context(), kmsctl, "--endpoint-url", "http://"+s.addr, "--region", e2eRegion, "audit", "verify")
		cmd.Env = append(os.Environ(), "AWS_SHARED_CREDENTIALS_FILE="+st.creds, "AWS_CONFIG_FILE=/dev/null")
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		t.Logf("kmsctl audit verify (status %d):\n%s", code, out)
		return string(out), code
	}
	tamper := func(t *testing.T, stmts ...string) {
		t.Helper()
		if err := os.WriteFile(auditDB, pristine, 0o600); err != nil {
			t.Fatal(err)
		}
		_ = os.Remove(auditDB + "-wal")
		_ = os.Remove(auditDB + "-shm")
		writeSetting(t, st.db, "audit_digest_anchor", anchor)
		db, err := sql.Open("sqlite3", "file:"+auditDB)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, q := range stmts {
			if _, err := db.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}

	t.Run("intact", func(t *testing.T) {
		tamper(t)
		out, code := verify(t)
		if code != 0 || !strings.Contains(out, "verified") {
			t.Errorf("status %d on an intact trail:\n%s", code, out)
		}
	})
	t.Run("edit", func(t *testing.T) {
		tamper(t, `UPDATE events SET body = CAST(replace(CAST(body AS TEXT), '"readOnly":true', '"readOnly":false') AS BLOB) WHERE seq = 5`)
		out, code := verify(t)
		if code != 1 || !strings.Contains(out, "ALTERED event seq 5 ") {
			t.Errorf("status %d, want 1 naming seq 5 as altered:\n%s", code, out)
		}
	})
	t.Run("delete", func(t *testing.T) {
		tamper(t, `DELETE FROM events WHERE seq = 6`)
		out, code := verify(t)
		if code != 1 || !strings.Contains(out, "REMOVED") || !strings.Contains(out, "seq 6 to 6") {
			t.Errorf("status %d, want 1 naming seq 6 as removed:\n%s", code, out)
		}
	})
	t.Run("insert", func(t *testing.T) {
		// A forged event with a correct hash after seq 4, later events
		// renumbered to make room.
		db, err := sql.Open("sqlite3", "file:"+auditDB+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		tamper(t)
		var prev []byte
		if err := db.QueryRow(`SELECT hash FROM events WHERE seq = 4`).Scan(&prev); err != nil {
			t.Fatal(err)
		}
		db.Close()
		body := []byte(`{"eventName":"Decrypt","eventID":"forged"}`)
		h := chainHashForTest(prev, body)
		tamper(t,
			`UPDATE events SET seq = seq + 1000000 WHERE seq > 4`,
			`UPDATE events SET seq = seq - 999999 WHERE seq > 1000000`,
			`INSERT INTO events (seq, event_time, event_name, key_arns, principal, error_code, account, body, prev_hash, hash)
			 VALUES (5, 0, 'Decrypt', '', '', '', '', x'`+hex.EncodeToString(body)+`', x'`+hex.EncodeToString(prev)+`', x'`+hex.EncodeToString(h)+`')`)
		out, code := verify(t)
		if code != 1 || !strings.Contains(out, "INSERTED event seq 5 (eventID forged)") {
			t.Errorf("status %d, want 1 naming seq 5 as inserted:\n%s", code, out)
		}
	})
	t.Run("reorder", func(t *testing.T) {
		tamper(t,
			`UPDATE events SET seq = 1000007 WHERE seq = 7`,
			`UPDATE events SET seq = 7 WHERE seq = 8`,
			`UPDATE events SET seq = 8 WHERE seq = 1000007`)
		out, code := verify(t)
		if code != 1 || !strings.Contains(out, "REORDERED") || !(strings.Contains(out, "seq 7 ") || strings.Contains(out, "seq 8 ")) {
			t.Errorf("status %d, want 1 naming seq 7 or 8 as reordered:\n%s", code, out)
		}
	})
}

// readSetting and writeSetting read and write the row of the metadata
// database's settings whose name starts with name, while kmsd is stopped.
func readSetting(t *testing.T, dbPath, name string) string {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRow(`SELECT value FROM settings WHERE name LIKE ? || '%'`, name).Scan(&v); err != nil {
		t.Fatalf("setting %s: %v", name, err)
	}
	return v
}

func writeSetting(t *testing.T, dbPath, name, value string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE settings SET value = ? WHERE name LIKE ? || '%'`, value, name); err != nil {
		t.Fatal(err)
	}
}

// TestE2EAuditAnchor: the metadata database remembers the last digest
// kmsd signed. A rewritten audit file (here: every event and digest
// deleted but the first) is refused at start, so kmsd never signs the
// forged chain onward; with audit.reanchor it starts, warns, and anchors
// its next digest afresh.
func TestE2EAuditAnchor(t *testing.T) {
	st := newE2EState(t)
	s := st.start(t, "-config", auditConfig(t, ""))
	if _, err := s.client.CreateKey(t.Context(), &awskms.CreateKeyInput{}); err != nil {
		t.Fatal(err)
	}
	s.stop(t) // a last digest, anchored
	auditDB := filepath.Join(filepath.Dir(st.db), "audit.db")
	db, err := sql.Open("sqlite3", "file:"+auditDB)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM digests; DELETE FROM events WHERE seq > 1`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	pin, hadPIN := os.LookupEnv("KMSD_HSM_PIN")
	err = run(t.Context(), []string{"-listen", "127.0.0.1:0", "-config", auditConfig(t, "")}, &lockedBuffer{}, &lockedBuffer{})
	if hadPIN {
		os.Setenv("KMSD_HSM_PIN", pin) // run unsets it
	}
	if err == nil || !strings.Contains(err.Error(), "does not hold the last digest") {
		t.Fatalf("kmsd on a rewritten audit file: %v, want a refusal", err)
	}
	// Accepted knowingly: kmsd starts, says so, and anchors its next
	// digest afresh.
	s = st.start(t, "-config", auditConfig(t, "  reanchor: true\n"))
	s.stop(t)
	if !strings.Contains(s.stderr.String(), "accepting an audit file that does not hold the last digest signed") {
		t.Fatalf("no warning on reanchoring:\n%s", s.stderr)
	}
	s = st.start(t, "-config", auditConfig(t, ""))
	s.stop(t)
}

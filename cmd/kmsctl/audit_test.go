package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"hsmkms/cmd/kmsctl/testkmsd"
)

// auditRecord is the part of a CloudTrail-shaped record the tests read.
type auditRecord struct {
	EventTime string `json:"eventTime"`
	EventName string `json:"eventName"`
	ErrorCode string `json:"errorCode"`
	Identity  struct {
		ARN string `json:"arn"`
	} `json:"userIdentity"`
	Resources []struct {
		ARN string `json:"ARN"`
	} `json:"resources"`
}

func jsonLines(t *testing.T, out string) []auditRecord {
	t.Helper()
	var recs []auditRecord
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r auditRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not a JSON record: %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// TestAuditLookupAndExport drives kmsctl audit lookup and export against
// kmsd's real audit trail: each filter (event name, key id and ARN, error
// code, principal, time range) selects exactly the events made for it,
// newest first; pages continue with the printed token; the table output
// names the events; an alias or a malformed time is refused; export writes
// CloudTrail files of --records-per-file records.
func TestAuditLookupAndExport(t *testing.T) {
	srv := testkmsd.Start(t)
	a, b := srv.CreateKey(t, "a"), srv.CreateKey(t, "b")
	c := srv.Client(t)
	start := time.Now().UTC().Add(-2 * time.Second).Format(time.RFC3339)
	for _, key := range []string{a, a, a, b} {
		if _, err := c.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: []byte("not a ciphertext blob at all")}); err == nil {
		t.Fatal("Decrypt of garbage succeeded")
	}

	onA := jsonLines(t, mustRun(t, srv, nil, "audit", "lookup", "--event-name", "Encrypt", "--key-id", a, "--max-items", "0"))
	byID := jsonLines(t, mustRun(t, srv, nil, "audit", "lookup", "--event-name", "Encrypt", "--key-id", a[strings.LastIndex(a, "/")+1:], "--max-items", "0"))
	if len(onA) != 3 || len(byID) != 3 {
		t.Fatalf("Encrypt events on key a: %d by ARN, %d by key id; want 3", len(onA), len(byID))
	}
	for i, r := range onA {
		if r.EventName != "Encrypt" || len(r.Resources) != 1 || r.Resources[0].ARN != a {
			t.Errorf("event %d: %+v", i, r)
		}
		if i > 0 && r.EventTime > onA[i-1].EventTime {
			t.Errorf("not newest first: %s after %s", r.EventTime, onA[i-1].EventTime)
		}
	}
	failed := jsonLines(t, mustRun(t, srv, nil, "audit", "lookup", "--error-code", "InvalidCiphertextException"))
	if len(failed) != 1 || failed[0].EventName != "Decrypt" {
		t.Fatalf("events failed with InvalidCiphertextException: %+v", failed)
	}
	caller := onA[0].Identity.ARN
	if mine := jsonLines(t, mustRun(t, srv, nil, "audit", "lookup", "--principal", caller, "--event-name", "Encrypt", "--max-items", "0")); len(mine) != 4 {
		t.Errorf("Encrypt events by %s: %d, want 4", caller, len(mine))
	}
	if none := mustRun(t, srv, nil, "audit", "lookup", "--principal", caller+"-nobody"); none != "" {
		t.Errorf("events of an unknown principal: %q", none)
	}
	if since := jsonLines(t, mustRun(t, srv, nil, "audit", "lookup", "--event-name", "Encrypt", "--start-time", start, "--max-items", "0")); len(since) != 4 {
		t.Errorf("Encrypt events since %s: %d, want 4", start, len(since))
	}
	if before := mustRun(t, srv, nil, "audit", "lookup", "--event-name", "Encrypt", "--end-time", "2001-01-01T00:00:00Z"); before != "" {
		t.Errorf("events before 2001: %q", before)
	}

	// Pages: two events, then the token continues with the other two.
	out, errs, code := kmsctlRun(t, srv, nil, "audit", "lookup", "--event-name", "Encrypt", "--page-size", "1", "--max-items", "2")
	m := regexp.MustCompile(`--starting-token (\S+)`).FindStringSubmatch(errs)
	if code != 0 || len(jsonLines(t, out)) != 2 || m == nil {
		t.Fatalf("first page: exit %d, %d events, stderr %q", code, len(jsonLines(t, out)), errs)
	}
	if rest := jsonLines(t, mustRun(t, srv, nil, "audit", "lookup", "--event-name", "Encrypt", "--starting-token", m[1], "--max-items", "0")); len(rest) != 2 {
		t.Errorf("after the token: %d events, want 2", len(rest))
	}

	table := mustRun(t, srv, nil, "--output", "table", "audit", "lookup", "--event-name", "Encrypt", "--key-id", b)
	if lines := strings.Split(strings.TrimSpace(table), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "TIME") ||
		!strings.Contains(lines[1], "Encrypt") || !strings.Contains(lines[1], b) {
		t.Errorf("table:\n%s", table)
	}

	if _, errs, code := kmsctlRun(t, srv, nil, "audit", "lookup", "--key-id", "alias/a"); code == 0 || !strings.Contains(errs, "not an alias") {
		t.Errorf("lookup by alias: exit %d %s", code, errs)
	}
	if _, errs, code := kmsctlRun(t, srv, nil, "audit", "lookup", "--start-time", "2026-11-27"); code != 2 || !strings.Contains(errs, "RFC 3339") {
		t.Errorf("a date without a time: exit %d %s", code, errs)
	}

	dir := filepath.Join(t.TempDir(), "export")
	mustRun(t, srv, nil, "audit", "export", "--dir", dir, "--event-name", "Encrypt", "--records-per-file", "3")
	files, err := filepath.Glob(filepath.Join(dir, "kmsd_CloudTrail_*.json"))
	if err != nil || len(files) != 2 {
		t.Fatalf("export files: %v %v, want 2", files, err)
	}
	total := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Records []auditRecord `json:"Records"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, r := range doc.Records {
			if r.EventName != "Encrypt" {
				t.Errorf("%s holds a %s event", f, r.EventName)
			}
		}
		total += len(doc.Records)
	}
	if total != 4 {
		t.Errorf("exported %d records, want 4", total)
	}
}

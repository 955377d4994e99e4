package main

import (
	"fmt"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads /metrics and parses it with the Prometheus text parser.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("/metrics: %d %s", resp.StatusCode, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return mf
}

// metricValue sums the samples of family name whose labels include want.
func metricValue(mf map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := mf[name]
	if f == nil {
		return 0
	}
	var sum float64
	for _, m := range f.Metric {
		ok := true
		for k, v := range want {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			ok = ok && found
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

// TestE2EQuotaSDKRetry lowers the CreateKey quota to 4 per second and
// makes 16 concurrent CreateKey calls through the SDK's standard retryer:
// some attempts are throttled (ThrottlingException, counted in the metrics
// and audited), the SDK retries them, and in the end exactly 16 keys exist,
// one per call, none lost or made twice.
func TestE2EQuotaSDKRetry(t *testing.T) {
	st := newE2EState(t)
	t.Setenv("KMSD_QUOTAS", "") // the package default is off (quota_env_test.go)
	s := st.start(t, "-config", auditConfig(t, "quotas:\n  rates:\n    CreateKey: 4\n"))

	cfg, err := awsconfig.LoadDefaultConfig(t.Context(),
		awsconfig.WithSharedCredentialsFiles([]string{st.creds}), awsconfig.WithSharedConfigFiles([]string{}),
		awsconfig.WithRegion(e2eRegion))
	if err != nil {
		t.Fatal(err)
	}
	log := &responseLog{}
	c := awskms.NewFromConfig(cfg, func(o *awskms.Options) {
		o.BaseEndpoint = aws.String("http://" + s.addr)
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) { so.MaxAttempts = 10 })
		o.APIOptions = append(o.APIOptions, log.middleware)
	})
	const calls = 16
	var wg sync.WaitGroup
	errs := make([]error, calls)
	for i := range calls {
		wg.Go(func() {
			_, errs[i] = c.CreateKey(t.Context(), &awskms.CreateKeyInput{Description: aws.String(fmt.Sprintf("quota-%02d", i))})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d failed despite retries: %v", i, err)
		}
	}
	throttled, succeeded := 0, 0
	for _, r := range log.snapshot() {
		switch r.status {
		case http.StatusOK:
			succeeded++
		case http.StatusBadRequest:
			throttled++
		}
	}
	if throttled == 0 {
		t.Fatal("no attempt was throttled: the quota is not enforced")
	}
	if succeeded != calls {
		t.Errorf("%d successful attempts, want %d", succeeded, calls)
	}
	t.Logf("%d calls: %d attempts throttled and retried by the SDK", calls, throttled)

	// No call lost or duplicated in effect: exactly one key per call.
	keys, err := c.ListKeys(t.Context(), &awskms.ListKeysInput{})
	if err != nil {
		t.Fatal(err)
	}
	var descs []string
	for _, k := range keys.Keys {
		d, err := c.DescribeKey(t.Context(), &awskms.DescribeKeyInput{KeyId: k.KeyId})
		if err != nil {
			t.Fatal(err)
		}
		descs = append(descs, aws.ToString(d.KeyMetadata.Description))
	}
	sort.Strings(descs)
	if len(descs) != calls {
		t.Errorf("%d keys exist after %d calls: %v", len(descs), calls, descs)
	}
	for i := range min(calls, len(descs)) {
		if want := fmt.Sprintf("quota-%02d", i); descs[i] != want {
			t.Errorf("keys %v: want one key per call quota-00..quota-%02d", descs, calls-1)
			break
		}
	}

	mf := scrape(t, s.addr)
	if got := metricValue(mf, "kmsd_throttled_requests_total", map[string]string{"operation": "CreateKey", "quota": "CreateKey"}); int(got) != throttled {
		t.Errorf("kmsd_throttled_requests_total = %v, want %d", got, throttled)
	}
	if got := metricValue(mf, "kmsd_requests_total", map[string]string{"operation": "CreateKey", "error_code": "ThrottlingException"}); int(got) != throttled {
		t.Errorf("kmsd_requests_total{ThrottlingException} = %v, want %d", got, throttled)
	}
	s.stop(t)
	n := 0
	for _, e := range readAudit(t, filepath.Join(filepath.Dir(st.db), "audit.db")) {
		if e.ev["errorCode"] == "ThrottlingException" {
			n++
			if e.ev["errorMessage"] != throttleMessageForTest {
				t.Errorf("throttled event message %v", e.ev["errorMessage"])
			}
		}
	}
	if n != throttled {
		t.Errorf("%d ThrottlingException audit events, want %d", n, throttled)
	}
}

const throttleMessageForTest = "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls."

// TestE2EMetricsAndHealth scrapes /metrics (parsed with the Prometheus text
// parser) before and after three Encrypt calls and checks that the request,
// HSM and audit figures moved; /healthz and /readyz answer 200 without
// credentials.
func TestE2EMetricsAndHealth(t *testing.T) {
	st := newE2EState(t)
	s := st.start(t, "-config", auditConfig(t, ""))
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + s.addr + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
	key, err := s.client.CreateKey(t.Context(), &awskms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	before := scrape(t, s.addr)
	for range 3 {
		if _, err := s.client.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("m")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.client.DescribeKey(t.Context(), &awskms.DescribeKeyInput{KeyId: aws.String("alias/none")}); err == nil {
		t.Fatal("DescribeKey of a missing alias succeeded")
	}
	after := scrape(t, s.addr)
	delta := func(name string, labels map[string]string) float64 {
		return metricValue(after, name, labels) - metricValue(before, name, labels)
	}
	if d := delta("kmsd_requests_total", map[string]string{"operation": "Encrypt", "error_code": ""}); d != 3 {
		t.Errorf("Encrypt requests moved by %v, want 3", d)
	}
	if d := delta("kmsd_requests_total", map[string]string{"operation": "DescribeKey", "error_code": "NotFoundException"}); d != 1 {
		t.Errorf("DescribeKey NotFoundException moved by %v, want 1", d)
	}
	if d := delta("kmsd_request_duration_seconds", map[string]string{"operation": "Encrypt"}); d != 3 {
		t.Errorf("Encrypt latency samples moved by %v, want 3", d)
	}
	if d := delta("kmsd_hsm_operation_duration_seconds", map[string]string{"operation": "Encrypt", "mechanism": "CKM_AES_GCM"}); d < 3 {
		t.Errorf("HSM AES-GCM encrypt samples moved by %v, want >= 3", d)
	}
	if d := delta("kmsd_audit_commit_duration_seconds", nil); d < 1 {
		t.Errorf("audit commits moved by %v", d)
	}
	for _, name := range []string{"kmsd_hsm_session_pool_size", "kmsd_hsm_handle_index_size"} {
		if metricValue(after, name, nil) <= 0 {
			t.Errorf("%s = %v", name, metricValue(after, name, nil))
		}
	}
	for _, name := range []string{"kmsd_hsm_session_pool_in_use", "kmsd_hsm_session_pool_wait_seconds_total", "kmsd_audit_queue_depth", "kmsd_throttled_requests_total"} {
		if _, ok := after[name]; !ok && name != "kmsd_throttled_requests_total" {
			t.Errorf("%s missing", name)
		}
	}
	if metricValue(after, "kmsd_keys", map[string]string{"state": "Enabled"}) != 1 {
		t.Errorf("kmsd_keys{Enabled} = %v, want 1", metricValue(after, "kmsd_keys", map[string]string{"state": "Enabled"}))
	}
}

// TestE2EReadinessSurvivesHangUps: a client that hangs up in the middle of
// a readiness check does not mark the node unready for the others (the
// cached check ran under the prober's context, which the hang-up
// cancelled; before, one such request a second kept the node out of
// rotation).
func TestE2EReadinessSurvivesHangUps(t *testing.T) {
	st := newE2EState(t)
	s := st.start(t)
	for i := range 5 {
		time.Sleep(readyCacheFor + 100*time.Millisecond) // the next probe checks afresh
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		c.Close() // hang up at once
		time.Sleep(50 * time.Millisecond)
		resp, err := http.Get("http://" + s.addr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("try %d: /readyz %d after a prober hung up", i, resp.StatusCode)
		}
	}
}

// TestE2EQuotaCrossAccount: another account's requests on a key count
// against the key owner's quota only once authorized; until then they
// count against the caller's own account, so refused requests from another
// account are throttled there and never throttle the owner (before, a
// caller with no access spent the owner's tokens). A cross-account
// ReEncrypt spends a token of each account (before, the second account's
// bucket of the same class was skipped), and a ReEncrypt naming its source
// key is throttled like any other request (a throttled early look at the
// source used to leave the class marked as charged).
func TestE2EQuotaCrossAccount(t *testing.T) {
	const other = "210987654321"
	st := newE2EState(t)
	t.Setenv("KMSD_QUOTAS", "")
	const thirdAccount = "333344445555"
	srv := startKMSD(t, "-config", auditConfig(t, "quotas:\n  burst: 1\n  rates:\n    cryptographic_symmetric: 3\n  accounts:\n"+
		"    \""+other+"\":\n      cryptographic_symmetric: 0.001\n    \""+thirdAccount+"\":\n      cryptographic_symmetric: 0.001\n"))
	ctx := t.Context()
	admin, ac := adminClient(t, st, srv.addr)
	key, err := ac.CreateKey(ctx, &awskms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	keyARN := aws.ToString(key.KeyMetadata.Arn)
	account := aws.ToString(key.KeyMetadata.AWSAccountId)
	mustAdmin(t, srv.addr, admin, "CreateAccount", map[string]any{"AccountId": other, "Name": "partner"}, nil)
	mustAdmin(t, srv.addr, admin, "CreateAccount", map[string]any{"AccountId": thirdAccount, "Name": "third"}, nil)
	outsider, outsiderARN := e2eUser(t, srv, admin, other, "outsider", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`)
	once := func(o *awskms.Options) { o.RetryMaxAttempts = 1 }
	throttled := 0
	for range 10 { // no grant, default key policy: refused, then throttled by the outsider's own quota
		_, err := outsider.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(keyARN), Plaintext: []byte("x")}, once)
		switch code, _ := apiCode(err); code {
		case "ThrottlingException":
			throttled++
		case "AccessDeniedException":
		default:
			t.Fatalf("an outsider's Encrypt on a key it may not use: %v", err)
		}
	}
	if throttled == 0 {
		t.Fatal("10 refused requests from an account with one token were never throttled")
	}
	if _, err := ac.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(keyARN), Plaintext: []byte("x")}); err != nil {
		t.Fatalf("the owner after refused requests of another account: %v", err)
	}

	// The admin re-encrypts, onto its own key, a ciphertext of a key of a
	// third account, whose bucket (one token, spent on that ciphertext) is
	// empty: throttled by the source owner's bucket, although the admin's
	// own is full.
	third, _ := e2eUser(t, srv, admin, thirdAccount, "owner", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`)
	src, err := third.CreateKey(ctx, &awskms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	adminARN := "arn:aws:iam::" + account + ":user/admin"
	if _, err := third.CreateGrant(ctx, &awskms.CreateGrantInput{KeyId: src.KeyMetadata.KeyId, GranteePrincipal: aws.String(adminARN),
		Operations: []types.GrantOperation{types.GrantOperationDecrypt, types.GrantOperationReEncryptFrom}}); err != nil {
		t.Fatal(err)
	}
	blob, err := third.Encrypt(ctx, &awskms.EncryptInput{KeyId: src.KeyMetadata.KeyId, Plaintext: []byte("x")}, once)
	if err != nil {
		t.Fatal(err)
	}
	in := &awskms.ReEncryptInput{CiphertextBlob: blob.CiphertextBlob, SourceKeyId: src.KeyMetadata.Arn, DestinationKeyId: aws.String(keyARN)}
	for range 3 {
		_, err = ac.ReEncrypt(ctx, in, once)
		if code, _ := apiCode(err); code != "ThrottlingException" {
			t.Fatalf("ReEncrypt from a key whose owner's bucket is empty: %v, want ThrottlingException", err)
		}
	}
	// And the third account's own ReEncrypt with SourceKeyId, its bucket
	// empty: throttled too (the early look at the source key was throttled
	// and its error dropped, and the class then counted as charged).
	_, err = third.ReEncrypt(ctx, &awskms.ReEncryptInput{CiphertextBlob: blob.CiphertextBlob, SourceKeyId: src.KeyMetadata.Arn,
		DestinationKeyId: src.KeyMetadata.KeyId}, once)
	if code, _ := apiCode(err); code != "ThrottlingException" {
		t.Fatalf("ReEncrypt naming its source key, bucket empty: %v, want ThrottlingException", err)
	}
	_ = outsiderARN
}

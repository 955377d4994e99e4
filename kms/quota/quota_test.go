package quota

import (
	"strings"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestBucket(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l, err := New(Config{Accounts: map[string]map[string]float64{"111122223333": {"CreateKey": 2}}}, c.now)
	if err != nil {
		t.Fatal(err)
	}
	const a, b = "111122223333", "444455556666"
	// Burst: a full bucket holds one second's worth (2), then nothing.
	take := func(account string, c Class, n int) int {
		got := 0
		for range n {
			if l.Allow(account, c) {
				got++
			}
		}
		return got
	}
	if got := take(a, "CreateKey", 3); got != 2 {
		t.Errorf("account override: %d of 3 allowed, want 2", got)
	}
	// Another account has AWS's default (5) and its own bucket.
	for i := range 5 {
		if !l.Allow(b, "CreateKey") {
			t.Fatalf("default CreateKey refused at %d", i)
		}
	}
	if l.Allow(b, "CreateKey") {
		t.Error("6th CreateKey in the same instant allowed")
	}
	// Refill at the rate: half a second gives one token back to a.
	c.add(500 * time.Millisecond)
	if got := take(a, "CreateKey", 2); got != 1 {
		t.Errorf("refill after 0.5 s at 2/s: %d allowed, want 1", got)
	}
	// Classes are independent.
	if !l.Allow(a, Symmetric) || !l.Allow(a, KeyClass("RSA_2048")) {
		t.Error("other classes must not share the CreateKey bucket")
	}
	// Fractional rates: GetParametersForImport is one per 4 s.
	if got := take(a, "GetParametersForImport", 2); got != 1 {
		t.Errorf("GetParametersForImport: %d allowed, want 1", got)
	}
	c.add(4 * time.Second)
	if !l.Allow(a, "GetParametersForImport") {
		t.Error("GetParametersForImport refused after 4 s")
	}
	// Operations without a quota are never refused.
	for range 100 {
		if !l.Allow(a, "ListKeyRotations") {
			t.Fatal("an operation without a quota was refused")
		}
	}
}

func TestConfigErrors(t *testing.T) {
	_, err := New(Config{Rates: map[string]float64{"Nope": 1, "CreateKey": -1}, Accounts: map[string]map[string]float64{"12": {}}}, nil)
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{`unknown quota "Nope"`, "rate must not be negative", `"12" is not a 12-digit account id`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestClasses(t *testing.T) {
	for spec, want := range map[string]Class{"SYMMETRIC_DEFAULT": Symmetric, "RSA_4096": RSA, "ECC_NIST_P384": ECC, "ECC_SECG_P256K1": ECC, "HMAC_256": HMAC} {
		if got := KeyClass(spec); got != want {
			t.Errorf("KeyClass(%s) = %s, want %s", spec, got, want)
		}
	}
	if _, byKey, ok := OperationClass("Encrypt"); !ok || !byKey {
		t.Error("Encrypt is charged by key kind")
	}
	if c, byKey, ok := OperationClass("DescribeKey"); !ok || byKey || c != "DescribeKey" || DefaultRates[c] != 2000 {
		t.Error("DescribeKey has its own 2000/s quota")
	}
}

// TestConcurrentAllow: under -race, concurrent callers never get more
// tokens than the bucket holds.
func TestConcurrentAllow(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l, _ := New(Config{Rates: map[string]float64{"CreateKey": 50}}, c.now)
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if l.Allow("111122223333", "CreateKey") {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if allowed != 50 {
		t.Errorf("%d allowed, want exactly the burst of 50", allowed)
	}
}

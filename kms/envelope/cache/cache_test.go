package cache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hsmkms/kms/envelope"
	"hsmkms/kms/envelope/cache"
	"hsmkms/kms/envelope/format"
	"hsmkms/kms/envelope/internal/fakekms"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// setup returns a client over a caching CMM over a KMS keyring on a fake,
// with the fake (for call counts) and the clock.
func setup(t *testing.T, o cache.Options) (*envelope.Client, *fakekms.Client, *clock, *cache.CMM) {
	t.Helper()
	kms := fakekms.New()
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	o.Now = clk.Now
	cmm, err := cache.New(envelope.NewDefaultCMM(&envelope.KMSKeyring{Client: kms, Generator: kms.CreateKey("")}), o)
	if err != nil {
		t.Fatal(err)
	}
	return envelope.New(cmm), kms, clk, cmm
}

// run encrypts n messages of size bytes each (length declared) with ec
// and returns them.
func run(t *testing.T, c *envelope.Client, n, size int, ec map[string]string, between func(i int)) [][]byte {
	t.Helper()
	var msgs [][]byte
	pt := make([]byte, size)
	for i := range n {
		if between != nil {
			between(i)
		}
		var out bytes.Buffer
		if _, err := c.Encrypt(t.Context(), &out, bytes.NewReader(pt), envelope.EncryptOptions{EncryptionContext: ec, PlaintextLength: int64(size)}); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, out.Bytes())
	}
	return msgs
}

func TestLimits(t *testing.T) {
	t.Parallel()
	ec := map[string]string{"a": "1"}
	cases := []struct {
		name    string
		opts    cache.Options
		n, size int
		between func(clk *clock) func(int)
		want    int64
	}{
		{"no limit but age", cache.Options{Capacity: 10, MaxAge: time.Hour}, 20, 100, nil, 1},
		{"messages 3", cache.Options{Capacity: 10, MaxAge: time.Hour, MaxMessages: 3}, 10, 100, nil, 4},
		{"messages 1", cache.Options{Capacity: 10, MaxAge: time.Hour, MaxMessages: 1}, 5, 100, nil, 5},
		{"bytes 1000, 300 per message", cache.Options{Capacity: 10, MaxAge: time.Hour, MaxBytes: 1000}, 10, 300, nil, 4},
		{"bytes 1000, 1000 per message", cache.Options{Capacity: 10, MaxAge: time.Hour, MaxBytes: 1000}, 4, 1000, nil, 4},
		{"bytes 1000, 1001 per message: bypass", cache.Options{Capacity: 10, MaxAge: time.Hour, MaxBytes: 1000}, 3, 1001, nil, 3},
		{"age 10s, a message every 4s", cache.Options{Capacity: 10, MaxAge: 10 * time.Second}, 10, 10, func(clk *clock) func(int) {
			return func(i int) {
				if i > 0 {
					clk.Add(4 * time.Second)
				}
			}
		}, 4}, // t=0,4,8 | 12,16,20 | 24,28,32 | 36
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, kms, clk, _ := setup(t, tc.opts)
			var between func(int)
			if tc.between != nil {
				between = tc.between(clk)
			}
			msgs := run(t, c, tc.n, tc.size, ec, between)
			if got := kms.GenerateDataKeyCalls.Load(); got != tc.want {
				t.Fatalf("GenerateDataKey calls %d, want %d", got, tc.want)
			}
			// Every message still decrypts (with a fresh, uncached client).
			dec := envelope.NewKMS(kms, "")
			dec.CMM = envelope.NewDefaultCMM(&envelope.KMSKeyring{Client: kms, Discovery: true})
			for i, m := range msgs {
				if _, err := dec.Decrypt(t.Context(), io.Discard, bytes.NewReader(m), envelope.DecryptOptions{}); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
			}
		})
	}
}

// TestPartitions: different contexts, suites or partitions never share a
// data key; the same ones do.
func TestPartitions(t *testing.T) {
	t.Parallel()
	c, kms, _, cmm := setup(t, cache.Options{Capacity: 100, MaxAge: time.Hour})
	seen := map[string]string{} // EDK ciphertext -> context it was made for
	enc := func(ec map[string]string, s *format.Suite) {
		var out bytes.Buffer
		info, err := c.Encrypt(t.Context(), &out, bytes.NewReader([]byte("x")), envelope.EncryptOptions{EncryptionContext: ec, Suite: s, PlaintextLength: 1})
		if err != nil {
			t.Fatal(err)
		}
		h, err := format.ReadHeader(bytes.NewReader(out.Bytes()), 0)
		if err != nil {
			t.Fatal(err)
		}
		label := fmt.Sprint(ec, info.Suite.ID)
		edk := string(h.EDKs[0].Ciphertext)
		if prev, ok := seen[edk]; ok && prev != label {
			t.Fatalf("data key shared between %s and %s", prev, label)
		}
		seen[edk] = label
	}
	contexts := []map[string]string{nil, {"a": "1"}, {"a": "2"}, {"b": "1"}, {"a": "1", "b": "1"}, {"a1": ""}, {"a": "1b"}}
	for range 3 {
		for _, ec := range contexts {
			enc(ec, format.AES256HKDFSHA512CommitKey)
			enc(ec, format.AES256HKDFSHA512CommitKeyECDSAP384)
		}
	}
	want := int64(2 * len(contexts))
	if got := kms.GenerateDataKeyCalls.Load(); got != want {
		t.Fatalf("GenerateDataKey calls %d, want %d (one per context and suite)", got, want)
	}
	if len(seen) != int(want) {
		t.Fatalf("%d distinct data keys, want %d", len(seen), want)
	}
	if cmm.Len() != int(want) {
		t.Fatalf("cache holds %d entries, want %d", cmm.Len(), want)
	}
}

func TestCapacityAndBypass(t *testing.T) {
	t.Parallel()
	c, kms, _, cmm := setup(t, cache.Options{Capacity: 2, MaxAge: time.Hour})
	for i := range 3 {
		run(t, c, 1, 10, map[string]string{"n": fmt.Sprint(i)}, nil)
	}
	if cmm.Len() != 2 {
		t.Fatalf("cache holds %d entries, capacity 2", cmm.Len())
	}
	run(t, c, 1, 10, map[string]string{"n": "0"}, nil) // evicted: a new data key
	if got := kms.GenerateDataKeyCalls.Load(); got != 4 {
		t.Fatalf("GenerateDataKey calls %d, want 4", got)
	}
	// Unknown length bypasses the cache.
	before := kms.GenerateDataKeyCalls.Load()
	for range 3 {
		if _, err := c.Encrypt(t.Context(), io.Discard, bytes.NewReader([]byte("abc")), envelope.EncryptOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := kms.GenerateDataKeyCalls.Load() - before; got != 3 {
		t.Fatalf("unknown-length encryptions made %d data keys, want 3", got)
	}
	if s := cmm.Stats(); s.Bypasses != 3 {
		t.Fatalf("stats %+v, want 3 bypasses", s)
	}
	// Identity-KDF suites are never cached.
	legacyKMS := fakekms.New()
	lcmm, _ := cache.New(envelope.NewDefaultCMM(&envelope.KMSKeyring{Client: legacyKMS, Generator: legacyKMS.CreateKey("")}), cache.Options{Capacity: 10, MaxAge: time.Hour})
	legacy := envelope.New(lcmm)
	legacy.Policy = envelope.ForbidEncryptAllowDecrypt
	for range 3 {
		if _, err := legacy.Encrypt(t.Context(), io.Discard, bytes.NewReader([]byte("abc")), envelope.EncryptOptions{Suite: format.AES256NoKDF, PlaintextLength: 3}); err != nil {
			t.Fatal(err)
		}
	}
	if got := legacyKMS.GenerateDataKeyCalls.Load(); got != 3 || lcmm.Len() != 0 {
		t.Fatalf("identity KDF: %d data keys (want 3), %d cached (want 0)", got, lcmm.Len())
	}
}

func TestOptionsValidation(t *testing.T) {
	t.Parallel()
	under := envelope.NewDefaultCMM(&envelope.KMSKeyring{})
	for name, o := range map[string]cache.Options{
		"no capacity":        {MaxAge: time.Second},
		"no age":             {Capacity: 1},
		"messages over 2^32": {Capacity: 1, MaxAge: time.Second, MaxMessages: 1<<32 + 1},
	} {
		if _, err := cache.New(under, o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := cache.New(under, cache.Options{Capacity: 1, MaxAge: time.Second, MaxMessages: 1 << 32}); err != nil {
		t.Errorf("2^32 messages refused: %v", err)
	}
}

// TestConcurrent hammers one entry from many goroutines: the message limit
// holds exactly (run with -race).
func TestConcurrent(t *testing.T) {
	t.Parallel()
	c, kms, _, _ := setup(t, cache.Options{Capacity: 4, MaxAge: time.Hour, MaxMessages: 5})
	var wg sync.WaitGroup
	var fails atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if _, err := c.Encrypt(context.Background(), io.Discard, bytes.NewReader([]byte("0123456789")), envelope.EncryptOptions{PlaintextLength: 10, EncryptionContext: map[string]string{"x": "y"}}); err != nil {
					fails.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if fails.Load() != 0 {
		t.Fatalf("%d encryptions failed", fails.Load())
	}
	// 80 messages, at most 5 per key: at least 16 keys; concurrent misses
	// may make a few more, never fewer.
	if got := kms.GenerateDataKeyCalls.Load(); got < 16 {
		t.Fatalf("GenerateDataKey calls %d, want >= 16", got)
	}
}

// lengthRecorder records the plaintext length each encryption request to
// the underlying CMM declared.
type lengthRecorder struct {
	envelope.CMM
	mu   sync.Mutex
	seen []int64
}

func (r *lengthRecorder) GetEncryptionMaterials(ctx context.Context, req envelope.EncryptionRequest) (*envelope.EncryptionMaterials, error) {
	r.mu.Lock()
	r.seen = append(r.seen, req.PlaintextLength)
	r.mu.Unlock()
	return r.CMM.GetEncryptionMaterials(ctx, req)
}

// TestUnderlyingRequestCarriesLimitBytes: on a miss, the underlying CMM is
// asked for materials good for the entry's byte limit, not for the first
// message's length (caching-cmm.md), since the entry serves later messages.
func TestUnderlyingRequestCarriesLimitBytes(t *testing.T) {
	kms := fakekms.New()
	rec := &lengthRecorder{CMM: envelope.NewDefaultCMM(&envelope.KMSKeyring{Client: kms, Generator: kms.CreateKey("")})}
	cmm, err := cache.New(rec, cache.Options{Capacity: 10, MaxAge: time.Minute, MaxBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	run(t, envelope.New(cmm), 2, 3, nil, nil)
	if len(rec.seen) != 1 || rec.seen[0] != 1000 {
		t.Fatalf("the underlying CMM was asked for %v, want one request for 1000 bytes", rec.seen)
	}
}

// brokenCMM returns materials without a suite, or none, as a faulty custom
// CMM might.
type brokenCMM struct{ envelope.CMM }

func (brokenCMM) GetEncryptionMaterials(context.Context, envelope.EncryptionRequest) (*envelope.EncryptionMaterials, error) {
	return &envelope.EncryptionMaterials{}, nil
}

func (brokenCMM) DecryptMaterials(context.Context, envelope.DecryptionRequest) (*envelope.DecryptionMaterials, error) {
	return nil, nil
}

// TestBadMaterialsFromUnderlyingCMM: the caching CMM refuses what a custom
// underlying CMM got wrong, as the client does without a cache, instead of
// dereferencing it (a nil suite or nil materials panicked) or caching it.
func TestBadMaterialsFromUnderlyingCMM(t *testing.T) {
	good, _, _, _ := setup(t, cache.Options{Capacity: 10, MaxAge: time.Minute})
	msgs := run(t, good, 1, 10, nil, nil)
	cmm, err := cache.New(brokenCMM{}, cache.Options{Capacity: 10, MaxAge: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	c := envelope.New(cmm)
	if _, err := c.Encrypt(t.Context(), io.Discard, bytes.NewReader([]byte("x")), envelope.EncryptOptions{PlaintextLength: 1}); !errors.Is(err, envelope.ErrInvalidArgument) {
		t.Errorf("encrypt: %v", err)
	}
	if _, err := c.Decrypt(t.Context(), io.Discard, bytes.NewReader(msgs[0]), envelope.DecryptOptions{}); !errors.Is(err, envelope.ErrInvalidArgument) {
		t.Errorf("decrypt: %v", err)
	}
}

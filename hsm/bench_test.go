package hsm_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hsmkms/hsm"
	"hsmkms/hsm/softhsmtest"
)

// BenchmarkEncryptGCM measures 32-byte AES-GCM encryptions on SoftHSM with
// exactly 1, 16 and 64 goroutines sharing one device (and its default-size
// session pool), reporting throughput as ops/s.
func BenchmarkEncryptGCM(b *testing.B) {
	d := openDevice(b, softhsmtest.NewToken(b))
	id := newKey(b, d)
	plaintext := make([]byte, 32)
	for _, goroutines := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("goroutines=%d", goroutines), func(b *testing.B) {
			ctx := b.Context()
			var next atomic.Int64
			var failure atomic.Pointer[error]
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for g := range goroutines {
				wg.Go(func() {
					// Distinct IVs per operation, as the service uses them.
					iv := make([]byte, hsm.IVSize)
					binary.BigEndian.PutUint32(iv, uint32(g))
					for {
						n := next.Add(1)
						if n > int64(b.N) {
							return
						}
						binary.BigEndian.PutUint64(iv[4:], uint64(n))
						if _, err := d.EncryptGCM(ctx, id, iv, plaintext, nil); err != nil {
							failure.CompareAndSwap(nil, &err)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if err := failure.Load(); err != nil {
				b.Fatal(*err)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
		})
	}
}

// BenchmarkOpenWithKeys measures Open (module initialization, login and the
// index scan) on a token holding many keys. Creating keys costs about 7.5 ms
// each on SoftHSM, so the count defaults to 1,000 (about 8 s of set-up);
// set HSMKMS_BENCH_OPEN_KEYS=10000 for the large case (about 75 s). Being a
// benchmark, it never runs in a plain `go test`.
func BenchmarkOpenWithKeys(b *testing.B) {
	keys := 1000
	if v := os.Getenv("HSMKMS_BENCH_OPEN_KEYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("HSMKMS_BENCH_OPEN_KEYS=%q: want a positive integer", v)
		}
		keys = n
	}
	cfg := softhsmtest.NewToken(b)
	cfg.Logger = testLogger(b)
	seed, err := hsm.Open(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	for range keys {
		newKey(b, seed)
	}
	if err := seed.Close(); err != nil {
		b.Fatal(err)
	}
	b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
		for b.Loop() {
			d, err := hsm.Open(b.Context(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			if n := hsm.IndexedKeys(d); n != keys {
				b.Fatalf("index holds %d keys, want %d", n, keys)
			}
			if err := d.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

package kms_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hsmkms/kms"
)

// BenchmarkServiceEncrypt measures Encrypt through the service (key
// resolution in SQLite, the nonce guard, the blob) on SoftHSM at 1, 16 and
// 64 goroutines, to compare with hsm's BenchmarkEncryptGCM.
func BenchmarkServiceEncrypt(b *testing.B) {
	benchService(b, func(e *env, keyID string) error {
		_, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: &keyID, Plaintext: make([]byte, 32)})
		return err
	})
}

// BenchmarkServiceGenerateDataKey is the same for GenerateDataKey.
func BenchmarkServiceGenerateDataKey(b *testing.B) {
	spec := "AES_256"
	benchService(b, func(e *env, keyID string) error {
		_, err := e.svc.GenerateDataKey(e.ctx, &kms.GenerateDataKeyInput{KeyId: &keyID, KeySpec: &spec})
		return err
	})
}

func benchService(b *testing.B, op func(e *env, keyID string) error) {
	e := newEnv(b, softHSMDevice)
	out, err := e.svc.CreateKey(e.ctx, &kms.CreateKeyInput{})
	if err != nil {
		b.Fatal(err)
	}
	keyID := out.KeyMetadata.KeyId
	for _, goroutines := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("goroutines=%d", goroutines), func(b *testing.B) {
			var next atomic.Int64
			var failure atomic.Pointer[error]
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range goroutines {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if err := op(e, keyID); err != nil {
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

package main

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// plaintextSize is the Encrypt payload the issue asks to measure: the size
// of a data key, the typical use of KMS Encrypt.
const plaintextSize = 32

// apiOperation builds the request loop of one API operation. keys are the
// key ids to pick from, one at random per request.
type apiOperation struct {
	summary string
	build   func(ctx context.Context, c *kms.Client, keys []string, blobs int) (operation, error)
}

var apiOperations = map[string]apiOperation{
	"encrypt": {"Encrypt, 32-byte plaintext", buildEncrypt},
	"decrypt": {"Decrypt of 32-byte ciphertexts made beforehand (see -decrypt-blobs)", buildDecrypt},
	"generate-data-key": {"GenerateDataKey, KeySpec AES_256", func(_ context.Context, c *kms.Client, keys []string, _ int) (operation, error) {
		return func(ctx context.Context, rng *mrand.Rand) error {
			_, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: pick(keys, rng), KeySpec: types.DataKeySpecAes256})
			return err
		}, nil
	}},
	"generate-random": {"GenerateRandom, 32 bytes (no key)", func(_ context.Context, c *kms.Client, _ []string, _ int) (operation, error) {
		return func(ctx context.Context, _ *mrand.Rand) error {
			_, err := c.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(32)})
			return err
		}, nil
	}},
}

func operationNames() string {
	names := make([]string, 0, len(apiOperations))
	for n := range apiOperations {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func pick(keys []string, rng *mrand.Rand) *string {
	return aws.String(keys[rng.IntN(len(keys))])
}

func buildEncrypt(_ context.Context, c *kms.Client, keys []string, _ int) (operation, error) {
	plaintext := randomBytes(plaintextSize)
	return func(ctx context.Context, rng *mrand.Rand) error {
		_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: pick(keys, rng), Plaintext: plaintext})
		return err
	}, nil
}

// buildDecrypt encrypts one plaintext under each of the first blobs keys
// (spread over many keys like the Encrypt load), then decrypts a random one
// per request. Making a blob for each of 10,000 keys would take longer than
// the measurement itself, hence the cap.
func buildDecrypt(ctx context.Context, c *kms.Client, keys []string, blobs int) (operation, error) {
	keys = keys[:min(len(keys), max(blobs, 1))]
	plaintext := randomBytes(plaintextSize)
	ciphertexts := make([][]byte, len(keys))
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for range min(16, len(keys)) {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(keys)); i = next.Add(1) - 1 {
				out, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keys[i]), Plaintext: plaintext})
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				ciphertexts[i] = out.CiphertextBlob
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("preparing ciphertexts for decrypt: %w", firstErr)
	}
	ciphertexts = slices.DeleteFunc(ciphertexts, func(b []byte) bool { return b == nil })
	return func(ctx context.Context, rng *mrand.Rand) error {
		_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ciphertexts[rng.IntN(len(ciphertexts))]})
		return err
	}, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return b
}

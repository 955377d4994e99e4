package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// listPageSize is the largest ListKeys Limit AWS accepts.
const listPageSize = 1000

// maxListPages bounds pagination, so a server that always answers
// Truncated cannot loop the benchmark forever (10 million keys).
const maxListPages = 10_000

// listKeyIDs returns up to limit key ids (all when limit <= 0) in the
// server's order, following ListKeys markers.
func listKeyIDs(ctx context.Context, c *kms.Client, limit int) ([]string, error) {
	var ids []string
	var marker *string
	for range maxListPages {
		out, err := listKeysPage(ctx, c, marker)
		if err != nil {
			return nil, fmt.Errorf("ListKeys: %w", err)
		}
		for _, k := range out.Keys {
			ids = append(ids, aws.ToString(k.KeyId))
			if limit > 0 && len(ids) == limit {
				return ids, nil
			}
		}
		if !out.Truncated {
			return ids, nil
		}
		marker = out.NextMarker
	}
	return nil, fmt.Errorf("ListKeys: still truncated after %d pages", maxListPages)
}

// listKeysPage is one ListKeys call, retried when the SDK reports its own
// connection closed under it. The client runs without retries (see
// newClient), and with large responses the SDK's transport sometimes fails
// a read with net.ErrClosed although the server answered 200 in full
// (aws-sdk-go-v2 issues 1825 and 2737; its default retryer retries exactly
// this error). Listing is set-up, not measured, so retrying it is honest.
func listKeysPage(ctx context.Context, c *kms.Client, marker *string) (*kms.ListKeysOutput, error) {
	const attempts = 5
	var err error
	for range attempts {
		var out *kms.ListKeysOutput
		out, err = c.ListKeys(ctx, &kms.ListKeysInput{Limit: aws.Int32(listPageSize), Marker: marker})
		if !errors.Is(err, net.ErrClosed) {
			return out, err
		}
	}
	return nil, err
}

// creationReport is what createKeys did.
type creationReport struct {
	created int
	failed  int
	elapsed time.Duration
	err     error // the first failure
}

// createKeys creates n symmetric keys with the given number of workers.
// It stops early after maxFailures failures, so a broken server does not
// get n useless requests.
func createKeys(ctx context.Context, c *kms.Client, n, workers int, description string) creationReport {
	const maxFailures = 100
	var next, created, failed atomic.Int64
	var firstErr error
	var errOnce sync.Once
	start := time.Now()
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for next.Add(1) <= int64(n) && failed.Load() < maxFailures && ctx.Err() == nil {
				_, err := c.CreateKey(ctx, &kms.CreateKeyInput{
					Description: aws.String(description),
					KeySpec:     types.KeySpecSymmetricDefault,
					KeyUsage:    types.KeyUsageTypeEncryptDecrypt,
				})
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
					continue
				}
				created.Add(1)
			}
		})
	}
	wg.Wait()
	r := creationReport{created: int(created.Load()), failed: int(failed.Load()), elapsed: time.Since(start), err: firstErr}
	if r.err == nil && ctx.Err() != nil && r.created < n {
		r.err = ctx.Err()
	}
	return r
}

// ensureKeys returns want key ids, creating the missing ones when create is
// set. Keys already on the server are used first, so repeated runs reuse
// the same keys.
func ensureKeys(ctx context.Context, c *kms.Client, want, workers int, create bool, stderr io.Writer) ([]string, error) {
	ids, err := usableKeyIDs(ctx, c, want)
	if err != nil {
		return nil, err
	}
	if len(ids) >= want {
		return ids, nil
	}
	if !create {
		return nil, fmt.Errorf("the server has %d keys, -keys wants %d: add -create-keys, or run kmsbench mkkeys -n %d -ensure", len(ids), want, want)
	}
	missing := want - len(ids)
	fmt.Fprintf(stderr, "kmsbench: creating %d keys (%d workers)\n", missing, workers)
	r := createKeys(ctx, c, missing, workers, "kmsbench")
	if r.failed > 0 || r.err != nil {
		return nil, errors.Join(fmt.Errorf("created %d of %d keys, %d failed", r.created, missing, r.failed), r.err)
	}
	return usableKeyIDs(ctx, c, want)
}

// describeLimit is the largest key count usableKeyIDs checks one by one;
// larger sets (the 10,000-key token) are made by mkkeys and hold only
// symmetric keys.
const describeLimit = 100

// usableKeyIDs is listKeyIDs keeping only Enabled SYMMETRIC_DEFAULT keys
// when few are wanted: a bench token can also hold the asymmetric and HMAC
// keys of `kmsbench asym`, which Encrypt refuses.
func usableKeyIDs(ctx context.Context, c *kms.Client, want int) ([]string, error) {
	if want > describeLimit {
		return listKeyIDs(ctx, c, want)
	}
	all, err := listKeyIDs(ctx, c, describeLimit)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, id := range all {
		out, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
		if err != nil {
			return nil, fmt.Errorf("DescribeKey: %w", err)
		}
		if md := out.KeyMetadata; md.KeySpec == types.KeySpecSymmetricDefault && md.KeyState == types.KeyStateEnabled {
			ids = append(ids, id)
			if len(ids) == want {
				break
			}
		}
	}
	return ids, nil
}

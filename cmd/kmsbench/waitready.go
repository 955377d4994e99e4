package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

const waitReadySummary = `Measures kmsd start-up. Start kmsd with -addr-file FILE and note the time
just before (date +%s%N); pass both here. kmsbench waits for FILE to appear,
then sends ListKeys until one succeeds, then one Encrypt under the first
listed key (the first request that needs the HSM and the key index), and
prints each time from the start of kmsd. -endpoint is ignored: the address
comes from FILE.`

// pollInterval is how often the addr-file and the server are probed; it
// bounds the measurement error.
const pollInterval = 2 * time.Millisecond

func runWaitReady(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("wait-ready", waitReadySummary, stderr)
	var api apiFlags
	api.register(fs)
	addrFile := fs.String("addr-file", "", "`file` kmsd writes its bound host:port to when it serves (required)")
	startedNS := fs.Int64("started-at", 0, "Unix time in `nanoseconds` at which kmsd was started (required)")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	record := fs.String("record", "", "append the times to this tab-separated `file`")
	label := fs.String("label", "startup", "`name` of this run in the -record file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *addrFile == "" || *startedNS <= 0 {
		return errors.New("-addr-file and -started-at are required")
	}
	started := time.Unix(0, *startedNS)
	ctx, cancel := context.WithDeadline(ctx, started.Add(*timeout))
	defer cancel()

	addr, err := waitForAddrFile(ctx, *addrFile)
	if err != nil {
		return err
	}
	addrAfter := time.Since(started)
	api.endpoint = "http://" + addr
	client, err := api.newClient(ctx, 1)
	if err != nil {
		return err
	}
	keyID, err := waitForListKeys(ctx, client)
	if err != nil {
		return err
	}
	firstAfter := time.Since(started)
	fmt.Fprintf(stdout, "kmsd start-up: addr-file after %.3fs, first successful request (ListKeys) after %.3fs", addrAfter.Seconds(), firstAfter.Seconds())
	rec := newRecorder(*record, *label)
	errs := []error{rec.metric("addr_file_s", addrAfter.Seconds()), rec.metric("first_request_s", firstAfter.Seconds())}
	if keyID != "" {
		if _, err := client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: randomBytes(plaintextSize)}); err != nil {
			fmt.Fprintln(stdout)
			return fmt.Errorf("first Encrypt: %w", err)
		}
		encryptAfter := time.Since(started)
		fmt.Fprintf(stdout, ", first Encrypt after %.3fs", encryptAfter.Seconds())
		errs = append(errs, rec.metric("first_encrypt_s", encryptAfter.Seconds()))
	}
	fmt.Fprintln(stdout)
	return errors.Join(errs...)
}

// waitForAddrFile polls until path holds a complete line (kmsd writes it
// atomically, but a newline check costs nothing) and returns it.
func waitForAddrFile(ctx context.Context, path string) (string, error) {
	for {
		data, err := os.ReadFile(path)
		if err == nil && strings.HasSuffix(string(data), "\n") {
			return strings.TrimSpace(string(data)), nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		if !sleepFor(ctx, pollInterval) {
			return "", fmt.Errorf("waiting for %s: %w", path, ctx.Err())
		}
	}
}

// waitForListKeys sends ListKeys until one succeeds and returns the first
// key id ("" when there are no keys).
func waitForListKeys(ctx context.Context, c *kms.Client) (string, error) {
	var lastErr error
	for {
		ids, err := usableKeyIDs(ctx, c, 1)
		if err == nil {
			if len(ids) == 0 {
				return "", nil
			}
			return ids[0], nil
		}
		lastErr = err
		if !sleepFor(ctx, pollInterval) {
			return "", fmt.Errorf("no successful request before the timeout; last error: %w", lastErr)
		}
	}
}

func sleepFor(ctx context.Context, d time.Duration) bool {
	return sleepUntil(ctx, time.Now().Add(d))
}

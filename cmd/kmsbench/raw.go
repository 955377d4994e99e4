package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"sync/atomic"

	"hsmkms/hsm"
)

const rawSummary = `Benchmarks the raw HSM: AES-256-GCM encryption of 32 bytes through
hsm.PKCS11 (the device kmsd uses, with its session pool and key index), in
this process, at each concurrency. It gives the ceiling for the HTTP rates
of "kmsbench load", and its CPU column is this process's own CPU (SoftHSM
does the cryptography in-process).

The benchmark key is created once in the token (fixed id) and reused. Use a
token of its own: kmsd would report the key as an orphan object. The PIN
comes from the environment variable named by -pin-env, else from -pin-file;
it is never printed.`

// rawKeyID is the backing id of the benchmark key: fixed, so re-runs reuse
// the key instead of adding one per run.
var rawKeyID = func() []byte { h := sha256.Sum256([]byte("kmsbench raw AES-GCM key")); return h[:hsm.BackingIDSize] }()

// softHSMModules are where Debian and Ubuntu install SoftHSM2.
var softHSMModules = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
}

func runRaw(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("raw", rawSummary, stderr)
	var cells cellFlags
	cells.register(fs, "raw")
	module := fs.String("module", firstExisting(softHSMModules), "PKCS#11 module `path`")
	label := fs.String("token-label", "kmsbench-raw", "`label` of the token to benchmark")
	pinEnv := fs.String("pin-env", "KMSBENCH_HSM_PIN", "environment `variable` holding the user PIN")
	pinFile := fs.String("pin-file", "", "`file` holding the user PIN (mode 0600), when the variable is unset")
	initToken := fs.Bool("init-token", false, "create the token (free slot, random SO PIN) when no token has -token-label")
	poolSize := fs.Int("pool-size", 0, "PKCS#11 session pool size (0: the hsm default, as kmsd uses)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := cells.validate(); err != nil {
		return err
	}
	pin, err := readPIN(*pinEnv, *pinFile)
	if err != nil {
		return err
	}
	cfg := hsm.Config{
		ModulePath: *module,
		TokenLabel: *label,
		PIN:        pin,
		PoolSize:   *poolSize,
		Logger:     slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	dev, err := openRawDevice(ctx, cfg, *initToken)
	if err != nil {
		return err
	}
	defer dev.Close()
	if err := dev.GenerateAESKey(ctx, rawKeyID, "kmsbench-raw"); err != nil && !errors.Is(err, hsm.ErrDuplicateID) {
		return fmt.Errorf("creating the benchmark key: %w", err)
	}

	op := rawEncrypt(dev)
	self := os.Getpid()
	cpu := processCPU(self)
	rec := newRecorder(cells.record, cells.label)
	fmt.Fprintf(stdout, "kmsbench raw: AES-256-GCM encrypt of %d bytes on token %q via %s, %s per cell after %s warm-up, %d CPUs\n",
		plaintextSize, *label, *module, cells.duration, cells.warmup, runtime.NumCPU())
	writeTableHeader(stdout, "own-cpu-s/1k")
	for _, n := range cells.concurrency {
		if err := ctx.Err(); err != nil {
			return err
		}
		res := runCell(ctx, cellSpec{name: "hsm-encrypt", concurrency: n, keys: 1,
			warmup: cells.warmup, duration: cells.duration, op: op, cpu: cpu})
		writeTableRow(stdout, res)
		if err := rec.cell(res); err != nil {
			return err
		}
	}
	return nil
}

// openRawDevice opens the token, creating it first when asked and absent.
func openRawDevice(ctx context.Context, cfg hsm.Config, initToken bool) (*hsm.PKCS11, error) {
	dev, err := hsm.Open(ctx, cfg)
	if err == nil || !initToken || !errors.Is(err, hsm.ErrUnavailable) {
		return dev, err
	}
	// The SO PIN is only needed to set the user PIN: a throwaway one will do
	// for a benchmark token.
	soPIN := fmt.Sprintf("%x", randomBytes(16))
	if err := hsm.InitToken(ctx, cfg.ModulePath, cfg.TokenLabel, soPIN, cfg.PIN); err != nil {
		return nil, fmt.Errorf("creating token %q: %w", cfg.TokenLabel, err)
	}
	return hsm.Open(ctx, cfg)
}

// rawEncrypt encrypts 32 bytes per call with a distinct IV each time: a
// random per-run prefix and a shared counter, as the service does, so
// SoftHSM never sees a repeated nonce.
func rawEncrypt(dev *hsm.PKCS11) operation {
	plaintext := randomBytes(plaintextSize)
	prefix := binary.BigEndian.Uint32(randomBytes(4))
	var counter atomic.Uint64
	return func(ctx context.Context, _ *rand.Rand) error {
		iv := make([]byte, hsm.IVSize)
		binary.BigEndian.PutUint32(iv, prefix)
		binary.BigEndian.PutUint64(iv[4:], counter.Add(1))
		_, err := dev.EncryptGCM(ctx, rawKeyID, iv, plaintext, nil)
		return err
	}
}

func firstExisting(paths []string) string {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return paths[0]
}

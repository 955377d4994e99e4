package main

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"hsmkms/hsm"
)

const asymSummary = `Benchmarks the asymmetric and HMAC operations in one run: for each of
Sign (ECC_NIST_P256, ECDSA_SHA_256), Sign (RSA_2048, RSASSA_PSS_SHA_256),
Verify (ECC_NIST_P256) and GenerateMac (HMAC_256, HMAC_SHA_256), first the
raw in-process rate of the same mechanism on a token of this process (the
hsm.PKCS11 device kmsd uses), then the rate through a running kmsd with the
AWS SDK, at each concurrency, and the ratio API/raw.

The kmsd keys are created through the API at start; the raw keys live in
the -token-label token under fixed ids and are reused. The PIN of the raw
token comes from -pin-env or -pin-file and is never printed.`

// asymCase is one measured mechanism: its raw device call and its API call.
type asymCase struct {
	name string
	raw  operation
	api  operation
}

func rawKey(name string) []byte {
	h := sha256.Sum256([]byte("kmsbench asym " + name))
	return h[:hsm.BackingIDSize]
}

func runAsym(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("asym", asymSummary, stderr)
	var api apiFlags
	var cells cellFlags
	api.register(fs)
	cells.register(fs, "asym")
	module := fs.String("module", firstExisting(softHSMModules), "PKCS#11 module `path` of the raw token")
	label := fs.String("token-label", "kmsbench-raw", "`label` of the raw token")
	pinEnv := fs.String("pin-env", "KMSBENCH_HSM_PIN", "environment `variable` holding the raw token's user PIN")
	pinFile := fs.String("pin-file", "", "`file` holding the raw token's user PIN, when the variable is unset")
	initToken := fs.Bool("init-token", false, "create the raw token when no token has -token-label")
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
	dev, err := openRawDevice(ctx, hsm.Config{ModulePath: *module, TokenLabel: *label, PIN: pin,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}, *initToken)
	if err != nil {
		return err
	}
	defer dev.Close()
	client, err := api.newClient(ctx, slices.Max(cells.concurrency))
	if err != nil {
		return err
	}
	cases, err := buildAsymCases(ctx, dev, client)
	if err != nil {
		return err
	}
	self := os.Getpid()
	cpu := processCPU(self)
	rec := newRecorder(cells.record, cells.label)
	fmt.Fprintf(stdout, "kmsbench asym: raw token %q in this process vs kmsd at %s, %s per cell after %s warm-up, %d CPUs shared\n",
		*label, api.endpoint, cells.duration, cells.warmup, runtime.NumCPU())
	writeTableHeader(stdout, "own-cpu-s/1k")
	type ratio struct {
		name      string
		c         int
		raw, http float64
	}
	var ratios []ratio
	for _, tc := range cases {
		for _, n := range cells.concurrency {
			if err := ctx.Err(); err != nil {
				return err
			}
			raw := runCell(ctx, cellSpec{name: "hsm-" + tc.name, concurrency: n, keys: 1, warmup: cells.warmup, duration: cells.duration, op: tc.raw, cpu: cpu})
			writeTableRow(stdout, raw)
			viaAPI := runCell(ctx, cellSpec{name: "api-" + tc.name, concurrency: n, keys: 1, warmup: cells.warmup, duration: cells.duration, op: tc.api, cpu: cpu})
			writeTableRow(stdout, viaAPI)
			for _, r := range []cellResult{raw, viaAPI} {
				if err := rec.cell(r); err != nil {
					return err
				}
			}
			ratios = append(ratios, ratio{tc.name, n, raw.rate(), viaAPI.rate()})
		}
	}
	fmt.Fprintln(stdout, "\nAPI rate as a share of the raw HSM rate (same mechanism, same run):")
	for _, r := range ratios {
		share := 0.0
		if r.raw > 0 {
			share = r.http / r.raw
		}
		fmt.Fprintf(stdout, "  %-22s c=%-3d raw %9.0f/s  api %9.0f/s  api/raw %.2f\n", r.name, r.c, r.raw, r.http, share)
		if err := rec.metric(fmt.Sprintf("ratio_%s_c%d", r.name, r.c), share); err != nil {
			return err
		}
	}
	return nil
}

func buildAsymCases(ctx context.Context, dev *hsm.PKCS11, c *kms.Client) ([]asymCase, error) {
	ecID, rsaID, macID := rawKey("ecc-p256"), rawKey("rsa-2048-sign"), rawKey("hmac-256")
	if _, err := dev.GenerateECKeyPair(ctx, ecID, "kmsbench-asym", hsm.CurveP256); err != nil && !errors.Is(err, hsm.ErrDuplicateID) {
		return nil, err
	}
	if _, err := dev.GenerateRSAKeyPair(ctx, rsaID, "kmsbench-asym", 2048, hsm.PairSign); err != nil && !errors.Is(err, hsm.ErrDuplicateID) {
		return nil, err
	}
	if err := dev.GenerateHMACKey(ctx, macID, "kmsbench-asym", 32); err != nil && !errors.Is(err, hsm.ErrDuplicateID) {
		return nil, err
	}
	create := func(spec types.KeySpec, usage types.KeyUsageType) (*string, error) {
		out, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: spec, KeyUsage: usage, Description: aws.String("kmsbench asym")})
		if err != nil {
			return nil, fmt.Errorf("CreateKey %s: %w", spec, err)
		}
		return out.KeyMetadata.KeyId, nil
	}
	ecKey, err := create(types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
	if err != nil {
		return nil, err
	}
	rsaKey, err := create(types.KeySpecRsa2048, types.KeyUsageTypeSignVerify)
	if err != nil {
		return nil, err
	}
	macKey, err := create(types.KeySpecHmac256, types.KeyUsageTypeGenerateVerifyMac)
	if err != nil {
		return nil, err
	}
	message := randomBytes(plaintextSize)
	digest := sha256.Sum256(message)
	ecdsa := hsm.SignParams{Scheme: hsm.SchemeECDSA, Hash: crypto.SHA256, Curve: hsm.CurveP256}
	pss := hsm.SignParams{Scheme: hsm.SchemeRSAPSS, Hash: crypto.SHA256}
	rawSig, err := dev.Sign(ctx, ecID, ecdsa, digest[:])
	if err != nil {
		return nil, err
	}
	apiSig, err := c.Sign(ctx, &kms.SignInput{KeyId: ecKey, Message: message, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	if err != nil {
		return nil, err
	}
	return []asymCase{
		{"sign-ecc-p256",
			func(ctx context.Context, _ *rand.Rand) error {
				_, err := dev.Sign(ctx, ecID, ecdsa, digest[:])
				return err
			},
			func(ctx context.Context, _ *rand.Rand) error {
				_, err := c.Sign(ctx, &kms.SignInput{KeyId: ecKey, Message: message, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
				return err
			}},
		{"sign-rsa-2048-pss",
			func(ctx context.Context, _ *rand.Rand) error {
				_, err := dev.Sign(ctx, rsaID, pss, digest[:])
				return err
			},
			func(ctx context.Context, _ *rand.Rand) error {
				_, err := c.Sign(ctx, &kms.SignInput{KeyId: rsaKey, Message: message, SigningAlgorithm: types.SigningAlgorithmSpecRsassaPssSha256})
				return err
			}},
		{"verify-ecc-p256",
			func(ctx context.Context, _ *rand.Rand) error { return dev.Verify(ctx, ecID, ecdsa, digest[:], rawSig) },
			func(ctx context.Context, _ *rand.Rand) error {
				_, err := c.Verify(ctx, &kms.VerifyInput{KeyId: ecKey, Message: message, Signature: apiSig.Signature, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
				return err
			}},
		{"generate-mac-hmac-256",
			func(ctx context.Context, _ *rand.Rand) error {
				_, err := dev.MAC(ctx, macID, crypto.SHA256, message)
				return err
			},
			func(ctx context.Context, _ *rand.Rand) error {
				_, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: macKey, Message: message, MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
				return err
			}},
	}, nil
}

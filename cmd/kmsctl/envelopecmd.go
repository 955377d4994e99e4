package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"hsmkms/kms/envelope"
	"hsmkms/kms/envelope/cache"
	"hsmkms/kms/envelope/format"
)

func init() {
	register(&Command{
		Path:    "encrypt",
		Summary: "envelope-encrypt files or stdin into AWS Encryption SDK messages",
		Usage:   "--key-id KEY [flags] [FILE...]   (no FILE or -: stdin to stdout)",
		Flags:   func(fs *flag.FlagSet) { encFlags.add(fs, true) },
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			return runEnvelope(ctx, e, &encFlags, args, true)
		},
	})
	register(&Command{
		Path:    "decrypt",
		Summary: "decrypt AWS Encryption SDK messages (from kmsctl or any ESDK)",
		Usage:   "[flags] [FILE...]   (no FILE or -: stdin to stdout)",
		Flags:   func(fs *flag.FlagSet) { decFlags.add(fs, false) },
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			return runEnvelope(ctx, e, &decFlags, args, false)
		},
	})
}

var encFlags, decFlags envelopeFlags

type envelopeFlags struct {
	keys               multiFlag
	context            kvFlag
	frameSize          int
	suite              string
	out                string
	force              bool
	progress           string
	summary            bool
	cacheMaxAge        time.Duration
	cacheMaxBytes      uint64
	cacheMaxMessages   uint64
	cacheCapacity      int
	discoveryAccounts  multiFlag
	discoveryPartition string
	unsafeStreaming    bool
	bufferDir          string
	maxDataKeys        int
}

func (f *envelopeFlags) add(fs *flag.FlagSet, enc bool) {
	*f = envelopeFlags{context: kvFlag{}}
	if enc {
		fs.Var(&f.keys, "key-id", "KMS key (id, ARN, alias name or alias ARN); the first makes the data key, each further one also encrypts it (repeatable, required)")
		fs.IntVar(&f.frameSize, "frame-size", envelope.DefaultFrameLength, "plaintext bytes per frame")
		fs.StringVar(&f.suite, "suite", "0x0578", "algorithm suite: 0x0578 (signed, default) or 0x0478 (unsigned)")
		fs.Var(&f.context, "encryption-context", "KEY=VALUE stored in the message and bound to the data key (repeatable)")
	} else {
		fs.Var(&f.keys, "key-id", "key ARN allowed to decrypt (repeatable); none: any key the message names (discovery)")
		fs.Var(&f.discoveryAccounts, "discovery-account", "in discovery, only keys of this account (repeatable)")
		fs.StringVar(&f.discoveryPartition, "discovery-partition", "aws", "in discovery with --discovery-account, the keys' partition")
		fs.Var(&f.context, "encryption-context", "KEY=VALUE the message's context must contain (repeatable)")
		fs.BoolVar(&f.unsafeStreaming, "unsafe-streaming", false, "to stdout: release plaintext before a signed message's signature is verified (files are always published only after verification)")
		fs.StringVar(&f.bufferDir, "buffer-dir", "", "where signed messages decrypted to stdout are spooled (ciphertext only; default $TMPDIR)")
	}
	// On encrypt too, so that kmsctl never writes by default a message its
	// own decrypt refuses by default.
	fs.IntVar(&f.maxDataKeys, "max-encrypted-data-keys", defaultMaxDataKeys,
		"refuse messages with more encrypted data keys than this (each one a decrypting keyring tries is a KMS call; 0: the format's 65535)")
	fs.StringVar(&f.out, "out", "", "output file, or directory for several inputs; - for stdout (default: FILE.enc / FILE without .enc)")
	fs.StringVar(&f.out, "o", "", "short for --out")
	fs.BoolVar(&f.force, "force", false, "replace an existing output file (never the input)")
	fs.StringVar(&f.progress, "progress", "auto", "progress bar on stderr: auto (only on a terminal), always, never")
	fs.BoolVar(&f.summary, "summary", false, "print a JSON summary per file on stderr (sizes, suite, KMS calls)")
	fs.DurationVar(&f.cacheMaxAge, "cache-max-age", 0, "cache data keys for this long (enables the caching CMM; for several files per run)")
	fs.Uint64Var(&f.cacheMaxBytes, "cache-max-bytes", 0, "with caching: most plaintext bytes per data key (0: 2^63-1)")
	fs.Uint64Var(&f.cacheMaxMessages, "cache-max-messages", 0, "with caching: most messages per data key (0: 2^32, the maximum)")
	fs.IntVar(&f.cacheCapacity, "cache-capacity", 100, "with caching: entries held")
}

// countingKMS counts the KMS calls of a run (reported by --summary).
type countingKMS struct {
	envelope.KMSClient
	gdk, enc, dec atomic.Int64
}

func (c *countingKMS) GenerateDataKey(ctx context.Context, in *awskms.GenerateDataKeyInput, o ...func(*awskms.Options)) (*awskms.GenerateDataKeyOutput, error) {
	c.gdk.Add(1)
	return c.KMSClient.GenerateDataKey(ctx, in, o...)
}

func (c *countingKMS) Encrypt(ctx context.Context, in *awskms.EncryptInput, o ...func(*awskms.Options)) (*awskms.EncryptOutput, error) {
	c.enc.Add(1)
	return c.KMSClient.Encrypt(ctx, in, o...)
}

func (c *countingKMS) Decrypt(ctx context.Context, in *awskms.DecryptInput, o ...func(*awskms.Options)) (*awskms.DecryptOutput, error) {
	c.dec.Add(1)
	return c.KMSClient.Decrypt(ctx, in, o...)
}

func runEnvelope(ctx context.Context, e *Env, f *envelopeFlags, args []string, enc bool) error {
	if enc && len(f.keys) == 0 {
		return usagef("--key-id is required")
	}
	var suite *format.Suite
	if enc {
		id, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(f.suite), "0x"), 16, 16)
		if err != nil || (id != 0x0578 && id != 0x0478) {
			return usagef("--suite %q: want 0x0578 or 0x0478", f.suite)
		}
		suite = format.SuiteByID(uint16(id))
	}
	if f.maxDataKeys < 0 {
		return usagef("--max-encrypted-data-keys %d: want 0 (the format's 65535) or more", f.maxDataKeys)
	}
	if enc && f.maxDataKeys > 0 && len(f.keys) > f.maxDataKeys {
		// Before any KMS call: the library's own check comes after every key has wrapped the data key.
		return usagef("%d --key-id exceed --max-encrypted-data-keys %d (kmsctl decrypt refuses such a message unless allowed as many)", len(f.keys), f.maxDataKeys)
	}
	if f.progress != "auto" && f.progress != "always" && f.progress != "never" {
		return usagef("--progress %q: want auto, always or never", f.progress)
	}
	if f.cacheMaxAge == 0 && (f.cacheMaxBytes != 0 || f.cacheMaxMessages != 0) {
		return usagef("--cache-max-bytes and --cache-max-messages need --cache-max-age")
	}
	if len(args) == 0 {
		args = []string{"-"}
	}
	if len(args) > 1 {
		for _, a := range args {
			if a == "-" {
				return usagef("stdin (-) can only be the sole input")
			}
		}
		if f.out == "-" {
			return usagef("several inputs cannot all go to stdout")
		}
		if f.out != "" {
			if st, err := os.Stat(f.out); err != nil || !st.IsDir() {
				return usagef("with several inputs, --out must be an existing directory")
			}
		}
	}

	sdk, err := e.kmsClient(ctx)
	if err != nil {
		return err
	}
	counter := &countingKMS{KMSClient: sdk}
	kr := &envelope.KMSKeyring{Client: counter}
	if enc {
		kr.Generator, kr.AdditionalKeys = f.keys[0], f.keys[1:]
	} else if len(f.keys) > 0 {
		kr.AdditionalKeys = f.keys
	} else {
		kr.Discovery = true
		if len(f.discoveryAccounts) > 0 {
			kr.DiscoveryFilter = &envelope.DiscoveryFilter{Partition: f.discoveryPartition, AccountIDs: f.discoveryAccounts}
		}
	}
	var cmm envelope.CMM = envelope.NewDefaultCMM(kr)
	if f.cacheMaxAge > 0 {
		c, err := cache.New(cmm, cache.Options{Capacity: f.cacheCapacity, MaxAge: f.cacheMaxAge, MaxBytes: f.cacheMaxBytes, MaxMessages: f.cacheMaxMessages})
		if err != nil {
			return usagef("%v", err)
		}
		cmm = c
	}
	client := envelope.New(cmm)
	client.MaxEncryptedDataKeys = f.maxDataKeys
	if err := checkOutputs(e, f, args, enc); err != nil {
		return err
	}

	for _, in := range args {
		before := [3]int64{counter.gdk.Load(), counter.enc.Load(), counter.dec.Load()}
		start := time.Now()
		info, out, err := processOne(ctx, e, f, client, in, enc, suite)
		if err != nil {
			if len(args) > 1 {
				return fmt.Errorf("%s: %w", in, err)
			}
			return err
		}
		if f.summary {
			s := map[string]any{
				"input": in, "output": out, "suite": fmt.Sprintf("0x%04X", info.Suite.ID),
				"plaintextBytes": info.PlaintextLength, "ciphertextBytes": info.CiphertextLength,
				"seconds":  time.Since(start).Seconds(),
				"kmsCalls": map[string]int64{"GenerateDataKey": counter.gdk.Load() - before[0], "Encrypt": counter.enc.Load() - before[1], "Decrypt": counter.dec.Load() - before[2]},
				"keyArns":  info.KeyARNs,
			}
			b, _ := json.Marshal(s)
			fmt.Fprintln(e.Stderr, string(b))
		}
	}
	return nil
}

// processOne encrypts or decrypts one input and returns where it went.
func processOne(ctx context.Context, e *Env, f *envelopeFlags, client *envelope.Client, in string, enc bool, suite *format.Suite) (*envelope.MessageInfo, string, error) {
	var src io.Reader = e.Stdin
	if in == "-" && !isRegularFile(e.Stdin) {
		r, stop := readUntilDone(ctx, e.Stdin)
		defer stop()
		src = r
	}
	size := int64(-1)
	if in != "-" {
		file, err := os.Open(in)
		if err != nil {
			return nil, "", err
		}
		defer file.Close()
		st, err := file.Stat()
		if err != nil {
			return nil, "", err
		}
		if !st.Mode().IsRegular() {
			return nil, "", usagef("%s is not a regular file", in)
		}
		// Read ahead, from the page cache or straight from the disk
		// (input.go).
		fin := newFileInput(file, st.Size())
		defer fin.Close()
		src, size = fin, st.Size()
	}
	out := outputPath(f.out, in, enc)
	show := f.progress == "always" || (f.progress == "auto" && e.StderrIsTerminal)
	label := "decrypt"
	if enc {
		label = "encrypt"
	}
	prog := newProgress(src, size, e.Stderr, label, show)
	defer prog.Close()

	var dst io.Writer = e.Stdout
	var af *atomicFile
	if out != "-" {
		var err error
		if af, err = createAtomic(out, inputOrEmpty(in), f.force); err != nil {
			return nil, "", err
		}
		defer af.Abort() // no-op after Commit
		dst = af
	}
	var info *envelope.MessageInfo
	var err error
	if enc {
		opts := envelope.EncryptOptions{EncryptionContext: f.context, Suite: suite, FrameLength: f.frameSize}
		if size > 0 {
			opts.PlaintextLength = size
		}
		info, err = client.Encrypt(ctx, dst, prog, opts)
	} else {
		opts := envelope.DecryptOptions{EncryptionContext: f.context, TempDir: f.bufferDir,
			// A file is renamed into place only after Decrypt returns
			// success, so nothing unauthenticated is ever published under
			// its name: streaming into it is safe and saves a pass.
			UnsafeStreaming: af != nil || f.unsafeStreaming}
		info, err = client.Decrypt(ctx, dst, prog, opts)
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, "", err
	}
	if af != nil {
		if err := af.Commit(); err != nil {
			return nil, "", err
		}
	}
	return info, out, nil
}

// readUntilDone reads r through a pipe that fails with ctx's error once
// ctx is done: a read from a terminal or a pipe that stays open but sends
// nothing would otherwise hold off an interrupt (and the cleanup of the
// temporary output) until the writer closes it. The copying goroutine may
// stay blocked in r's read; the process is about to exit then. stop
// releases the context callback and ends the copy at its next write when
// the caller is done with the reader early (an error mid-stream).
func readUntilDone(ctx context.Context, r io.Reader) (_ io.Reader, stop func()) {
	pr, pw := io.Pipe()
	go func() {
		_, err := io.CopyBuffer(pw, r, make([]byte, 1<<20))
		pw.CloseWithError(err)
	}()
	stopAfter := context.AfterFunc(ctx, func() { pw.CloseWithError(ctx.Err()) }) // a blocked Read returns it
	return pr, func() {
		stopAfter()
		pr.Close()
	}
}

// isRegularFile reports whether r is a regular file, whose reads never wait.
func isRegularFile(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode().IsRegular()
}

// defaultMaxDataKeys bounds the encrypted data keys kmsctl decrypt accepts
// (and encrypt writes):
// an untrusted message can list thousands, each of which the keyring would
// try with a KMS Decrypt call (the ESDK's CLI has the same option).
const defaultMaxDataKeys = 10

// checkOutputs refuses, before anything is written, an output that is one
// of the inputs (by another path, or stdin redirected from it) or that two
// inputs share: with --force, an earlier file's output would otherwise
// replace a later input before it is read.
func checkOutputs(e *Env, f *envelopeFlags, args []string, enc bool) error {
	type input struct {
		name string
		st   os.FileInfo
	}
	var inputs []input
	for _, in := range args {
		if in == "-" {
			if file, ok := e.Stdin.(*os.File); ok {
				if st, err := file.Stat(); err == nil && st.Mode().IsRegular() {
					inputs = append(inputs, input{"stdin", st})
				}
			}
			continue
		}
		if st, err := os.Stat(in); err == nil {
			inputs = append(inputs, input{in, st})
		}
	}
	outputs := map[string]string{}
	for _, in := range args {
		out := outputPath(f.out, in, enc)
		if out == "-" {
			continue
		}
		abs, err := filepath.Abs(out)
		if err != nil {
			return err
		}
		if other, dup := outputs[abs]; dup {
			return usagef("%s and %s would both be written to %s", other, in, out)
		}
		outputs[abs] = in
		st, err := os.Stat(out)
		if err != nil {
			continue
		}
		for _, i := range inputs {
			if os.SameFile(st, i.st) {
				return usagef("output %s is the input file %s", out, i.name)
			}
		}
	}
	return nil
}

func inputOrEmpty(in string) string {
	if in == "-" {
		return ""
	}
	return in
}

// outputPath: explicit file, directory + derived name, stdout for stdin,
// or the derived name next to the input (FILE.enc; FILE.enc -> FILE,
// otherwise FILE.dec).
func outputPath(out, in string, enc bool) string {
	if in == "-" && (out == "" || out == "-") {
		return "-"
	}
	derive := func(p string) string {
		if enc {
			return p + ".enc"
		}
		if s, ok := strings.CutSuffix(p, ".enc"); ok && s != "" && !strings.HasSuffix(s, string(filepath.Separator)) {
			return s
		}
		return p + ".dec"
	}
	if out == "" {
		return derive(in)
	}
	if st, err := os.Stat(out); err == nil && st.IsDir() && in != "-" {
		return filepath.Join(out, derive(filepath.Base(in)))
	}
	return out
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// kvFlag is a repeatable KEY=VALUE flag.
type kvFlag map[string]string

func (k kvFlag) String() string { return "" }
func (k kvFlag) Set(v string) error {
	key, val, ok := strings.Cut(v, "=")
	if !ok || key == "" {
		return fmt.Errorf("want KEY=VALUE")
	}
	if _, dup := k[key]; dup {
		return fmt.Errorf("key %q given twice", key)
	}
	k[key] = val
	return nil
}

package envelope_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"hsmkms/kms/envelope"
	"hsmkms/kms/envelope/format"
	"hsmkms/kms/envelope/internal/fakekms"
)

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func encrypt(t testing.TB, c *envelope.Client, pt []byte, opts envelope.EncryptOptions) []byte {
	t.Helper()
	var out bytes.Buffer
	info, err := c.Encrypt(t.Context(), &out, bytes.NewReader(pt), opts)
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	if info.PlaintextLength != int64(len(pt)) || info.CiphertextLength != int64(out.Len()) {
		t.Fatalf("Encrypt info: %d/%d bytes, want %d/%d", info.PlaintextLength, info.CiphertextLength, len(pt), out.Len())
	}
	return out.Bytes()
}

// kinds lists every error kind, to name the one an error has.
var kinds = []*envelope.Error{envelope.ErrWrongKey, envelope.ErrTamperedHeader, envelope.ErrTamperedBody, envelope.ErrBadSignature, envelope.ErrTruncated, envelope.ErrMalformed, envelope.ErrUnsupported, envelope.ErrEncryptionContext, envelope.ErrKMS, envelope.ErrInvalidArgument}

func kindOf(err error) envelope.Kind {
	for _, k := range kinds {
		if errors.Is(err, k) {
			return k.Kind
		}
	}
	return 0
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	kms := fakekms.New()
	key := kms.CreateKey("")
	c := envelope.NewKMS(kms, key)
	const frame = 128
	sizes := []int{0, 1, frame - 1, frame, frame + 1, 5 * frame, 5*frame + 7, 70000}
	for _, suite := range []*format.Suite{nil, format.AES256HKDFSHA512CommitKeyECDSAP384, format.AES256HKDFSHA512CommitKey} {
		for _, size := range sizes {
			for _, streaming := range []bool{false, true} {
				name := fmt.Sprintf("%v/%d/streaming=%v", suite, size, streaming)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					pt := randBytes(t, size)
					ec := map[string]string{"purpose": "test", "size": fmt.Sprint(size)}
					msg := encrypt(t, c, pt, envelope.EncryptOptions{EncryptionContext: ec, Suite: suite, FrameLength: frame})
					var out bytes.Buffer
					info, err := c.Decrypt(t.Context(), &out, bytes.NewReader(msg), envelope.DecryptOptions{EncryptionContext: ec, UnsafeStreaming: streaming})
					if err != nil {
						t.Fatalf("Decrypt: %v", err)
					}
					if !bytes.Equal(out.Bytes(), pt) {
						t.Fatalf("plaintext differs (%d vs %d bytes)", out.Len(), len(pt))
					}
					wantSuite := suite
					if wantSuite == nil {
						wantSuite = format.DefaultSuite
					}
					if info.Suite != wantSuite || info.EncryptionContext["purpose"] != "test" || len(info.KeyARNs) != 1 || info.KeyARNs[0] != key {
						t.Fatalf("info: %+v", info)
					}
					if _, has := info.EncryptionContext[envelope.PublicKeyContextKey]; has != wantSuite.Signed() {
						t.Fatalf("public key in context: %v, signed suite: %v", has, wantSuite.Signed())
					}
				})
			}
		}
	}
}

// TestLegacySuites decrypts messages of every message format version 1
// suite (made with the ForbidEncryptAllowDecrypt policy) and refuses them
// under RequireEncryptRequireDecrypt.
func TestLegacySuites(t *testing.T) {
	t.Parallel()
	kms := fakekms.New()
	key := kms.CreateKey("")
	legacy := envelope.NewKMS(kms, key)
	legacy.Policy = envelope.ForbidEncryptAllowDecrypt
	reader := envelope.NewKMS(kms, key)
	strict := envelope.NewKMS(kms, key)
	strict.Policy = envelope.RequireEncryptRequireDecrypt
	for _, s := range format.Suites() {
		if s.Committing {
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			t.Parallel()
			pt := randBytes(t, 1000)
			msg := encrypt(t, legacy, pt, envelope.EncryptOptions{Suite: s, FrameLength: 100, EncryptionContext: map[string]string{"a": "b"}})
			if msg[0] != 1 {
				t.Fatalf("version %d, want 1", msg[0])
			}
			var out bytes.Buffer
			if _, err := reader.Decrypt(t.Context(), &out, bytes.NewReader(msg), envelope.DecryptOptions{}); err != nil || !bytes.Equal(out.Bytes(), pt) {
				t.Fatalf("Decrypt: %v", err)
			}
			out.Reset()
			if _, err := strict.Decrypt(t.Context(), &out, bytes.NewReader(msg), envelope.DecryptOptions{}); !errors.Is(err, envelope.ErrUnsupported) || out.Len() != 0 {
				t.Fatalf("strict policy: %v, %d bytes out", err, out.Len())
			}
		})
	}
	// Encrypt refuses non-committing suites under the default policy.
	if _, err := reader.Encrypt(t.Context(), io.Discard, bytes.NewReader(nil), envelope.EncryptOptions{Suite: format.AES256HKDFSHA256}); !errors.Is(err, envelope.ErrInvalidArgument) {
		t.Fatalf("Encrypt with 0x0178: %v", err)
	}
}

// TestNonFramed decrypts a non-framed (content type 1) version 1 message
// built from the format primitives, signed and unsigned.
func TestNonFramed(t *testing.T) {
	t.Parallel()
	kms := fakekms.New()
	key := kms.CreateKey("")
	legacy := envelope.NewKMS(kms, key)
	legacy.Policy = envelope.ForbidEncryptAllowDecrypt
	for _, s := range []*format.Suite{format.AES256HKDFSHA256, format.AES256HKDFSHA384ECDSAP384, format.AES128NoKDF} {
		pt := randBytes(t, 3000)
		// Make a framed message for its header materials, then rewrite the
		// body as non-framed: simplest with a dedicated helper.
		msg := nonFramedMessage(t, kms, key, s, pt)
		var out bytes.Buffer
		if _, err := legacy.Decrypt(t.Context(), &out, bytes.NewReader(msg), envelope.DecryptOptions{}); err != nil || !bytes.Equal(out.Bytes(), pt) {
			t.Fatalf("%s: Decrypt: %v", s.Name, err)
		}
		// The in-memory limit is enforced before the body is read.
		if _, err := legacy.Decrypt(t.Context(), io.Discard, bytes.NewReader(msg), envelope.DecryptOptions{MaxNonFramedLength: 100}); !errors.Is(err, envelope.ErrUnsupported) {
			t.Fatalf("%s: over the limit: %v", s.Name, err)
		}
		// A flipped body byte fails authentication and releases nothing.
		bad := bytes.Clone(msg)
		bad[len(bad)-200] ^= 1
		out.Reset()
		if _, err := legacy.Decrypt(t.Context(), &out, bytes.NewReader(bad), envelope.DecryptOptions{}); err == nil || out.Len() != 0 {
			t.Fatalf("%s: tampered non-framed: %v, %d bytes out", s.Name, err, out.Len())
		}
	}
}

func TestEncryptionContextAndKeys(t *testing.T) {
	t.Parallel()
	kms := fakekms.New()
	k1, k2, other := kms.CreateKey(""), kms.CreateKey(""), kms.CreateKey("444455556666")
	kms.Alias("alias/gen", k1)
	c := envelope.NewKMS(kms, "alias/gen", k2)
	pt := []byte("hello")
	ec := map[string]string{"tenant": "a"}
	msg := encrypt(t, c, pt, envelope.EncryptOptions{EncryptionContext: ec})

	dec := func(kr *envelope.KMSKeyring, opts envelope.DecryptOptions) ([]byte, error) {
		var out bytes.Buffer
		_, err := envelope.New(envelope.NewDefaultCMM(kr)).Decrypt(t.Context(), &out, bytes.NewReader(msg), opts)
		return out.Bytes(), err
	}
	cases := []struct {
		name string
		kr   *envelope.KMSKeyring
		opts envelope.DecryptOptions
		want *envelope.Error
	}{
		{"generator ARN", &envelope.KMSKeyring{Client: kms, Generator: k1}, envelope.DecryptOptions{}, nil},
		{"additional key alone", &envelope.KMSKeyring{Client: kms, AdditionalKeys: []string{k2}}, envelope.DecryptOptions{}, nil},
		{"unrelated key", &envelope.KMSKeyring{Client: kms, Generator: other}, envelope.DecryptOptions{}, envelope.ErrWrongKey},
		{"discovery", &envelope.KMSKeyring{Client: kms, Discovery: true}, envelope.DecryptOptions{}, nil},
		{"discovery, account filter matches", &envelope.KMSKeyring{Client: kms, Discovery: true, DiscoveryFilter: &envelope.DiscoveryFilter{Partition: "aws", AccountIDs: []string{fakekms.Account}}}, envelope.DecryptOptions{}, nil},
		{"discovery, other account", &envelope.KMSKeyring{Client: kms, Discovery: true, DiscoveryFilter: &envelope.DiscoveryFilter{Partition: "aws", AccountIDs: []string{"444455556666"}}}, envelope.DecryptOptions{}, envelope.ErrWrongKey},
		{"discovery, other partition", &envelope.KMSKeyring{Client: kms, Discovery: true, DiscoveryFilter: &envelope.DiscoveryFilter{Partition: "aws-cn", AccountIDs: []string{fakekms.Account}}}, envelope.DecryptOptions{}, envelope.ErrWrongKey},
		// A filter missing either half is refused, not read as "any"
		// (before, a partition alone admitted every account).
		{"discovery, partition only", &envelope.KMSKeyring{Client: kms, Discovery: true, DiscoveryFilter: &envelope.DiscoveryFilter{Partition: "aws"}}, envelope.DecryptOptions{}, envelope.ErrInvalidArgument},
		{"discovery, accounts only", &envelope.KMSKeyring{Client: kms, Discovery: true, DiscoveryFilter: &envelope.DiscoveryFilter{AccountIDs: []string{fakekms.Account}}}, envelope.DecryptOptions{}, envelope.ErrInvalidArgument},
		{"required context present", &envelope.KMSKeyring{Client: kms, Discovery: true}, envelope.DecryptOptions{EncryptionContext: ec}, nil},
		{"required context differs", &envelope.KMSKeyring{Client: kms, Discovery: true}, envelope.DecryptOptions{EncryptionContext: map[string]string{"tenant": "b"}}, envelope.ErrEncryptionContext},
		{"required context missing", &envelope.KMSKeyring{Client: kms, Discovery: true}, envelope.DecryptOptions{EncryptionContext: map[string]string{"x": "y"}}, envelope.ErrEncryptionContext},
	}
	for _, tc := range cases {
		got, err := dec(tc.kr, tc.opts)
		if tc.want == nil {
			if err != nil || !bytes.Equal(got, pt) {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) || len(got) != 0 {
			t.Errorf("%s: error %v, want %v; %d bytes out", tc.name, err, tc.want, len(got))
		}
	}
	// An aws-kms data key that names no key ARN fails the keyring
	// (aws-kms-keyring.md: "MUST be a valid AWS KMS ARN ... or OnDecrypt
	// MUST fail"); before, it was skipped.
	bad := format.EDK{ProviderID: format.ProviderAWSKMS, ProviderInfo: []byte("alias/not-a-key-arn"), Ciphertext: []byte{1}}
	if err := (&envelope.KMSKeyring{Client: kms, Discovery: true}).OnDecrypt(t.Context(), &envelope.DecryptionMaterials{Suite: format.SuiteByID(0x0478)}, []format.EDK{bad}); !errors.Is(err, envelope.ErrMalformed) {
		t.Errorf("an aws-kms data key without a key ARN: %v", err)
	}
	// Reserved context keys are refused on encrypt.
	if _, err := c.Encrypt(t.Context(), io.Discard, bytes.NewReader(pt), envelope.EncryptOptions{EncryptionContext: map[string]string{"aws-crypto-x": "1"}}); !errors.Is(err, envelope.ErrEncryptionContext) {
		t.Errorf("reserved key: %v", err)
	}
	// A keyring configured with an alias matches no EDK: as in the ESDK,
	// decrypt matches key ARNs only.
	if _, err := envelope.NewKMS(kms, "alias/gen").Decrypt(t.Context(), io.Discard, bytes.NewReader(msg), envelope.DecryptOptions{}); !errors.Is(err, envelope.ErrWrongKey) {
		t.Errorf("alias keyring: %v", err)
	}
	if got := kms.GenerateDataKeyCalls.Load(); got != 1 {
		t.Errorf("GenerateDataKey calls %d, want 1", got)
	}
	if got := kms.EncryptCalls.Load(); got != 1 {
		t.Errorf("Encrypt calls %d, want 1 (the additional key)", got)
	}
}

func nonFramedMessage(t *testing.T, kms *fakekms.Client, key string, s *format.Suite, pt []byte) []byte {
	t.Helper()
	msg, err := envelope.NonFramedMessage(t.Context(), &envelope.KMSKeyring{Client: kms, Generator: key}, s, pt)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestCancellation(t *testing.T) {
	t.Parallel()
	kms := fakekms.New()
	c := envelope.NewKMS(kms, kms.CreateKey(""))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.Encrypt(ctx, io.Discard, bytes.NewReader([]byte("x")), envelope.EncryptOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Encrypt after cancel: %v", err)
	}
	msg := encrypt(t, c, randBytes(t, 1<<20), envelope.EncryptOptions{Suite: format.AES256HKDFSHA512CommitKey})
	// Cancel while decrypting: a reader that cancels after the header.
	ctx, cancel = context.WithCancel(t.Context())
	r := &cancelAfter{r: bytes.NewReader(msg), n: 4096, cancel: cancel}
	var out bytes.Buffer
	if _, err := c.Decrypt(ctx, &out, r, envelope.DecryptOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Decrypt cancelled midway: %v", err)
	}
}

type cancelAfter struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p[:min(len(p), 1024)])
	c.n -= n
	if c.n <= 0 {
		c.cancel()
	}
	return n, err
}

// TestSpoolToDisk: a signed message over the in-memory spool limit goes
// through an unlinked temporary file in TempDir, which stays empty.
func TestSpoolToDisk(t *testing.T) {
	t.Parallel()
	kms := fakekms.New()
	c := envelope.NewKMS(kms, kms.CreateKey(""))
	pt := randBytes(t, 3<<20)
	msg := encrypt(t, c, pt, envelope.EncryptOptions{})
	dir := t.TempDir()
	var out bytes.Buffer
	if _, err := c.Decrypt(t.Context(), &out, bytes.NewReader(msg), envelope.DecryptOptions{TempDir: dir}); err != nil || !bytes.Equal(out.Bytes(), pt) {
		t.Fatalf("Decrypt: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("spool left %d files", len(ents))
	}
	// A spool directory that does not exist is an error, not a silent
	// fallback to streaming.
	if _, err := c.Decrypt(t.Context(), io.Discard, bytes.NewReader(msg), envelope.DecryptOptions{TempDir: filepath.Join(dir, "missing")}); err == nil {
		t.Fatal("Decrypt with a missing TempDir succeeded")
	}
}

func testingContext() context.Context { return context.Background() }

// strippingCMM hands out the default CMM's materials with parts removed,
// as a faulty custom CMM might.
type strippingCMM struct {
	envelope.CMM
	enc func(*envelope.EncryptionMaterials)
	dec func(*envelope.DecryptionMaterials)
}

func (s strippingCMM) GetEncryptionMaterials(ctx context.Context, req envelope.EncryptionRequest) (*envelope.EncryptionMaterials, error) {
	m, err := s.CMM.GetEncryptionMaterials(ctx, req)
	if err == nil && s.enc != nil {
		s.enc(m)
	}
	return m, err
}

func (s strippingCMM) DecryptMaterials(ctx context.Context, req envelope.DecryptionRequest) (*envelope.DecryptionMaterials, error) {
	m, err := s.CMM.DecryptMaterials(ctx, req)
	if err == nil && s.dec != nil {
		s.dec(m)
	}
	return m, err
}

// TestCustomCMMMaterialsChecked: materials a custom CMM returns without a
// signing or verification key for a signed suite, without encrypted data
// keys, or for another suite are refused with ErrInvalidArgument; before,
// a missing key panicked with a nil dereference.
func TestCustomCMMMaterialsChecked(t *testing.T) {
	kms := fakekms.New()
	key := kms.CreateKey("")
	base := envelope.NewDefaultCMM(&envelope.KMSKeyring{Client: kms, Generator: key})
	msg := encrypt(t, envelope.New(base), []byte("signed"), envelope.EncryptOptions{})
	for name, cmm := range map[string]strippingCMM{
		"no signing key":           {CMM: base, enc: func(m *envelope.EncryptionMaterials) { m.SigningKey = nil }},
		"no encrypted data key":    {CMM: base, enc: func(m *envelope.EncryptionMaterials) { m.EncryptedDataKeys = nil }},
		"short data key":           {CMM: base, enc: func(m *envelope.EncryptionMaterials) { m.DataKey = m.DataKey[:16] }},
		"no verification key":      {CMM: base, dec: func(m *envelope.DecryptionMaterials) { m.VerificationKey = nil }},
		"materials of other suite": {CMM: base, dec: func(m *envelope.DecryptionMaterials) { m.Suite = format.AES256HKDFSHA512CommitKey }},
	} {
		c := envelope.New(cmm)
		var err error
		if cmm.enc != nil {
			_, err = c.Encrypt(t.Context(), io.Discard, bytes.NewReader([]byte("x")), envelope.EncryptOptions{})
		} else {
			_, err = c.Decrypt(t.Context(), io.Discard, bytes.NewReader(msg), envelope.DecryptOptions{})
		}
		if !errors.Is(err, envelope.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
}

package envelope

import (
	"bufio"
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/subtle"
	"hash"
	"io"
	"os"

	"hsmkms/kms/envelope/format"
)

// DecryptOptions configure one Decrypt.
type DecryptOptions struct {
	// EncryptionContext: every pair must be in the message's encryption
	// context, or Decrypt fails with KindEncryptionContext before any
	// KMS call.
	EncryptionContext map[string]string
	// UnsafeStreaming releases the plaintext of each frame as soon as its
	// GCM tag verifies, before the signature of a signed message is
	// checked. If the signature then fails, dst has received plaintext
	// that a party able to decrypt the data key (not necessarily the
	// signer) may have forged. Unsigned suites always stream: their frames
	// are authenticated only by GCM anyway.
	UnsafeStreaming bool
	// TempDir is where the default (safe) mode spools signed messages
	// larger than 1 MiB; empty means os.TempDir(). The spool holds only
	// ciphertext and is unlinked as soon as it is created.
	TempDir string
	// MaxNonFramedLength bounds a non-framed (legacy) body, which is held
	// in memory; 0 means DefaultMaxNonFramedLength.
	MaxNonFramedLength int64
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Decrypt reads one ESDK message from src and writes its plaintext to dst.
// It reads src to the end of the message and fails if anything follows.
// See DecryptOptions for what reaches dst before the message is fully
// authenticated. In the default mode a signed message releases nothing
// before its signature verifies; an unsigned one releases each frame once
// its tag verifies, so a truncated or tampered unsigned message may have
// released its earlier, authentic frames when Decrypt fails. A caller that
// must not act on such a prefix writes to a temporary destination and
// publishes it only when Decrypt succeeds (kmsctl does for files).
func (c *Client) Decrypt(ctx context.Context, dst io.Writer, src io.Reader, opts DecryptOptions) (*MessageInfo, error) {
	cr := &countingReader{r: src}
	// A small buffer for the header: the body is then read in large
	// chunks that bypass it (FrameScanner), and what follows the body
	// comes from the scanner's Rest.
	br := bufio.NewReaderSize(cr, 64<<10)
	var tail io.Reader = br
	h, err := format.ReadHeader(br, c.MaxEncryptedDataKeys)
	if err != nil {
		return nil, formatErr(err)
	}
	s := h.Suite
	if c.Policy == RequireEncryptRequireDecrypt && !s.Committing {
		return nil, newErr(KindUnsupported, "suite %s does not commit to its key and the policy requires commitment", s)
	}
	if h.ContentType == format.ContentFramed && h.FrameLength > MaxFrameLength {
		return nil, newErr(KindUnsupported, "frame length %d exceeds the limit %d", h.FrameLength, MaxFrameLength)
	}
	for k, v := range opts.EncryptionContext {
		if got, ok := h.EncryptionContext[k]; !ok || got != v {
			return nil, newErr(KindEncryptionContext, "the message's encryption context lacks the required pair for key %q", k)
		}
	}
	info := &MessageInfo{Suite: s, MessageID: h.MessageID, EncryptionContext: h.EncryptionContext, KeyARNs: keyARNs(h.EDKs), FrameLength: h.FrameLength}
	dm, err := c.CMM.DecryptMaterials(ctx, DecryptionRequest{Suite: s, EncryptedDataKeys: h.EDKs, EncryptionContext: h.EncryptionContext})
	if err != nil {
		return nil, err
	}
	if err := dm.Validate(s); err != nil {
		return nil, err
	}
	key, commit, err := format.DeriveKeys(s, dm.DataKey, h.MessageID)
	if err != nil {
		return nil, &Error{Kind: KindWrongKey, Err: err}
	}
	if s.Committing && subtle.ConstantTimeCompare(commit, h.SuiteData) != 1 {
		return nil, newErr(KindTamperedHeader, "key commitment does not match the data key")
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	if _, err := aead.Open(nil, h.AuthNonce(), h.AuthTag, h.Body); err != nil {
		return nil, newErr(KindTamperedHeader, "header authentication tag does not verify")
	}
	var hasher hash.Hash
	if s.Signed() {
		hasher = newSigHash(s)
		hasher.Write(h.Body)
		hasher.Write(h.MarshalAuth())
	}
	verify := func() error {
		if hasher == nil {
			return formatErr(format.ExpectEOF(tail))
		}
		sig, err := format.ReadFooter(tail)
		if err != nil {
			return formatErr(err)
		}
		if !ecdsa.VerifyASN1(dm.VerificationKey, hasher.Sum(nil), sig) {
			return newErr(KindBadSignature, "the footer signature does not match the message")
		}
		return nil
	}

	if h.ContentType == format.ContentNonFramed {
		limit := opts.MaxNonFramedLength
		if limit <= 0 {
			limit = DefaultMaxNonFramedLength
		}
		iv, sealed, raw, err := format.ReadNonFramed(br, limit)
		if err != nil {
			return nil, formatErr(err)
		}
		if hasher != nil {
			hasher.Write(raw)
		}
		aad := format.BodyAAD(nil, h.MessageID, false, true, 1, uint64(len(sealed)-format.TagLen))
		pt, err := aead.Open(sealed[:0], iv, sealed, aad)
		if err != nil {
			return nil, newErr(KindTamperedBody, "the non-framed body does not authenticate")
		}
		if err := verify(); err != nil {
			return nil, err
		}
		if _, err := dst.Write(pt); err != nil {
			return nil, err
		}
		info.PlaintextLength = int64(len(pt))
		info.CiphertextLength = cr.n
		return info, nil
	}

	if hasher == nil || opts.UnsafeStreaming {
		sc := format.NewFrameScanner(br, h.FrameLength)
		n, err := pipeFrames(ctx, sc, key, h.MessageID, h.FrameLength, hasher, dst, false)
		if err != nil {
			return nil, err
		}
		tail = sc.Rest()
		if err := verify(); err != nil {
			return nil, err
		}
		info.PlaintextLength = n
		info.CiphertextLength = cr.n
		return info, nil
	}

	// Signed, safe mode: pass 1 authenticates every frame and the
	// signature while spooling the ciphertext; pass 2 decrypts the spool.
	//
	// Why a spool rather than reading the input again for pass 2: the
	// input can change between the passes (a file rewritten in place),
	// and nothing else binds pass 2 to what pass 1 verified. The frames'
	// GCM tags do not: the party the signature protects against is one
	// that can decrypt the data key (any holder of kms:Decrypt on one of
	// the message's keys), and with the data key it can make frames that
	// authenticate, and with GHASH's key even frames with the very tags
	// pass 1 saw. Binding a re-read would take a collision-resistant
	// digest of every batch kept from pass 1 (state that grows with the
	// message) and would work for seekable files only. The spool costs
	// little time: pass 1 is bound by the sequential SHA-384, and writing
	// the spool runs on another core meanwhile (1 GiB, 2 cores: pass 1
	// 1.49 s, pass 2 0.24 s); pass 2 is the price of releasing nothing
	// unverified.
	sp := &spool{dir: opts.TempDir}
	defer sp.Close()
	sc := format.NewFrameScanner(br, h.FrameLength)
	if _, err := pipeFrames(ctx, sc, key, h.MessageID, h.FrameLength, hasher, sp, true); err != nil {
		return nil, err
	}
	tail = sc.Rest()
	if err := verify(); err != nil {
		return nil, err
	}
	info.CiphertextLength = cr.n
	r, err := sp.Reader()
	if err != nil {
		return nil, err
	}
	n, err := pipeFrames(ctx, format.NewFrameScanner(r, h.FrameLength), key, h.MessageID, h.FrameLength, nil, dst, false)
	if err != nil {
		return nil, err
	}
	info.PlaintextLength = n
	return info, nil
}

// pipeFrames reads frames up to and including the final one and runs
// them through the parallel pipeline (pipeline.go): workers authenticate
// and decrypt batches of frames, hasher (when non-nil) gets the raw frames
// in message order, and out gets, per batch and in order, either the
// plaintext or (rawOut) the raw frames. Nothing of a batch is written
// unless every frame in it authenticates, and nothing after it.
func pipeFrames(ctx context.Context, sc *format.FrameScanner, key, messageID []byte, frameLen uint32, hasher hash.Hash, out io.Writer, rawOut bool) (int64, error) {
	p := startPipeline(pipelineConfig{
		key: key,
		process: func(j *job, aead cipher.AEAD, aad []byte) []byte {
			return openJob(aead, messageID, j, aad)
		},
		hasher:  hasher,
		hashIn:  true,
		writeIn: rawOut,
		dst:     out,
		jobSize: decryptJobSize(frameLen),
	})
	readErr := readFrames(ctx, sc, p)
	if err := p.wait(); err != nil {
		return 0, err // an earlier frame failed: that is the first error
	}
	if readErr != nil {
		return 0, formatErr(readErr)
	}
	if rawOut {
		return 0, nil
	}
	return p.written, nil
}

// decryptJobSize is what one decrypt batch holds, in and out, counted
// with the real frame length as encrypt counts it: a cap on it (there was
// one at 1 MiB) lets messages with huge frames (up to 4 GiB each) keep many
// batches in flight, far over inflightBytes.
func decryptJobSize(frameLen uint32) int {
	return 2 * (batchBytes + int(frameLen) + 64<<10)
}

// readFrames is the producer of pipeFrames: the scanner reads about
// batchBytes of whole frames straight into each job's buffer.
func readFrames(ctx context.Context, sc *format.FrameScanner, p *pipeline) error {
	for {
		if err := ctxErr(ctx); err != nil {
			p.abort()
			return err
		}
		j := p.get(ctx)
		if j == nil {
			if err := ctxErr(ctx); err != nil {
				p.abort()
				return err
			}
			return nil // a frame failed or the writer did: wait reports it
		}
		var err error
		j.in, j.frames, err = sc.Fill(j.in[:0], j.frames[:0], batchBytes)
		// The whole frames before a damaged one still go out (when the
		// caller streams); the error comes after them.
		if len(j.frames) > 0 {
			p.put(j)
		} else {
			p.discard(j)
		}
		if err != nil {
			return err
		}
		if sc.Done() {
			return nil
		}
	}
}

// spool holds the ciphertext of a signed message until its signature has
// been verified: in memory up to spoolMemory, then in an unlinked
// temporary file (nothing to clean up after a crash; no other process can
// open it by name).
type spool struct {
	dir string
	mem bytes.Buffer
	f   *os.File
	w   *bufio.Writer
}

func (s *spool) Write(p []byte) (int, error) {
	if s.f == nil && s.mem.Len()+len(p) <= spoolMemory {
		return s.mem.Write(p)
	}
	if s.f == nil {
		f, err := os.CreateTemp(s.dir, "kmsenvelope-spool-*")
		if err != nil {
			return 0, err
		}
		if err := os.Remove(f.Name()); err != nil {
			f.Close()
			return 0, err
		}
		s.f, s.w = f, bufio.NewWriterSize(f, 256<<10)
		if _, err := s.w.Write(s.mem.Bytes()); err != nil {
			return 0, err
		}
		s.mem = bytes.Buffer{}
	}
	return s.w.Write(p)
}

// Reader returns the spooled bytes from the start.
func (s *spool) Reader() (io.Reader, error) {
	if s.f == nil {
		return &s.mem, nil
	}
	if err := s.w.Flush(); err != nil {
		return nil, err
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return s.f, nil
}

func (s *spool) Close() {
	if s.f != nil {
		s.f.Close()
	}
}

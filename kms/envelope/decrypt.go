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
// authenticated; in the default mode, nothing does.
func (c *Client) Decrypt(ctx context.Context, dst io.Writer, src io.Reader, opts DecryptOptions) (*MessageInfo, error) {
	cr := &countingReader{r: src}
	br := bufio.NewReaderSize(cr, 256<<10)
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
			return formatErr(format.ExpectEOF(br))
		}
		sig, err := format.ReadFooter(br)
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
		n, err := pipeFrames(ctx, format.NewFrameReader(br, h.FrameLength), aead, h.MessageID, hasher, dst, false)
		if err != nil {
			return nil, err
		}
		if err := verify(); err != nil {
			return nil, err
		}
		info.PlaintextLength = n
		info.CiphertextLength = cr.n
		return info, nil
	}

	// Signed, safe mode: pass 1 authenticates every frame and the
	// signature while spooling the ciphertext; pass 2 decrypts the spool.
	sp := &spool{dir: opts.TempDir}
	defer sp.Close()
	if _, err := pipeFrames(ctx, format.NewFrameReader(br, h.FrameLength), aead, h.MessageID, hasher, sp, true); err != nil {
		return nil, err
	}
	if err := verify(); err != nil {
		return nil, err
	}
	info.CiphertextLength = cr.n
	r, err := sp.Reader()
	if err != nil {
		return nil, err
	}
	n, err := pipeFrames(ctx, format.NewFrameReader(bufio.NewReaderSize(r, 256<<10), h.FrameLength), aead, h.MessageID, nil, dst, false)
	if err != nil {
		return nil, err
	}
	info.PlaintextLength = n
	return info, nil
}

// pipeFrames reads frames up to and including the final one, feeding the
// raw bytes to hasher (when non-nil) in order. A second goroutine
// authenticates and decrypts them and writes, per batch, either the
// plaintext or (rawOut) the raw frames to out. Nothing of a batch is written
// unless every frame in it authenticates.
func pipeFrames(ctx context.Context, fr *format.FrameReader, aead cipher.AEAD, messageID []byte, hasher hash.Hash, out io.Writer, rawOut bool) (int64, error) {
	work := make(chan *batch, 2)
	free := make(chan *batch, 3)
	for range 3 {
		free <- &batch{}
	}
	done := make(chan error, 1)
	failed := make(chan struct{}) // closed by stage 2 on its first error, so stage 1 stops early
	var plainTotal int64
	go func() {
		var err error
		var pt, aad []byte
		for b := range work {
			if err == nil {
				pt = pt[:0]
				for _, f := range b.frames {
					fm := format.Frame{Seq: f.seq, Final: f.final, IV: b.buf[f.iv : f.iv+format.IVLen], Sealed: b.buf[f.sealedAt:f.end]}
					var oerr error
					if pt, aad, oerr = format.OpenFrame(pt, aead, messageID, fm, aad); oerr != nil {
						err = newErr(KindTamperedBody, "frame %d does not authenticate", f.seq)
						break
					}
				}
				if err == nil {
					if rawOut {
						_, err = out.Write(b.buf)
					} else {
						_, err = out.Write(pt)
						plainTotal += int64(len(pt))
					}
				}
				if err != nil {
					close(failed)
				}
			}
			free <- b
		}
		done <- err
	}()
	finish := func(readErr error) (int64, error) {
		close(work)
		if err := <-done; err != nil {
			return 0, err // an earlier frame failed: that is the first error
		}
		if readErr != nil {
			return 0, formatErr(readErr)
		}
		return plainTotal, nil
	}
	for {
		if err := ctxErr(ctx); err != nil {
			return finish(err)
		}
		var b *batch
		select {
		case b = <-free:
		case <-failed:
			return finish(nil)
		}
		b.buf, b.frames = b.buf[:0], b.frames[:0]
		final := false
		for len(b.buf) < batchBytes && !final {
			f, err := fr.Next()
			if err != nil {
				if len(b.frames) > 0 {
					work <- b
				}
				return finish(err)
			}
			if hasher != nil {
				hasher.Write(f.Raw)
			}
			start := len(b.buf)
			b.buf = append(b.buf, f.Raw...)
			ivAt := start + 4
			if f.Final {
				ivAt += 4
			}
			sealedAt := ivAt + format.IVLen
			if f.Final {
				sealedAt += 4
			}
			b.frames = append(b.frames, frameRef{seq: f.Seq, final: f.Final, start: start, end: len(b.buf), iv: ivAt, sealedAt: sealedAt})
			final = f.Final
		}
		work <- b
		if final {
			return finish(nil)
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

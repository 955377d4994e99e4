package envelope

import (
	"bufio"
	"context"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"hash"
	"io"
	"maps"

	"hsmkms/kms/envelope/format"
)

// EncryptOptions configure one Encrypt.
type EncryptOptions struct {
	// EncryptionContext is stored in the header and bound to the data key
	// by KMS. Keys may not start with "aws-crypto-".
	EncryptionContext map[string]string
	// Suite is nil for the default (0x0578 under the default policy).
	Suite *format.Suite
	// FrameLength is the plaintext bytes per frame; 0 means 4096.
	FrameLength int
	// PlaintextLength, when > 0, is the exact number of bytes src will
	// yield: the caching CMM needs it to enforce its byte limit (with an
	// unknown length it bypasses the cache, as the ESDK does), and Encrypt
	// fails if src yields more.
	PlaintextLength int64
}

// batch is a unit of work passed between the two pipeline stages.
type batch struct {
	buf []byte // encrypt: ciphertext; decrypt: raw frames
	// decrypt: the frames in buf
	frames []frameRef
}

type frameRef struct {
	seq          uint32
	final        bool
	start, end   int // raw frame in buf
	iv, sealedAt int
}

// Encrypt reads src to its end and writes one ESDK message to dst. Memory
// use is a few frames whatever the size of src. On error, dst may have
// received part of a message, which will not decrypt.
func (c *Client) Encrypt(ctx context.Context, dst io.Writer, src io.Reader, opts EncryptOptions) (*MessageInfo, error) {
	if err := checkUserContext(opts.EncryptionContext); err != nil {
		return nil, err
	}
	frameLen := opts.FrameLength
	if frameLen == 0 {
		frameLen = DefaultFrameLength
	}
	if frameLen < 1 || frameLen > MaxFrameLength {
		return nil, newErr(KindInvalidArgument, "frame length %d is not in 1..%d", frameLen, MaxFrameLength)
	}
	suite := opts.Suite
	if suite == nil && c.Policy == ForbidEncryptAllowDecrypt {
		suite = format.AES256HKDFSHA384ECDSAP384
	}
	if suite != nil {
		if err := c.checkEncryptSuite(suite); err != nil {
			return nil, err
		}
	}
	length := int64(-1)
	if opts.PlaintextLength > 0 {
		length = opts.PlaintextLength
	}
	m, err := c.CMM.GetEncryptionMaterials(ctx, EncryptionRequest{EncryptionContext: maps.Clone(opts.EncryptionContext), Suite: suite, PlaintextLength: length})
	if err != nil {
		return nil, err
	}
	if err := c.checkEncryptSuite(m.Suite); err != nil {
		return nil, err
	}
	if c.MaxEncryptedDataKeys > 0 && len(m.EncryptedDataKeys) > c.MaxEncryptedDataKeys {
		return nil, newErr(KindInvalidArgument, "%d encrypted data keys exceed the limit %d", len(m.EncryptedDataKeys), c.MaxEncryptedDataKeys)
	}
	s := m.Suite
	h := &format.Header{
		Version:           s.MessageVersion,
		Suite:             s,
		EncryptionContext: m.EncryptionContext,
		EDKs:              m.EncryptedDataKeys,
		ContentType:       format.ContentFramed,
		FrameLength:       uint32(frameLen),
	}
	if s.MessageVersion == 2 {
		h.MessageID = make([]byte, format.MessageIDLenV2)
	} else {
		h.MessageID = make([]byte, format.MessageIDLenV1)
		h.AuthIV = make([]byte, format.IVLen)
	}
	if _, err := rand.Read(h.MessageID); err != nil {
		return nil, err
	}
	key, commit, err := format.DeriveKeys(s, m.DataKey, h.MessageID)
	if err != nil {
		return nil, err
	}
	h.SuiteData = commit
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	body, err := h.MarshalBody()
	if err != nil {
		return nil, formatErr(err)
	}
	h.AuthTag = aead.Seal(nil, h.AuthNonce(), nil, body)

	var hasher hash.Hash
	if s.Signed() {
		hasher = newSigHash(s)
	}
	info := &MessageInfo{Suite: s, MessageID: h.MessageID, EncryptionContext: m.EncryptionContext, KeyARNs: keyARNs(h.EDKs), FrameLength: uint32(frameLen)}
	head := append(append([]byte(nil), body...), h.MarshalAuth()...)

	// Stage 2 (a goroutine): hash and write. Stage 1 (here): read and
	// seal. Batches circulate through free, so memory stays constant.
	work := make(chan *batch, 2)
	free := make(chan *batch, 3)
	for range 3 {
		free <- &batch{}
	}
	werr := make(chan error, 1)
	failed := make(chan struct{}) // closed by stage 2 on its first error, so stage 1 stops early
	var written int64
	go func() {
		var err error
		for b := range work {
			if err == nil {
				if hasher != nil {
					hasher.Write(b.buf)
				}
				var n int
				n, err = dst.Write(b.buf)
				written += int64(n)
				if err != nil {
					close(failed)
				}
			}
			free <- b
		}
		werr <- err
	}()
	send := func(b []byte) bool {
		select {
		case bt := <-free:
			bt.buf = append(bt.buf[:0], b...)
			work <- bt
			return true
		case <-failed:
			return false
		}
	}
	readErr := func() error {
		if !send(head) {
			return nil
		}
		return c.encryptFrames(ctx, src, aead, h.MessageID, frameLen, length, info, free, work, failed)
	}()
	close(work)
	wErr := <-werr
	if readErr != nil {
		return nil, readErr
	}
	if wErr != nil {
		return nil, wErr
	}
	if hasher != nil {
		sig, err := ecdsa.SignASN1(rand.Reader, m.SigningKey, hasher.Sum(nil))
		if err != nil {
			return nil, err
		}
		n, err := dst.Write(format.AppendFooter(nil, sig))
		written += int64(n)
		if err != nil {
			return nil, err
		}
	}
	info.CiphertextLength = written
	return info, nil
}

// encryptFrames is stage 1 of Encrypt.
func (c *Client) encryptFrames(ctx context.Context, src io.Reader, aead cipher.AEAD, messageID []byte, frameLen int, declared int64, info *MessageInfo, free, work chan *batch, failed <-chan struct{}) error {
	br := bufio.NewReaderSize(src, max(64<<10, min(frameLen, 1<<20)))
	perBatch := max(1, batchBytes/frameLen)
	plain := make([]byte, frameLen)
	var aad []byte
	var total int64
	seq := uint32(1)
	for {
		if err := ctxErr(ctx); err != nil {
			return err
		}
		var b *batch
		select {
		case b = <-free:
		case <-failed:
			return nil // the writer failed; Encrypt reports its error
		}
		b.buf = b.buf[:0]
		final := false
		for i := 0; i < perBatch && !final; i++ {
			n, err := io.ReadFull(br, plain)
			switch {
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
				final = true
			case err != nil:
				return err
			default:
				// A full frame: it is the final one only if nothing follows.
				if _, perr := br.Peek(1); errors.Is(perr, io.EOF) {
					final = true
				} else if perr != nil {
					return perr
				}
			}
			total += int64(n)
			if declared >= 0 && total > declared {
				return newErr(KindInvalidArgument, "input is longer than the declared %d bytes", declared)
			}
			if !final && seq == format.SequenceNumberEnd-1 {
				return newErr(KindInvalidArgument, "input needs more than 2^32-1 frames of %d bytes", frameLen)
			}
			b.buf, aad = format.SealFrame(b.buf, aead, messageID, seq, final, plain[:n], aad)
			seq++
		}
		work <- b
		if final {
			info.PlaintextLength = total
			if declared >= 0 && total != declared {
				return newErr(KindInvalidArgument, "input is %d bytes, %d were declared", total, declared)
			}
			return nil
		}
	}
}

func (c *Client) checkEncryptSuite(s *format.Suite) error {
	switch c.Policy {
	case ForbidEncryptAllowDecrypt:
		if s.Committing {
			return newErr(KindInvalidArgument, "suite %s is committing; the policy forbids it on encrypt", s)
		}
	default:
		if !s.Committing {
			return newErr(KindInvalidArgument, "suite %s does not commit to its key; the policy requires a committing suite (0x0578 or 0x0478)", s)
		}
	}
	return nil
}

func newSigHash(s *format.Suite) hash.Hash { return s.SigHash.New() }

package envelope

import (
	"context"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"hash"
	"io"
	"maps"
	"slices"

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
	if err := m.Validate(); err != nil {
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

	// The header, then the body through the parallel pipeline (see
	// pipeline.go): memory stays a few batches whatever the size.
	if hasher != nil {
		hasher.Write(head)
	}
	written, err := dst.Write(head)
	if err != nil {
		return nil, err
	}
	frameLength := frameLen
	p := startPipeline(pipelineConfig{
		key: key,
		process: func(j *job, aead cipher.AEAD, aad []byte) []byte {
			return sealJob(aead, h.MessageID, frameLength, j, aad)
		},
		hasher:  hasher,
		dst:     dst,
		jobSize: 2 * batchLen(frameLen),
	})
	readErr := encryptFrames(ctx, src, p, frameLen, length, info)
	wErr := p.wait()
	if readErr != nil {
		return nil, readErr
	}
	if wErr != nil {
		return nil, wErr
	}
	written += int(p.written)
	if hasher != nil {
		sig, err := ecdsa.SignASN1(rand.Reader, m.SigningKey, hasher.Sum(nil))
		if err != nil {
			return nil, err
		}
		n, err := dst.Write(format.AppendFooter(nil, sig))
		written += n
		if err != nil {
			return nil, err
		}
	}
	info.CiphertextLength = int64(written)
	return info, nil
}

// batchLen is the plaintext bytes of a full batch: whole frames, about
// batchBytes, at least one frame.
func batchLen(frameLen int) int { return max(1, batchBytes/frameLen) * frameLen }

// encryptFrames is the producer of Encrypt: it reads src in batches of
// whole frames straight into the jobs' buffers (no intermediate copy) and
// numbers them. A batch is final when src ends inside it or right after it
// (one byte of look-ahead tells), so a plaintext of a multiple of the
// frame length ends with a full final frame, as before.
func encryptFrames(ctx context.Context, src io.Reader, p *pipeline, frameLen int, declared int64, info *MessageInfo) error {
	bl := batchLen(frameLen)
	var carry [1]byte
	hasCarry := false
	var total int64
	seq := uint64(1)
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
			return nil // the writer failed; Encrypt reports its error
		}
		j.in = slices.Grow(j.in[:0], bl)[:bl]
		n := 0
		if hasCarry {
			j.in[0], n, hasCarry = carry[0], 1, false
		}
		m, err := io.ReadFull(src, j.in[n:])
		n += m
		final := false
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			final = true
		case err != nil:
			p.discard(j)
			return err
		default:
			// A full batch: it is the final one only if nothing follows.
			k, perr := io.ReadFull(src, carry[:])
			switch {
			case k == 1:
				hasCarry = true
			case errors.Is(perr, io.EOF):
				final = true
			default:
				p.discard(j)
				return perr
			}
		}
		j.in = j.in[:n]
		total += int64(n)
		if declared >= 0 && total > declared {
			p.discard(j)
			return newErr(KindInvalidArgument, "input is longer than the declared %d bytes", declared)
		}
		// Only the final frame may carry sequence number 2^32-1 - 1; no
		// frame may carry 2^32-1 (it marks the final frame).
		last := seq + uint64(max(1, (n+frameLen-1)/frameLen)) - 1
		if last > format.SequenceNumberEnd-1 || (!final && last == format.SequenceNumberEnd-1) {
			p.discard(j)
			return newErr(KindInvalidArgument, "input needs more than 2^32-1 frames of %d bytes", frameLen)
		}
		if final && declared >= 0 && total != declared {
			p.discard(j)
			return newErr(KindInvalidArgument, "input is %d bytes, %d were declared", total, declared)
		}
		j.seq, j.final = uint32(seq), final
		seq = last + 1
		p.put(j)
		if final {
			info.PlaintextLength = total
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

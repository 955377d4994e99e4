package format

import (
	"bufio"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Body AAD content strings (message-body-aad.md).
const (
	contentSingleBlock = "AWSKMSEncryptionClient Single Block"
	contentFrame       = "AWSKMSEncryptionClient Frame"
	contentFinalFrame  = "AWSKMSEncryptionClient Final Frame"
)

// SequenceNumberEnd marks the final frame.
const SequenceNumberEnd = 0xFFFFFFFF

// MaxNonFramedContent is the format's limit on non-framed content (2^36-32).
const MaxNonFramedContent = 1<<36 - 32

// BodyAAD appends the additional data of one frame (or of the single
// non-framed block) to dst.
func BodyAAD(dst, messageID []byte, final, nonFramed bool, seq uint32, contentLen uint64) []byte {
	dst = append(dst, messageID...)
	switch {
	case nonFramed:
		dst = append(dst, contentSingleBlock...)
	case final:
		dst = append(dst, contentFinalFrame...)
	default:
		dst = append(dst, contentFrame...)
	}
	dst = binary.BigEndian.AppendUint32(dst, seq)
	return binary.BigEndian.AppendUint64(dst, contentLen)
}

// FrameIV returns the IV the ESDKs use for frame seq: the sequence number,
// big endian, left-padded with zeros to 12 bytes. It is unique within the
// message, which is all GCM needs since every message has its own key.
func FrameIV(dst []byte, seq uint32) []byte {
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	return binary.BigEndian.AppendUint32(dst, seq)
}

// FrameOverhead is the number of bytes a frame adds to its content.
func FrameOverhead(final bool) int {
	if final {
		return 4 + 4 + IVLen + 4 + TagLen
	}
	return 4 + IVLen + TagLen
}

// SealFrame appends one encrypted frame (regular, or final when final is
// set) to dst. aad is scratch space reused between calls.
func SealFrame(dst []byte, aead cipher.AEAD, messageID []byte, seq uint32, final bool, plaintext []byte, aad []byte) ([]byte, []byte) {
	if final {
		dst = binary.BigEndian.AppendUint32(dst, SequenceNumberEnd)
	}
	dst = binary.BigEndian.AppendUint32(dst, seq)
	ivAt := len(dst)
	dst = FrameIV(dst, seq)
	iv := dst[ivAt:]
	if final {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(plaintext)))
	}
	aad = BodyAAD(aad[:0], messageID, final, false, seq, uint64(len(plaintext)))
	dst = aead.Seal(dst, iv, plaintext, aad)
	return dst, aad
}

// Frame is one frame read from a framed body. Raw is the frame exactly as
// it was read (what the signature covers); Sealed is content || tag. Both
// point into the reader's buffer and stay valid until the next Next.
type Frame struct {
	Seq    uint32
	Final  bool
	IV     []byte
	Sealed []byte
	Raw    []byte
}

// FrameReader reads the frames of a framed body in order and checks their
// structure: sequence numbers start at 1 and increase by one, regular
// frames are exactly frameLength long, the final frame is at most that,
// and nothing is read past the final frame.
type FrameReader struct {
	r        *bufio.Reader
	frameLen uint32
	next     uint32
	done     bool
	buf      []byte
}

// NewFrameReader reads frames of frameLength bytes from r.
func NewFrameReader(r *bufio.Reader, frameLength uint32) *FrameReader {
	return &FrameReader{r: r, frameLen: frameLength, next: 1}
}

func truncated(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: stream ends inside %s", ErrTruncated, what)
	}
	return err
}

// Next returns the next frame; after the final frame it returns io.EOF.
func (fr *FrameReader) Next() (Frame, error) {
	f, b, err := fr.AppendNext(fr.buf[:0])
	if b != nil {
		fr.buf = b
	}
	return f, err
}

// AppendNext reads the next frame and appends it, exactly as read, to dst
// (growing it as append does), so a caller batching frames needs no copy
// of its own. The returned Frame's slices point into the returned buffer
// and stay valid until that buffer is grown. After the final frame it
// returns io.EOF; on error the returned buffer is nil.
func (fr *FrameReader) AppendNext(dst []byte) (Frame, []byte, error) {
	if fr.done {
		return Frame{}, nil, io.EOF
	}
	b := dst
	start := len(b)
	var hdr [8]byte
	if _, err := io.ReadFull(fr.r, hdr[:4]); err != nil {
		return Frame{}, nil, truncated(err, fmt.Sprintf("frame %d (no final frame)", fr.next))
	}
	b = append(b, hdr[:4]...)
	f := Frame{}
	seq := binary.BigEndian.Uint32(hdr[:4])
	if seq == SequenceNumberEnd {
		f.Final = true
		if _, err := io.ReadFull(fr.r, hdr[4:8]); err != nil {
			return Frame{}, nil, truncated(err, "the final frame")
		}
		b = append(b, hdr[4:8]...)
		seq = binary.BigEndian.Uint32(hdr[4:8])
	}
	if seq != fr.next {
		return Frame{}, nil, fmt.Errorf("%w: frame sequence number %d, want %d", ErrFrameOrder, seq, fr.next)
	}
	f.Seq = seq
	ivAt := len(b)
	contentLen := fr.frameLen
	if f.Final {
		var ivLen [IVLen + 4]byte
		if _, err := io.ReadFull(fr.r, ivLen[:]); err != nil {
			return Frame{}, nil, truncated(err, "the final frame")
		}
		b = append(b, ivLen[:]...)
		contentLen = binary.BigEndian.Uint32(ivLen[IVLen:])
		if contentLen > fr.frameLen {
			return Frame{}, nil, fmt.Errorf("%w: final frame content of %d bytes exceeds the frame length %d", ErrMalformed, contentLen, fr.frameLen)
		}
	} else {
		var iv [IVLen]byte
		if _, err := io.ReadFull(fr.r, iv[:]); err != nil {
			return Frame{}, nil, truncated(err, fmt.Sprintf("frame %d", seq))
		}
		b = append(b, iv[:]...)
	}
	sealedAt := len(b)
	n := int(contentLen) + TagLen
	b = slices.Grow(b, n)[:sealedAt+n]
	if _, err := io.ReadFull(fr.r, b[sealedAt:]); err != nil {
		return Frame{}, nil, truncated(err, fmt.Sprintf("frame %d", seq))
	}
	f.IV = b[ivAt : ivAt+IVLen]
	f.Sealed = b[sealedAt:]
	f.Raw = b[start:]
	if f.Final {
		fr.done = true
	} else {
		if fr.next == SequenceNumberEnd-1 {
			return Frame{}, nil, fmt.Errorf("%w: more than 2^32-1 frames", ErrMalformed)
		}
		fr.next++
	}
	return f, b, nil
}

// OpenFrame decrypts f in place into dst (which may be f.Sealed[:0]). It
// uses the IV the frame carries rather than requiring FrameIV(seq): ESDKs
// before data-key caching generated every IV at random (AWS Encryption SDK
// IV reference), and their messages must still decrypt. Only a holder of
// the data key can make a frame that authenticates, whatever its IV.
func OpenFrame(dst []byte, aead cipher.AEAD, messageID []byte, f Frame, aad []byte) ([]byte, []byte, error) {
	aad = BodyAAD(aad[:0], messageID, f.Final, false, f.Seq, uint64(len(f.Sealed)-TagLen))
	out, err := aead.Open(dst, f.IV, f.Sealed, aad)
	return out, aad, err
}

// Footer reading and writing.

// AppendFooter appends the signature footer.
func AppendFooter(dst, sig []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(sig)))
	return append(dst, sig...)
}

// ReadFooter reads the footer and checks that nothing follows it.
func ReadFooter(r io.Reader) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, truncated(err, "the footer")
	}
	sig := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(r, sig); err != nil {
		return nil, truncated(err, "the footer")
	}
	return sig, ExpectEOF(r)
}

// ExpectEOF fails if r has any byte left.
func ExpectEOF(r io.Reader) error {
	var one [1]byte
	n, err := io.ReadFull(r, one[:])
	if n > 0 {
		return fmt.Errorf("%w: trailing bytes after the message", ErrMalformed)
	}
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// ReadNonFramed reads a non-framed body: IV, length, content and tag.
// Content longer than limit is refused before it is read, since the whole
// block must be held to authenticate it.
func ReadNonFramed(r io.Reader, limit int64) (iv, sealed, raw []byte, err error) {
	var hdr [IVLen + 8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, nil, nil, truncated(err, "the non-framed body")
	}
	n := binary.BigEndian.Uint64(hdr[IVLen:])
	if n > MaxNonFramedContent {
		return nil, nil, nil, fmt.Errorf("%w: non-framed content of %d bytes exceeds 2^36-32", ErrMalformed, n)
	}
	if int64(n) > limit {
		return nil, nil, nil, fmt.Errorf("%w: non-framed content of %d bytes exceeds the in-memory limit %d", ErrUnsupported, n, limit)
	}
	raw = make([]byte, len(hdr)+int(n)+TagLen)
	copy(raw, hdr[:])
	if _, err := io.ReadFull(r, raw[len(hdr):]); err != nil {
		return nil, nil, nil, truncated(err, "the non-framed body")
	}
	return raw[:IVLen], raw[len(hdr):], raw, nil
}

// AppendNonFramed appends a non-framed body (used by tests to make legacy
// messages; Encrypt always writes framed bodies).
func AppendNonFramed(dst []byte, aead cipher.AEAD, messageID, iv, plaintext []byte) []byte {
	dst = append(dst, iv...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(len(plaintext)))
	aad := BodyAAD(nil, messageID, false, true, 1, uint64(len(plaintext)))
	return aead.Seal(dst, iv, plaintext, aad)
}

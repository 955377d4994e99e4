package format

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"unicode/utf8"
)

// Parse errors. Every error this package returns for bad input wraps one of
// them, so callers can tell a cut-off stream from a corrupted one.
var (
	// ErrMalformed: the bytes do not follow the format.
	ErrMalformed = errors.New("malformed message")
	// ErrTruncated: the stream ended before the message did.
	ErrTruncated = errors.New("truncated message")
	// ErrUnsupported: a well-formed field names something this package
	// does not implement (an unknown suite or version).
	ErrUnsupported = errors.New("unsupported message")
	// ErrFrameOrder: a frame's sequence number is not the next one (frames
	// reordered, dropped or duplicated).
	ErrFrameOrder = errors.New("frames out of order")
)

// Content types.
const (
	ContentNonFramed byte = 0x01
	ContentFramed    byte = 0x02
)

// Message ID lengths per format version.
const (
	MessageIDLenV1 = 16
	MessageIDLenV2 = 32
)

// Limits that keep a hostile header from making the reader allocate without
// bound. The format allows more; no ESDK writes more.
const (
	// MaxHeaderLen bounds the serialized header body.
	MaxHeaderLen = 4 << 20
	// DefaultMaxEDKs is the number of encrypted data keys accepted unless
	// the caller sets another limit (the ESDK's default is unlimited;
	// 65535 is what the count field can say).
	DefaultMaxEDKs = 65535
)

// ProviderAWSKMS is the provider ID of data keys encrypted by AWS KMS.
const ProviderAWSKMS = "aws-kms"

// EDK is one encrypted data key.
type EDK struct {
	ProviderID   string
	ProviderInfo []byte
	Ciphertext   []byte
}

// Header is a message header. Body is the exact serialized header body
// (everything the header authentication tag covers); when a Header is
// read, Body holds the bytes as they were on the wire.
type Header struct {
	Version           byte // 1 or 2
	Suite             *Suite
	MessageID         []byte
	EncryptionContext map[string]string
	EDKs              []EDK
	ContentType       byte
	FrameLength       uint32
	SuiteData         []byte // v2 only: the commitment key
	// Authentication: v1 has an IV, v2 uses an all-zero IV.
	AuthIV  []byte
	AuthTag []byte

	Body []byte
}

// AuthNonce returns the IV of the header authentication tag.
func (h *Header) AuthNonce() []byte {
	if h.Version == 1 {
		return h.AuthIV
	}
	return make([]byte, IVLen)
}

// MarshalEncryptionContext returns the canonical serialization of an
// encryption context (without the outer length): a count then the pairs
// sorted by key bytes. An empty context serializes to nothing.
func MarshalEncryptionContext(ec map[string]string) ([]byte, error) {
	if len(ec) == 0 {
		return nil, nil
	}
	if len(ec) > 0xFFFF {
		return nil, fmt.Errorf("%w: encryption context has %d pairs, at most 65535", ErrMalformed, len(ec))
	}
	keys := make([]string, 0, len(ec))
	for k := range ec {
		keys = append(keys, k)
	}
	sort.Strings(keys) // byte order, as the specification requires
	var b []byte
	b = binary.BigEndian.AppendUint16(b, uint16(len(keys)))
	for _, k := range keys {
		v := ec[k]
		if len(k) > 0xFFFF || len(v) > 0xFFFF || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, fmt.Errorf("%w: encryption context key or value too long or not UTF-8", ErrMalformed)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(k)))
		b = append(b, k...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
		b = append(b, v...)
	}
	if len(b) > 0xFFFF {
		return nil, fmt.Errorf("%w: serialized encryption context is %d bytes, at most 65535", ErrMalformed, len(b))
	}
	return b, nil
}

func parseEncryptionContext(b []byte) (map[string]string, error) {
	ec := map[string]string{}
	if len(b) == 0 {
		return ec, nil
	}
	c := cursor{b: b}
	n := c.u16()
	if n == 0 {
		return nil, fmt.Errorf("%w: encryption context of %d bytes with zero pairs", ErrMalformed, len(b))
	}
	for range n {
		k := c.bytes(int(c.u16()))
		v := c.bytes(int(c.u16()))
		if c.err != nil {
			return nil, fmt.Errorf("%w: encryption context overruns its length", ErrMalformed)
		}
		if !utf8.Valid(k) || !utf8.Valid(v) {
			return nil, fmt.Errorf("%w: encryption context is not UTF-8", ErrMalformed)
		}
		if _, dup := ec[string(k)]; dup {
			return nil, fmt.Errorf("%w: duplicate encryption context key", ErrMalformed)
		}
		ec[string(k)] = string(v)
	}
	if len(c.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after the encryption context", ErrMalformed, len(c.b))
	}
	return ec, nil
}

// MarshalBody serializes the header body (without the authentication
// fields) into h.Body and returns it.
func (h *Header) MarshalBody() ([]byte, error) {
	ec, err := MarshalEncryptionContext(h.EncryptionContext)
	if err != nil {
		return nil, err
	}
	if len(h.EDKs) == 0 || len(h.EDKs) > 0xFFFF {
		return nil, fmt.Errorf("%w: %d encrypted data keys", ErrMalformed, len(h.EDKs))
	}
	var b []byte
	b = append(b, h.Version)
	if h.Version == 1 {
		b = append(b, 0x80)
	}
	b = binary.BigEndian.AppendUint16(b, h.Suite.ID)
	b = append(b, h.MessageID...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(ec)))
	b = append(b, ec...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.EDKs)))
	for _, e := range h.EDKs {
		for _, f := range [][]byte{[]byte(e.ProviderID), e.ProviderInfo, e.Ciphertext} {
			if len(f) > 0xFFFF {
				return nil, fmt.Errorf("%w: encrypted data key field of %d bytes", ErrMalformed, len(f))
			}
			b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
			b = append(b, f...)
		}
	}
	b = append(b, h.ContentType)
	if h.Version == 1 {
		b = append(b, 0, 0, 0, 0, IVLen)
	}
	b = binary.BigEndian.AppendUint32(b, h.FrameLength)
	if h.Version == 2 {
		b = append(b, h.SuiteData...)
	}
	h.Body = b
	return b, nil
}

// MarshalAuth returns the authentication fields that follow the body.
func (h *Header) MarshalAuth() []byte {
	if h.Version == 1 {
		return append(append([]byte(nil), h.AuthIV...), h.AuthTag...)
	}
	return append([]byte(nil), h.AuthTag...)
}

// cursor reads big-endian fields from a byte slice; the first overrun sets
// err and every later read returns zero values.
type cursor struct {
	b   []byte
	err error
}

func (c *cursor) bytes(n int) []byte {
	if c.err != nil || n > len(c.b) {
		c.err = io.ErrUnexpectedEOF
		return nil
	}
	v := c.b[:n]
	c.b = c.b[n:]
	return v
}

func (c *cursor) u16() uint16 {
	if b := c.bytes(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

// headerReader reads from r and keeps every byte read, so that the header
// body can be authenticated exactly as it was received.
type headerReader struct {
	r   io.Reader
	buf bytes.Buffer
	err error
}

func (hr *headerReader) next(n int) []byte {
	if hr.err != nil {
		return nil
	}
	if hr.buf.Len()+n > MaxHeaderLen {
		hr.err = fmt.Errorf("%w: header longer than %d bytes", ErrMalformed, MaxHeaderLen)
		return nil
	}
	start := hr.buf.Len()
	if _, err := io.CopyN(&hr.buf, hr.r, int64(n)); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			hr.err = fmt.Errorf("%w: stream ends inside the header", ErrTruncated)
		} else {
			hr.err = err
		}
		return nil
	}
	return hr.buf.Bytes()[start : start+n]
}

func (hr *headerReader) u8() byte {
	if b := hr.next(1); b != nil {
		return b[0]
	}
	return 0
}

func (hr *headerReader) u16() uint16 {
	if b := hr.next(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (hr *headerReader) u32() uint32 {
	if b := hr.next(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// ReadHeader reads and parses a header, including its authentication
// fields, from r. It checks structure only: the caller authenticates the
// header once it has the data key. maxEDKs <= 0 means DefaultMaxEDKs.
func ReadHeader(r io.Reader, maxEDKs int) (*Header, error) {
	if maxEDKs <= 0 {
		maxEDKs = DefaultMaxEDKs
	}
	hr := &headerReader{r: r}
	h := &Header{}
	h.Version = hr.u8()
	if hr.err != nil {
		if errors.Is(hr.err, ErrTruncated) {
			return nil, fmt.Errorf("%w: empty input", ErrTruncated)
		}
		return nil, hr.err
	}
	var idLen int
	switch h.Version {
	case 1:
		if t := hr.u8(); hr.err == nil && t != 0x80 {
			return nil, fmt.Errorf("%w: message type 0x%02X, want 0x80", ErrMalformed, t)
		}
		idLen = MessageIDLenV1
	case 2:
		idLen = MessageIDLenV2
	default:
		return nil, fmt.Errorf("%w: message format version 0x%02X", ErrUnsupported, h.Version)
	}
	id := hr.u16()
	if hr.err != nil {
		return nil, hr.err
	}
	if h.Suite = SuiteByID(id); h.Suite == nil {
		return nil, fmt.Errorf("%w: algorithm suite 0x%04X", ErrUnsupported, id)
	}
	if h.Suite.MessageVersion != h.Version {
		return nil, fmt.Errorf("%w: suite 0x%04X in a version %d message", ErrMalformed, id, h.Version)
	}
	h.MessageID = clone(hr.next(idLen))
	ecLen := hr.u16()
	ecBytes := hr.next(int(ecLen))
	if hr.err != nil {
		return nil, hr.err
	}
	ec, err := parseEncryptionContext(ecBytes)
	if err != nil {
		return nil, err
	}
	h.EncryptionContext = ec
	n := int(hr.u16())
	if hr.err == nil && n == 0 {
		return nil, fmt.Errorf("%w: no encrypted data keys", ErrMalformed)
	}
	if n > maxEDKs {
		return nil, fmt.Errorf("%w: %d encrypted data keys, the limit is %d", ErrMalformed, n, maxEDKs)
	}
	for range n {
		var e EDK
		e.ProviderID = string(hr.next(int(hr.u16())))
		e.ProviderInfo = clone(hr.next(int(hr.u16())))
		e.Ciphertext = clone(hr.next(int(hr.u16())))
		if hr.err != nil {
			return nil, hr.err
		}
		h.EDKs = append(h.EDKs, e)
	}
	h.ContentType = hr.u8()
	if hr.err == nil && h.ContentType != ContentFramed && h.ContentType != ContentNonFramed {
		return nil, fmt.Errorf("%w: content type 0x%02X", ErrMalformed, h.ContentType)
	}
	if h.Version == 1 {
		if res := hr.next(4); res != nil && !bytes.Equal(res, []byte{0, 0, 0, 0}) {
			return nil, fmt.Errorf("%w: reserved field is not zero", ErrMalformed)
		}
		if ivLen := hr.u8(); hr.err == nil && ivLen != IVLen {
			return nil, fmt.Errorf("%w: IV length %d, want %d", ErrMalformed, ivLen, IVLen)
		}
	}
	h.FrameLength = hr.u32()
	if hr.err == nil {
		switch {
		case h.ContentType == ContentNonFramed && h.FrameLength != 0:
			return nil, fmt.Errorf("%w: non-framed message with frame length %d", ErrMalformed, h.FrameLength)
		case h.ContentType == ContentFramed && h.FrameLength == 0:
			return nil, fmt.Errorf("%w: framed message with frame length 0", ErrMalformed)
		}
	}
	if h.Version == 2 {
		h.SuiteData = clone(hr.next(CommitKeyLen))
	}
	if hr.err != nil {
		return nil, hr.err
	}
	h.Body = clone(hr.buf.Bytes())
	if h.Version == 1 {
		h.AuthIV = clone(hr.next(IVLen))
	}
	h.AuthTag = clone(hr.next(TagLen))
	if hr.err != nil {
		return nil, hr.err
	}
	return h, nil
}

package envelope_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

	"hsmkms/kms/envelope"
	"hsmkms/kms/envelope/format"
	"hsmkms/kms/envelope/internal/fakekms"
)

// layout locates the parts of a framed message: the header's end, each
// frame's end, and the body's end (the footer follows).
type layout struct {
	headerEnd int
	frameEnds []int
	bodyEnd   int
}

func parseLayout(t *testing.T, msg []byte) layout {
	t.Helper()
	r := bytes.NewReader(msg)
	h, err := format.ReadHeader(r, 0)
	if err != nil {
		t.Fatal(err)
	}
	l := layout{headerEnd: len(msg) - r.Len()}
	pos := l.headerEnd
	for {
		if binary.BigEndian.Uint32(msg[pos:]) == format.SequenceNumberEnd {
			n := binary.BigEndian.Uint32(msg[pos+8+format.IVLen:])
			pos += format.FrameOverhead(true) + int(n)
			l.frameEnds = append(l.frameEnds, pos)
			break
		}
		pos += format.FrameOverhead(false) + int(h.FrameLength)
		l.frameEnds = append(l.frameEnds, pos)
	}
	l.bodyEnd = pos
	return l
}

// checkReleased fails if out is not a prefix of the plaintext that ends
// at a frame boundary before limit: nothing unauthenticated was released.
func checkReleased(t *testing.T, what string, out, pt []byte, limit int) {
	t.Helper()
	if !bytes.HasPrefix(pt, out) {
		t.Fatalf("%s: released bytes that are not the plaintext", what)
	}
	if len(out) > limit {
		t.Fatalf("%s: released %d bytes, at most %d were authenticated", what, len(out), limit)
	}
}

// TestTampering flips every byte of messages of both suites, truncates them
// at every byte (so at every frame boundary), reorders, drops and duplicates
// frames, and changes the encryption context. Every change must fail with
// the error kind of the part it hit, and release no plaintext that was not
// authenticated: nothing at all for signed messages in the default mode,
// only whole frames before the damage for unsigned ones.
func TestTampering(t *testing.T) {
	t.Parallel()
	kms := fakekms.New()
	c := envelope.NewKMS(kms, kms.CreateKey(""))
	const frame = 64
	headerKinds := []envelope.Kind{envelope.KindMalformed, envelope.KindUnsupported, envelope.KindTamperedHeader, envelope.KindWrongKey, envelope.KindTruncated}
	bodyKinds := []envelope.Kind{envelope.KindTamperedBody, envelope.KindTruncated, envelope.KindMalformed}
	for _, suite := range []*format.Suite{format.AES256HKDFSHA512CommitKeyECDSAP384, format.AES256HKDFSHA512CommitKey} {
		t.Run(suite.Name, func(t *testing.T) {
			t.Parallel()
			pt := randBytes(t, 4*frame+10)
			msg := encrypt(t, c, pt, envelope.EncryptOptions{Suite: suite, FrameLength: frame, EncryptionContext: map[string]string{"k": "v"}})
			l := parseLayout(t, msg)
			if len(l.frameEnds) != 5 {
				t.Fatalf("%d frames, want 5", len(l.frameEnds))
			}
			// plainBefore(pos) is how much plaintext precedes the frame
			// holding byte pos: all an unsigned stream may release.
			plainBefore := func(pos int) int {
				if suite.Signed() {
					return 0
				}
				for i, end := range l.frameEnds {
					if pos < end {
						return i * frame
					}
				}
				return len(pt)
			}
			dec := func(m []byte) ([]byte, error) {
				var out bytes.Buffer
				_, err := c.Decrypt(t.Context(), &out, bytes.NewReader(m), envelope.DecryptOptions{})
				return out.Bytes(), err
			}

			for i := range msg {
				bad := bytes.Clone(msg)
				bad[i] ^= 0x01
				out, err := dec(bad)
				what := fmt.Sprintf("flip byte %d", i)
				if err == nil {
					t.Fatalf("%s: decrypted", what)
				}
				var want []envelope.Kind
				switch {
				case i < l.headerEnd:
					want = headerKinds
				case i < l.bodyEnd:
					want = bodyKinds
				default:
					want = []envelope.Kind{envelope.KindBadSignature, envelope.KindMalformed, envelope.KindTruncated}
				}
				if !slices.Contains(want, kindOf(err)) {
					t.Fatalf("%s: error %v (kind %d), want one of %v", what, err, kindOf(err), want)
				}
				checkReleased(t, what, out, pt, plainBefore(i))
			}

			for cut := 0; cut < len(msg); cut++ {
				out, err := dec(msg[:cut])
				what := fmt.Sprintf("truncate at %d", cut)
				if !errors.Is(err, envelope.ErrTruncated) {
					t.Fatalf("%s: error %v, want truncated", what, err)
				}
				checkReleased(t, what, out, pt, plainBefore(cut))
			}
			// Trailing garbage is refused too.
			if _, err := dec(append(bytes.Clone(msg), 0)); !errors.Is(err, envelope.ErrMalformed) {
				t.Fatalf("trailing byte: %v", err)
			}

			frames := [][]byte{}
			start := l.headerEnd
			for _, end := range l.frameEnds {
				frames = append(frames, msg[start:end])
				start = end
			}
			rebuild := func(fs ...[]byte) []byte {
				m := bytes.Clone(msg[:l.headerEnd])
				for _, f := range fs {
					m = append(m, f...)
				}
				return append(m, msg[l.bodyEnd:]...)
			}
			for name, m := range map[string][]byte{
				"swap frames 1 and 2":  rebuild(frames[1], frames[0], frames[2], frames[3], frames[4]),
				"drop frame 2":         rebuild(frames[0], frames[2], frames[3], frames[4]),
				"duplicate frame 1":    rebuild(frames[0], frames[0], frames[1], frames[2], frames[3], frames[4]),
				"final frame moved up": rebuild(frames[0], frames[4]),
			} {
				out, err := dec(m)
				if !errors.Is(err, envelope.ErrTamperedBody) {
					t.Fatalf("%s: error %v, want tampered body", name, err)
				}
				checkReleased(t, name, out, pt, plainBefore(l.frameEnds[0]))
			}

			// Another message's frames under this header fail too.
			other := encrypt(t, c, pt, envelope.EncryptOptions{Suite: suite, FrameLength: frame, EncryptionContext: map[string]string{"k": "v"}})
			ol := parseLayout(t, other)
			spliced := append(bytes.Clone(msg[:l.headerEnd]), other[ol.headerEnd:]...)
			if out, err := dec(spliced); !errors.Is(err, envelope.ErrTamperedBody) || len(out) != 0 {
				t.Fatalf("spliced body: %v, %d bytes out", err, len(out))
			}

			// Changing the encryption context: demanded by the reader but
			// absent, or rewritten in the header (KMS then refuses the
			// data key, since the context is its AAD).
			if out, err := decWith(c, msg, map[string]string{"k": "w"}); !errors.Is(err, envelope.ErrEncryptionContext) || len(out) != 0 {
				t.Fatalf("required context differs: %v", err)
			}
			i := bytes.Index(msg[:l.headerEnd], []byte("k\x00\x01v"))
			if i < 0 {
				t.Fatal("context pair not found in the header")
			}
			bad := bytes.Clone(msg)
			bad[i+3] = 'w'
			if out, err := dec(bad); !errors.Is(err, envelope.ErrWrongKey) || len(out) != 0 {
				t.Fatalf("rewritten context: %v", err)
			}
		})
	}
}

func decWith(c *envelope.Client, msg []byte, ec map[string]string) ([]byte, error) {
	var out bytes.Buffer
	_, err := c.Decrypt(testingContext(), &out, bytes.NewReader(msg), envelope.DecryptOptions{EncryptionContext: ec})
	return out.Bytes(), err
}

// TestUnsafeStreamingSaysSo: in streaming mode a signed message with a bad
// signature releases its (GCM-authenticated) frames, then fails with
// ErrBadSignature; the default mode releases nothing.
func TestUnsafeStreamingSaysSo(t *testing.T) {
	t.Parallel()
	kms := fakekms.New()
	c := envelope.NewKMS(kms, kms.CreateKey(""))
	pt := randBytes(t, 1000)
	msg := encrypt(t, c, pt, envelope.EncryptOptions{FrameLength: 100})
	msg[len(msg)-1] ^= 1 // the signature's last byte
	var out bytes.Buffer
	if _, err := c.Decrypt(t.Context(), &out, bytes.NewReader(msg), envelope.DecryptOptions{UnsafeStreaming: true}); !errors.Is(err, envelope.ErrBadSignature) || !bytes.Equal(out.Bytes(), pt) {
		t.Fatalf("streaming: %v, %d bytes out", err, out.Len())
	}
	out.Reset()
	if _, err := c.Decrypt(t.Context(), &out, bytes.NewReader(msg), envelope.DecryptOptions{}); !errors.Is(err, envelope.ErrBadSignature) || out.Len() != 0 {
		t.Fatalf("default: %v, %d bytes out", err, out.Len())
	}
}

type countReader struct {
	r io.Reader
	n int
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestFailFast: a tampered early frame stops the reading stage, instead of
// reading (and hashing) the rest of a large message first. The reader may
// be a pipeline's worth of batches ahead (16 of about 320 KiB) when the
// failure is seen, so the message is much larger than that.
func TestFailFast(t *testing.T) {
	t.Parallel()
	kms := fakekms.New()
	c := envelope.NewKMS(kms, kms.CreateKey(""))
	for _, s := range []*format.Suite{format.AES256HKDFSHA512CommitKey, format.AES256HKDFSHA512CommitKeyECDSAP384} {
		msg := encrypt(t, c, make([]byte, 48<<20), envelope.EncryptOptions{Suite: s})
		l := parseLayout(t, msg)
		msg[l.headerEnd+100] ^= 1
		cr := &countReader{r: bytes.NewReader(msg)}
		var out bytes.Buffer
		if _, err := c.Decrypt(t.Context(), &out, cr, envelope.DecryptOptions{}); !errors.Is(err, envelope.ErrTamperedBody) || out.Len() != 0 {
			t.Fatalf("%s: %v, %d bytes out", s.Name, err, out.Len())
		}
		if cr.n > len(msg)/4 {
			t.Fatalf("%s: read %d of %d bytes after the first frame failed", s.Name, cr.n, len(msg))
		}
	}
}

package format

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"io"
	"testing"
)

func sampleHeader(t testing.TB) []byte {
	t.Helper()
	h := &Header{Version: 2, Suite: AES256HKDFSHA512CommitKey, MessageID: make([]byte, 32),
		EncryptionContext: map[string]string{"b": "2", "a": "1"},
		EDKs:              []EDK{{ProviderID: ProviderAWSKMS, ProviderInfo: []byte("arn:aws:kms:us-east-1:111122223333:key/x"), Ciphertext: []byte{1, 2, 3}}},
		ContentType:       ContentFramed, FrameLength: 64, SuiteData: make([]byte, 32), AuthTag: make([]byte, 16)}
	body, err := h.MarshalBody()
	if err != nil {
		t.Fatal(err)
	}
	return append(body, h.MarshalAuth()...)
}

// TestHeaderRoundTrip: a marshalled header parses back to the same fields
// and body bytes, and every strict prefix is a truncation.
func TestHeaderRoundTrip(t *testing.T) {
	raw := sampleHeader(t)
	h, err := ReadHeader(bytes.NewReader(raw), 0)
	if err != nil {
		t.Fatal(err)
	}
	if h.Suite != AES256HKDFSHA512CommitKey || h.EncryptionContext["a"] != "1" || len(h.EDKs) != 1 || h.FrameLength != 64 || !bytes.Equal(h.Body, raw[:len(raw)-16]) {
		t.Fatalf("%+v", h)
	}
	for i := range raw {
		if _, err := ReadHeader(bytes.NewReader(raw[:i]), 0); !errors.Is(err, ErrTruncated) {
			t.Fatalf("prefix %d: %v", i, err)
		}
	}
}

func TestSealOpenFrames(t *testing.T) {
	b, _ := aes.NewCipher(make([]byte, 32))
	g, _ := cipher.NewGCM(b)
	id := make([]byte, 32)
	var msg, aad []byte
	msg, aad = SealFrame(msg, g, id, 1, false, bytes.Repeat([]byte{1}, 8), aad)
	msg, _ = SealFrame(msg, g, id, 2, true, []byte{2, 2}, aad)
	fr := NewFrameReader(bufio.NewReader(bytes.NewReader(msg)), 8)
	var got []byte
	for {
		f, err := fr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pt, _, err := OpenFrame(nil, g, id, f, nil)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, pt...)
	}
	if !bytes.Equal(got, append(bytes.Repeat([]byte{1}, 8), 2, 2)) {
		t.Fatalf("%x", got)
	}
}

// FuzzReadHeader: any input either parses or fails with a typed error;
// never a panic, never an unbounded allocation.
func FuzzReadHeader(f *testing.F) {
	f.Add(sampleHeader(f))
	f.Add([]byte{1, 0x80, 0x03, 0x78})
	f.Add([]byte{2, 0x05, 0x78})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ReadHeader(bytes.NewReader(b), 0)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if !bytes.HasPrefix(b, h.Body) {
			t.Fatal("Body is not the bytes read")
		}
	})
}

// FuzzFrames: the frame reader on arbitrary bytes.
func FuzzFrames(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1}, uint16(8))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1}, uint16(1))
	f.Fuzz(func(t *testing.T, b []byte, frameLen uint16) {
		if frameLen == 0 {
			return
		}
		fr := NewFrameReader(bufio.NewReader(bytes.NewReader(b)), uint32(frameLen))
		for range 1000 {
			fm, err := fr.Next()
			if err != nil {
				if err != io.EOF && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrFrameOrder) {
					t.Fatalf("untyped error %v", err)
				}
				return
			}
			if len(fm.Sealed) < TagLen || len(fm.IV) != IVLen {
				t.Fatalf("frame %+v", fm)
			}
		}
	})
}

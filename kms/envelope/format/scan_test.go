package format

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// errKind names the error kinds the frame parsers return.
func errKind(err error) string {
	for _, k := range []error{ErrTruncated, ErrFrameOrder, ErrMalformed, io.EOF} {
		if errors.Is(err, k) {
			return k.Error()
		}
	}
	if err != nil {
		return "untyped: " + err.Error()
	}
	return ""
}

// FuzzFrameScanner: FrameScanner (chunked, in place) and FrameReader (one
// frame at a time) accept the same frames and fail the same way on any
// input, whatever the read sizes and the batch limit, and leave the same
// bytes after the final frame.
func FuzzFrameScanner(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1}, uint16(8), uint16(1), uint8(0))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1}, uint16(1), uint16(100), uint8(1))
	f.Add(append(append(bytes.Repeat([]byte{0}, 3), 1), make([]byte, 12+4+16)...), uint16(4), uint16(3), uint8(2))
	f.Fuzz(func(t *testing.T, b []byte, frameLen, limit uint16, mode uint8) {
		if frameLen == 0 {
			return
		}
		type got struct {
			raw   []byte
			seq   uint32
			final bool
		}
		var want []got
		fr := NewFrameReader(bufio.NewReader(bytes.NewReader(b)), uint32(frameLen))
		var wantErr error
		for {
			fm, err := fr.Next()
			if err != nil {
				wantErr = err
				break
			}
			want = append(want, got{bytes.Clone(fm.Raw), fm.Seq, fm.Final})
			if fm.Final {
				break
			}
		}
		var r io.Reader = bytes.NewReader(b)
		switch mode % 3 {
		case 1:
			r = iotest.OneByteReader(r)
		case 2:
			r = iotest.HalfReader(r)
		}
		sc := NewFrameScanner(r, uint32(frameLen))
		var have []got
		var haveErr error
		var buf []byte
		var refs []FrameRef
		for !sc.Done() {
			var err error
			buf, refs, err = sc.Fill(buf[:0], refs[:0], int(limit))
			for _, ref := range refs {
				raw := buf[ref.Start:ref.End]
				if !bytes.Equal(buf[ref.IV:ref.IV+IVLen], raw[ref.IV-ref.Start:][:IVLen]) || ref.SealedAt+TagLen > ref.End {
					t.Fatalf("bad ref %+v", ref)
				}
				have = append(have, got{bytes.Clone(raw), ref.Seq, ref.Final})
			}
			if err != nil {
				haveErr = err
				break
			}
		}
		if len(have) != len(want) {
			t.Fatalf("scanner: %d frames, reader: %d", len(have), len(want))
		}
		for i := range have {
			if !bytes.Equal(have[i].raw, want[i].raw) || have[i].seq != want[i].seq || have[i].final != want[i].final {
				t.Fatalf("frame %d differs", i)
			}
		}
		if errKind(haveErr) != errKind(wantErr) {
			t.Fatalf("scanner error %v, reader error %v", haveErr, wantErr)
		}
		if sc.Done() {
			rest, _ := io.ReadAll(sc.Rest())
			used := 0
			for _, w := range want {
				used += len(w.raw)
			}
			if !bytes.Equal(rest, b[used:]) {
				t.Fatalf("rest: %d bytes, want %d", len(rest), len(b)-used)
			}
		}
	})
}

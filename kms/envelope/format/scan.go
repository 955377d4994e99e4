package format

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
)

// FrameRef locates one frame inside a buffer filled by FrameScanner.
type FrameRef struct {
	Seq        uint32
	Final      bool
	Start, End int // the raw frame
	IV         int // offset of the IV
	SealedAt   int // offset of content || tag
}

// FrameScanner reads a framed body in large chunks straight into the
// caller's buffer and locates the frames in place, so the bytes are
// copied once (from the source) instead of once more per frame. It
// enforces exactly what FrameReader does (sequence numbers from 1 without
// gaps, regular frames of the frame length, a final frame no longer, at
// most 2^32-1 frames, the same error kinds); FuzzFrameScanner checks that
// both agree. Bytes read past the final frame (the footer) are kept for
// Rest.
type FrameScanner struct {
	r        io.Reader
	frameLen uint32
	next     uint32
	done     bool
	carry    []byte // read past the last frame returned
}

// NewFrameScanner scans frames of frameLength bytes from r.
func NewFrameScanner(r io.Reader, frameLength uint32) *FrameScanner {
	return &FrameScanner{r: r, frameLen: frameLength, next: 1}
}

// Done reports whether the final frame has been returned.
func (s *FrameScanner) Done() bool { return s.done }

// Rest returns what follows the final frame: the bytes already read, then
// the rest of the source.
func (s *FrameScanner) Rest() io.Reader {
	if len(s.carry) == 0 {
		return s.r
	}
	return io.MultiReader(bytes.NewReader(s.carry), s.r)
}

// readChunk is how far beyond the batch limit one read may go, so that a
// batch usually takes one read and the next batch starts with at most
// this much carried over.
const readChunk = 64 << 10

// Fill appends whole frames to dst, recording them in refs, until the
// frames appended reach limit bytes or the final frame is among them. On
// an error it returns the whole frames before it, and the error; after
// the final frame it returns io.EOF.
func (s *FrameScanner) Fill(dst []byte, refs []FrameRef, limit int) ([]byte, []FrameRef, error) {
	if s.done {
		return dst, refs, io.EOF
	}
	base := len(dst)
	dst = append(dst, s.carry...)
	s.carry = s.carry[:0]
	pos := base
	eof := false
	stalls := 0
	for {
		ref, n, need, err := s.parse(dst[pos:])
		if err != nil {
			return dst[:pos], refs, err
		}
		if n > 0 {
			ref.Start += pos
			ref.End += pos
			ref.IV += pos
			ref.SealedAt += pos
			refs = append(refs, ref)
			pos += n
			if ref.Final {
				s.done = true
			}
			if ref.Final || pos-base >= limit {
				s.carry = append(s.carry, dst[pos:]...)
				return dst[:pos], refs, nil
			}
			continue
		}
		if eof {
			return dst[:pos], refs, s.truncated(dst[pos:])
		}
		// Room for the frame at pos, and for the rest of the batch in one
		// read; never more than the frame in hand needs plus a chunk (a
		// hostile frame length must not make a short message allocate).
		want := max(pos+need, base+limit+readChunk)
		dst = slices.Grow(dst, want-len(dst))
		m, rerr := s.r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+m]
		switch {
		case rerr == io.EOF:
			eof = true
		case rerr != nil:
			return dst[:pos], refs, rerr
		case m == 0:
			if stalls++; stalls > 100 {
				return dst[:pos], refs, io.ErrNoProgress
			}
		default:
			stalls = 0
		}
	}
}

// parse locates the frame at the start of b. n is its length, or 0 when b
// holds only part of it; need is then how many bytes from b's start
// parsing needs next.
func (s *FrameScanner) parse(b []byte) (ref FrameRef, n, need int, err error) {
	if len(b) < 4 {
		return ref, 0, 4, nil
	}
	seq := binary.BigEndian.Uint32(b)
	hdr := 4
	if seq == SequenceNumberEnd {
		if len(b) < 8 {
			return ref, 0, 8, nil
		}
		ref.Final = true
		seq = binary.BigEndian.Uint32(b[4:])
		hdr = 8
	}
	if seq != s.next {
		return ref, 0, 0, fmt.Errorf("%w: frame sequence number %d, want %d", ErrFrameOrder, seq, s.next)
	}
	ref.Seq = seq
	ref.IV = hdr
	contentLen := s.frameLen
	if ref.Final {
		if len(b) < hdr+IVLen+4 {
			return ref, 0, hdr + IVLen + 4, nil
		}
		contentLen = binary.BigEndian.Uint32(b[hdr+IVLen:])
		if contentLen > s.frameLen {
			return ref, 0, 0, fmt.Errorf("%w: final frame content of %d bytes exceeds the frame length %d", ErrMalformed, contentLen, s.frameLen)
		}
		ref.SealedAt = hdr + IVLen + 4
	} else {
		ref.SealedAt = hdr + IVLen
	}
	total := ref.SealedAt + int(contentLen) + TagLen
	if len(b) < total {
		return ref, 0, total, nil
	}
	ref.End = total
	if !ref.Final {
		if s.next == SequenceNumberEnd-1 {
			return ref, 0, 0, fmt.Errorf("%w: more than 2^32-1 frames", ErrMalformed)
		}
		s.next++
	}
	return ref, total, 0, nil
}

// truncated describes a stream that ends inside the frame starting b, in
// FrameReader's words.
func (s *FrameScanner) truncated(b []byte) error {
	switch {
	case len(b) < 4:
		return fmt.Errorf("%w: stream ends inside frame %d (no final frame)", ErrTruncated, s.next)
	case binary.BigEndian.Uint32(b) == SequenceNumberEnd:
		return fmt.Errorf("%w: stream ends inside the final frame", ErrTruncated)
	default:
		return fmt.Errorf("%w: stream ends inside frame %d", ErrTruncated, s.next)
	}
}

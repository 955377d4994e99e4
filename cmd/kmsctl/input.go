package main

import (
	"errors"
	"io"
	"os"
)

// An input file that is mostly not in the page cache (typically a large
// ciphertext to decrypt) is read ahead in chunks straight from the disk
// with O_DIRECT into buffers of our own, never through the page cache: on
// the VM of scripts/bench-envelope, reading 1 GiB that was not cached cost
// 1.2 to 2.4 s of system time (every new page-cache page is a host fault
// there, see direct.go), which the signed suites' second core cannot
// spare. A cached file is read as before: from the cache, with one copy.
//
// Every free buffer has its read in flight at once, each from its own
// goroutine: a single read-ahead goroutine, runnable again after each
// read, waited up to a scheduler time slice behind the CPU-bound hasher
// and workers, and a signed decrypt from an uncached file took 1.8 s
// instead of 1.5 s from a cached one.
const (
	inputChunk   = 4 << 20
	inputBuffers = 4
)

var errInputClosed = errors.New("read after close")

// pendingChunk is one chunk read in flight; res gets its length and error.
type pendingChunk struct {
	buf []byte
	res chan chunkResult
}

type chunkResult struct {
	n   int
	err error
}

// fileInput reads a regular file with O_DIRECT, inputBuffers chunks ahead.
type fileInput struct {
	direct *os.File
	bufs   [][]byte
	queue  []pendingChunk // in file order
	next   int64          // offset of the next chunk to start
	ended  bool           // a short chunk was read: start no more
	cur    []byte         // the unread part of the chunk in hand
	curBuf []byte         // the buffer of the chunk in hand
	err    error
	closed bool
}

// newFileInput reads f (size bytes, at offset 0, opened by the caller)
// with direct read-ahead when it is mostly uncached, or returns f itself
// when it is cached or the direct path is not available (not Linux, a
// file system without O_DIRECT, no memory for the buffers).
func newFileInput(f *os.File, size int64) io.ReadCloser {
	if !mostlyUncached(f, size) {
		return io.NopCloser(f)
	}
	direct, err := openDirect(f.Name())
	if err != nil {
		return io.NopCloser(f)
	}
	// The path is opened again: it must still name the file the caller
	// opened (and took the size of), not one renamed into its place since.
	if !sameFile(f, direct) {
		direct.Close()
		return io.NopCloser(f)
	}
	in := &fileInput{direct: direct}
	for range inputBuffers {
		b, err := alignedBuffer(inputChunk)
		if err != nil {
			for _, b := range in.bufs {
				releaseBuffer(b)
			}
			direct.Close()
			return io.NopCloser(f)
		}
		in.bufs = append(in.bufs, b)
	}
	for _, b := range in.bufs {
		in.start(b)
	}
	return in
}

func sameFile(a, b *os.File) bool {
	sa, err := a.Stat()
	if err != nil {
		return false
	}
	sb, err := b.Stat()
	return err == nil && os.SameFile(sa, sb)
}

// start reads the next chunk into b in the background.
func (in *fileInput) start(b []byte) {
	if in.ended {
		return
	}
	p := pendingChunk{buf: b, res: make(chan chunkResult, 1)}
	off := in.next
	in.next += int64(len(b))
	go func() {
		n, err := readChunkAt(in.direct, p.buf, off)
		p.res <- chunkResult{n, err}
	}()
	in.queue = append(in.queue, p)
}

func (in *fileInput) Read(p []byte) (int, error) {
	for len(in.cur) == 0 {
		if in.err != nil {
			return 0, in.err
		}
		if in.curBuf != nil {
			in.start(in.curBuf)
			in.curBuf = nil
		}
		if len(in.queue) == 0 {
			in.err = io.EOF
			continue
		}
		c := in.queue[0]
		in.queue = in.queue[1:]
		r := <-c.res
		in.cur, in.curBuf = c.buf[:r.n], c.buf
		switch {
		case r.err != nil:
			in.err, in.ended = r.err, true
		case r.n < len(c.buf):
			in.ended = true // the end of the file; what it read is still served
		}
	}
	n := copy(p, in.cur)
	in.cur = in.cur[n:]
	return n, nil
}

// Close waits for the reads in flight and releases the buffers; the caller
// closes its file.
func (in *fileInput) Close() error {
	if in.closed {
		return nil
	}
	in.closed = true
	in.ended = true
	for _, c := range in.queue {
		<-c.res
	}
	in.queue, in.cur, in.curBuf = nil, nil, nil
	in.err = errInputClosed // the buffers are unmapped below
	for _, b := range in.bufs {
		releaseBuffer(b)
	}
	in.bufs = nil
	return in.direct.Close()
}

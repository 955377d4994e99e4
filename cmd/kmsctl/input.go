package main

import (
	"errors"
	"io"
	"os"
)

// An input file that is mostly not in the page cache (typically a large
// ciphertext to decrypt) is read ahead in chunks by a goroutine straight
// from the disk with O_DIRECT into buffers of our own, never through the
// page cache: on the VM of scripts/bench-envelope, reading 1 GiB that was
// not cached cost 1.2 to 2.4 s of system time (every new page-cache page
// is a host fault there, see direct.go), which the signed suites' second
// core cannot spare. A cached file is read as before: from the cache,
// with one copy.
const (
	inputChunk   = 4 << 20
	inputBuffers = 3
)

var errInputClosed = errors.New("read after close")

type inputChunkResult struct {
	b   []byte
	err error
}

// fileInput reads a regular file through readAhead.
type fileInput struct {
	direct *os.File
	bufs   [][]byte
	free   chan []byte
	filled chan inputChunkResult
	stop   chan struct{}
	done   chan struct{}
	cur    []byte // the unread part of the chunk in hand
	curBuf []byte // the whole chunk in hand, returned to free when read
	err    error
	closed bool
}

// newFileInput reads f (size bytes, at offset 0, opened by the caller)
// with direct read ahead when it is mostly uncached, or returns f itself
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
	var bufs [][]byte
	for range inputBuffers {
		b, err := alignedBuffer(inputChunk)
		if err != nil {
			for _, b := range bufs {
				releaseBuffer(b)
			}
			direct.Close()
			return io.NopCloser(f)
		}
		bufs = append(bufs, b)
	}
	in := &fileInput{direct: direct, bufs: bufs, free: make(chan []byte, inputBuffers),
		filled: make(chan inputChunkResult, inputBuffers), stop: make(chan struct{}), done: make(chan struct{})}
	for _, b := range bufs {
		in.free <- b
	}
	go in.readAhead()
	return in
}

// readAhead fills the free buffers in file order until the end of the
// file or an error, which it passes on after the data before it.
func (in *fileInput) readAhead() {
	defer close(in.done)
	var off int64
	for {
		var b []byte
		select {
		case b = <-in.free:
		case <-in.stop:
			return
		}
		n, err := readChunkAt(in.direct, b, off)
		off += int64(n)
		in.filled <- inputChunkResult{b[:n], err} // capacity inputBuffers: never blocks
		if n == 0 || err != nil {
			return
		}
	}
}

func (in *fileInput) Read(p []byte) (int, error) {
	for len(in.cur) == 0 {
		if in.err != nil {
			return 0, in.err
		}
		if in.curBuf != nil {
			in.free <- in.curBuf[:cap(in.curBuf)]
			in.curBuf = nil
		}
		c := <-in.filled
		switch {
		case c.err != nil:
			in.err = c.err
		case len(c.b) == 0:
			in.err = io.EOF
		}
		in.cur, in.curBuf = c.b, c.b
	}
	n := copy(p, in.cur)
	in.cur = in.cur[n:]
	return n, nil
}

// Close stops the read-ahead and releases the buffers; the caller closes
// its file.
func (in *fileInput) Close() error {
	if in.closed {
		return nil
	}
	in.closed = true
	in.err = errInputClosed // the buffers are unmapped below
	in.cur = nil
	close(in.stop)
	<-in.done
	for _, b := range in.bufs {
		releaseBuffer(b)
	}
	in.bufs, in.cur, in.curBuf = nil, nil, nil
	return in.direct.Close()
}

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
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

// errInputChanged: the input ended before the size it had when it was
// opened (another process truncated or replaced its content meanwhile).
var errInputChanged = errors.New("input changed or was truncated while reading")

// pendingChunk is one chunk read in flight; res gets its length and error.
type pendingChunk struct {
	buf  []byte
	off  int64 // where it starts in the file
	want int   // the bytes the file had there when opened
	res  chan chunkResult
}

type chunkResult struct {
	n   int
	err error
}

// fileInput reads the size bytes a regular file had when opened with
// O_DIRECT, inputBuffers chunks ahead. A chunk that ends before that size
// ends the input with errInputChanged: the chunks after it (read in
// parallel, perhaps of a file extended again since) are never used.
type fileInput struct {
	file   *os.File // the caller's: buffered reads once O_DIRECT is refused
	direct *os.File
	pread  func(b []byte, off int64) (int, error) // one O_DIRECT read (tests fake it)
	size   int64
	// refused: a read with O_DIRECT was refused for its alignment (EINVAL),
	// so the rest of the file is read through the page cache.
	refused atomic.Bool
	bufs    [][]byte
	queue   []pendingChunk // in file order
	next    int64          // offset of the next chunk to start
	ended   bool           // a chunk failed or was short: start no more
	cur     []byte         // the unread part of the chunk in hand
	curBuf  []byte         // the buffer of the chunk in hand
	err     error
	closed  bool
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
	in, err := newDirectInput(f, direct, size, func(b []byte, off int64) (int, error) { return preadDirect(direct, b, off) })
	if err != nil {
		direct.Close()
		return io.NopCloser(f)
	}
	return in
}

// newDirectInput starts the read-ahead of f's first size bytes with pread
// on direct (f opened again with O_DIRECT), which Close closes; f stays
// the caller's. It fails only for want of memory for the buffers.
func newDirectInput(f, direct *os.File, size int64, pread func([]byte, int64) (int, error)) (*fileInput, error) {
	in := &fileInput{file: f, direct: direct, pread: pread, size: size}
	for range inputBuffers {
		b, err := alignedBuffer(inputChunk)
		if err != nil {
			for _, b := range in.bufs {
				releaseBuffer(b)
			}
			return nil, err
		}
		in.bufs = append(in.bufs, b)
	}
	for _, b := range in.bufs {
		in.start(b)
	}
	return in, nil
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
	if in.ended || in.next >= in.size {
		return
	}
	p := pendingChunk{buf: b, off: in.next, want: int(min(int64(len(b)), in.size-in.next)), res: make(chan chunkResult, 1)}
	in.next += int64(p.want)
	go func() {
		n, err := in.readChunk(p.buf, p.off, p.want)
		p.res <- chunkResult{n, err}
	}()
	in.queue = append(in.queue, p)
}

// readChunk fills b[:want] with the file's bytes at off (aligned): with
// O_DIRECT, or through the page cache from where the direct reads stopped
// once one is refused. It returns fewer than want bytes only if the file
// ends sooner.
func (in *fileInput) readChunk(b []byte, off int64, want int) (int, error) {
	k := 0
	for k < want && !in.refused.Load() {
		// Whole blocks: the file's last one is read in full (the read
		// stops at the end of the file) and only its part before size
		// used. len(b) is a multiple of directAlign.
		m, err := in.pread(b[k:min(len(b), (want+directAlign-1)&^(directAlign-1))], off+int64(k))
		if err != nil {
			if !directRefused(err) {
				return k, err
			}
			// From an aligned offset, the device wants more alignment
			// than directAlign: read the rest of the file buffered. From
			// the unaligned offset a short read left (the file shrank
			// meanwhile), only this chunk.
			if k%directAlign == 0 {
				in.refused.Store(true)
			}
			break
		}
		if m <= 0 {
			return k, nil // the end of the file
		}
		k += m
	}
	if k >= want {
		return want, nil // the file may have grown: only its size at open
	}
	// ReadAt returns what it read along with its error (io.EOF if the file
	// ends first): continue exactly after the last byte read.
	m, err := in.file.ReadAt(b[k:want], off+int64(k))
	k += m
	if err == io.EOF {
		err = nil
	}
	return k, err
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
		// What a failed or short chunk did read is still served, then the
		// error; the chunks queued after it are not.
		switch {
		case r.err != nil:
			in.err, in.ended = fmt.Errorf("reading %s: %w", in.file.Name(), r.err), true
		case r.n < c.want:
			in.err, in.ended = fmt.Errorf("%s: %w: it ended at byte %d, it had %d bytes when opened", in.file.Name(), errInputChanged, c.off+int64(r.n), in.size), true
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

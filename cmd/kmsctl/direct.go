package main

import (
	"errors"
	"os"
)

// Output files are written with O_DIRECT where the file system allows it:
// the bytes go from our buffers to the disk, never through the page cache.
// Measured on the 2-core VM of scripts/bench-envelope, buffered writing of
// a 1 GiB output cost 0.35 s of system time when the kernel reused page
// cache it had just freed, and 1.5 to 2.8 s when it had to take fresh
// pages (the hypervisor backs guest memory lazily and takes back what the
// guest frees: every new page is a host fault), plus an fsync of the whole
// file at the end; `dd bs=8M oflag=direct conv=fsync` of the same GiB took
// 0.65 s wall and 0.18 s of system time whatever the state. The output is
// written back anyway (Commit fsyncs it), and the encryptor never reads it
// again, so the page cache buys nothing here.
//
// O_DIRECT needs aligned memory, lengths and offsets: Write copies into
// directChunk-sized aligned buffers, a goroutine writes full ones while
// the next fills (the pipeline never waits for the disk unless it is
// directBuffers chunks ahead), and finish writes the aligned part of the
// last chunk directly and the rest (< directAlign bytes) buffered.
const (
	directChunk   = 4 << 20
	directBuffers = 4
	// directAlign is a multiple of every logical block size in use (512
	// or 4096), as O_DIRECT requires of addresses, lengths and offsets.
	directAlign = 4096
)

// directWriter writes a file opened for O_DIRECT.
type directWriter struct {
	f      *os.File
	write  func([]byte) (int, error) // f.Write, or a test's
	bufs   [][]byte                  // all buffers, released by close
	cur    []byte                    // being filled
	free   chan []byte
	full   chan []byte
	failed chan struct{} // closed by run on its first error
	done   chan struct{} // closed when run returns
	err    error         // set by run before it closes failed
	closed bool
}

// newDirectWriter switches f to O_DIRECT and starts its writer goroutine,
// or returns an error (the file system does not support it, or memory for
// the buffers could not be had); f is then unchanged.
func newDirectWriter(f *os.File) (*directWriter, error) {
	return newDirectWriterWith(f, f.Write)
}

// newDirectWriterWith is newDirectWriter with the function that writes to
// f (tests make it fail).
func newDirectWriterWith(f *os.File, write func([]byte) (int, error)) (*directWriter, error) {
	var bufs [][]byte
	for range directBuffers {
		b, err := alignedBuffer(directChunk)
		if err != nil {
			for _, b := range bufs {
				releaseBuffer(b)
			}
			return nil, err
		}
		bufs = append(bufs, b)
	}
	if err := setDirect(f, true); err != nil {
		for _, b := range bufs {
			releaseBuffer(b)
		}
		return nil, err
	}
	w := &directWriter{f: f, write: write, bufs: bufs, free: make(chan []byte, directBuffers), full: make(chan []byte, directBuffers),
		failed: make(chan struct{}), done: make(chan struct{})}
	for _, b := range bufs {
		w.free <- b[:0]
	}
	go w.run()
	return w, nil
}

func (w *directWriter) run() {
	defer close(w.done)
	for b := range w.full {
		if w.err == nil {
			n, err := w.write(b)
			if err != nil && directRefused(err) {
				// A device that wants more alignment than directAlign:
				// the rest goes through the page cache. Only what this
				// write did not write: a short write before the refusal
				// has moved the offset.
				if err = setDirect(w.f, false); err == nil {
					_, err = w.write(b[n:])
				}
			}
			if err != nil {
				w.err = err
				close(w.failed)
			}
		}
		w.free <- b[:0] // capacity directBuffers: never blocks
	}
}

var errDirectClosed = errors.New("direct writer: write after close")

// Write copies p into the buffers; full ones go to the disk in the
// background. It fails with the writer's error once one write failed.
func (w *directWriter) Write(p []byte) (int, error) {
	if w.closed {
		return 0, errDirectClosed
	}
	n := 0
	for len(p) > 0 {
		select {
		case <-w.failed:
			return n, w.err
		default:
		}
		if w.cur == nil {
			select {
			case w.cur = <-w.free:
			case <-w.failed:
				return n, w.err
			}
		}
		k := copy(w.cur[len(w.cur):cap(w.cur)], p)
		w.cur = w.cur[:len(w.cur)+k]
		p, n = p[k:], n+k
		if len(w.cur) == cap(w.cur) {
			w.full <- w.cur // at most directBuffers exist: never blocks
			w.cur = nil
		}
	}
	return n, nil
}

// finish writes everything written so far and stops the goroutine: the
// aligned part of the last buffer directly, the rest buffered (with
// O_DIRECT switched off). The caller then fsyncs.
func (w *directWriter) finish() error {
	if w.closed {
		return errDirectClosed
	}
	defer w.release()
	tail := w.cur
	aligned := len(tail) &^ (directAlign - 1)
	if aligned > 0 {
		w.full <- tail[:aligned]
	}
	w.drain()
	if w.err != nil {
		return w.err
	}
	if err := setDirect(w.f, false); err != nil {
		return err
	}
	if rest := tail[aligned:]; len(rest) > 0 {
		if _, err := w.f.Write(rest); err != nil {
			return err
		}
	}
	return nil
}

// abort stops the goroutine after the writes queued (the file is about to
// be removed) and releases the buffers; idempotent.
func (w *directWriter) abort() {
	if !w.closed {
		w.drain()
		w.release()
	}
}

func (w *directWriter) drain() {
	w.closed = true
	close(w.full)
	<-w.done
}

func (w *directWriter) release() {
	for _, b := range w.bufs {
		releaseBuffer(b)
	}
	w.bufs, w.cur = nil, nil
}

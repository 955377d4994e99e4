package main

import (
	"bufio"
	"io"
	"os"

	"hsmkms/kms/envelope"
)

// The spool of a safe decrypt to stdout (a signed message larger than
// 1 MiB: pass 1 writes its ciphertext there while hashing it, pass 2
// decrypts it from there once the signature verified) bypasses the page
// cache where the file system allows it, as output files (direct.go) and
// uncached inputs (input.go) do: it is written with directWriter and read
// back with the O_DIRECT read-ahead of fileInput. Through the page cache,
// the 1 GiB spool of scripts/bench-envelope cost 0.35 to 2.8 s of system
// time on its VM to allocate the cache pages (see direct.go), on top of a
// hash-bound pass 1 of 1.5 s. Where O_DIRECT is refused (opening the file
// with it, switching it on, no memory for aligned buffers), the spool is
// written through a bufio buffer and read through the page cache, as
// kms/envelope's default spool is; a write or read refused later for its
// alignment (EINVAL) continues through the page cache (directWriter,
// fileInput).
//
// Pass 2 releases, without checking the signature again, the plaintext of
// whatever it reads from the spool, so the spool must yield exactly the
// bytes pass 1 hashed. It is private to this process: created 0600 by
// os.CreateTemp, opened a second time (with O_DIRECT, for pass 2) and
// unlinked before a single byte is written, so no other process can open
// it by name, only through this process's descriptors (which takes the
// rights to trace it anyway). Being unlinked from the start, it is gone on
// every path, error, cancellation, SIGINT or a crash, once its
// descriptors are closed (Close, or the process's exit).

// spoolIO replaces the O_DIRECT system calls of a spool (tests make them
// fail); nil fields are the real ones.
type spoolIO struct {
	openDirect func(path string) (*os.File, error)
	write      func(f *os.File, b []byte) (int, error)
	pread      func(d *os.File, b []byte, off int64) (int, error)
}

// fileSpool is kmsctl's envelope.SpoolFile.
type fileSpool struct {
	f    *os.File      // created 0600, unlinked; pass 1 writes it
	d    *os.File      // f opened again with O_DIRECT, for pass 2; nil: buffered
	dw   *directWriter // pass 1 with O_DIRECT (nil: bw)
	bw   *bufio.Writer
	in   *fileInput // pass 2 with O_DIRECT (owns d once made)
	size int64      // bytes written
	io   spoolIO
}

// newSpool is DecryptOptions.NewSpool.
func newSpool(dir string) (envelope.SpoolFile, error) { return openSpool(dir, spoolIO{}) }

func openSpool(dir string, sio spoolIO) (*fileSpool, error) {
	if sio.openDirect == nil {
		sio.openDirect = openDirect
	}
	if sio.pread == nil {
		sio.pread = preadDirect
	}
	f, err := os.CreateTemp(dir, "kmsctl-spool-*")
	if err != nil {
		return nil, err
	}
	s := &fileSpool{f: f, io: sio}
	// An unlinked file cannot be opened again: the O_DIRECT descriptor
	// for pass 2 is opened first, and must be of the file just created
	// (not of one renamed over it since).
	if d, err := sio.openDirect(f.Name()); err == nil {
		if sameFile(f, d) {
			s.d = d
		} else {
			d.Close()
		}
	}
	if err := os.Remove(f.Name()); err != nil {
		s.Close()
		return nil, err
	}
	if s.d != nil {
		write := f.Write
		if sio.write != nil {
			write = func(b []byte) (int, error) { return sio.write(f, b) }
		}
		if s.dw, err = newDirectWriterWith(f, write); err != nil {
			s.d.Close()
			s.d, s.dw = nil, nil
		}
	}
	if s.dw == nil {
		s.bw = bufio.NewWriterSize(f, 256<<10)
	}
	return s, nil
}

func (s *fileSpool) Write(p []byte) (int, error) {
	var n int
	var err error
	if s.dw != nil {
		n, err = s.dw.Write(p)
	} else {
		n, err = s.bw.Write(p)
	}
	s.size += int64(n)
	return n, err
}

// Reader writes out what pass 1 left in the buffers and reads the spool
// from its start: with O_DIRECT read-ahead, or through the page cache.
func (s *fileSpool) Reader() (io.Reader, error) {
	if s.dw != nil {
		dw := s.dw
		s.dw = nil
		if err := dw.finish(); err != nil {
			return nil, err
		}
		d := s.d
		in, err := newDirectInput(s.f, d, s.size, func(b []byte, off int64) (int, error) { return s.io.pread(d, b, off) })
		if err == nil {
			s.in, s.d = in, nil
			return in, nil
		}
	} else if err := s.bw.Flush(); err != nil {
		return nil, err
	}
	return io.NewSectionReader(s.f, 0, s.size), nil
}

// Close stops the reads or writes in flight and closes the descriptors:
// the (unlinked) spool is gone.
func (s *fileSpool) Close() error {
	if s.dw != nil {
		s.dw.abort()
		s.dw = nil
	}
	if s.in != nil {
		s.in.Close() // closes d
		s.in = nil
	}
	if s.d != nil {
		s.d.Close()
		s.d = nil
	}
	return s.f.Close()
}

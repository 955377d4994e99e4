package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// uncachedFile writes data to a new file, on disk and out of the page
// cache (Linux), and opens it.
func uncachedFile(t *testing.T, data []byte) *os.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "in")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	dropCache(t, f)
	return f
}

// TestFileInputDirect: a file that is not in the page cache is read with
// O_DIRECT read-ahead (Linux), and yields exactly its bytes for sizes
// around the alignment and chunk boundaries, whatever the read sizes; a
// cached file is read as it is. Closing in the middle stops the
// read-ahead.
func TestFileInputDirect(t *testing.T) {
	t.Parallel()
	for _, size := range []int{0, 1, directAlign - 1, directAlign, directAlign + 1, inputChunk, inputChunk + 1, 3*inputChunk + 12345} {
		data := make([]byte, size)
		_, _ = rand.Read(data)
		f := uncachedFile(t, data)
		in := newFileInput(f, int64(size))
		_, direct := in.(*fileInput)
		if size > 0 && !direct && directInputExpected(t, f) {
			t.Fatalf("%d bytes: an uncached file is not read with O_DIRECT", size)
		}
		var got bytes.Buffer
		buf := make([]byte, 300001) // not aligned, not a divisor
		for {
			n, err := in.Read(buf[:1+len(got.Bytes())%len(buf)])
			got.Write(buf[:n])
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%d bytes: %v", size, err)
			}
		}
		if err := in.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), data) {
			t.Fatalf("%d bytes: read %d bytes, content equal: %v", size, got.Len(), bytes.Equal(got.Bytes(), data))
		}
	}

	// Cached: the file itself.
	p := filepath.Join(t.TempDir(), "cached")
	if err := os.WriteFile(p, make([]byte, inputChunk), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if in := newFileInput(f, inputChunk); func() bool { _, ok := in.(*fileInput); return ok }() {
		t.Fatal("a cached file is read with O_DIRECT")
	}

	// Close after one read, with read-ahead in flight.
	big := make([]byte, 4*inputChunk)
	in := newFileInput(uncachedFile(t, big), int64(len(big)))
	if _, err := in.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestFileInputReplaced: the direct read-ahead reads the file the caller
// opened, even when another file has taken its name since (it opens the
// path again for O_DIRECT).
func TestFileInputReplaced(t *testing.T) {
	t.Parallel()
	orig := make([]byte, inputChunk+5)
	_, _ = rand.Read(orig)
	f := uncachedFile(t, orig)
	other := make([]byte, len(orig))
	_, _ = rand.Read(other)
	tmp := f.Name() + ".new"
	if err := os.WriteFile(tmp, other, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, f.Name()); err != nil {
		t.Fatal(err)
	}
	in := newFileInput(f, int64(len(orig)))
	got, err := io.ReadAll(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, orig) {
		t.Fatalf("read %d bytes, equal to the opened file: %v, to the one renamed over it: %v", len(got), bytes.Equal(got, orig), bytes.Equal(got, other))
	}
}

// fakeDirectInput reads the file data was written to with read ahead like
// the O_DIRECT path, with pread in place of the O_DIRECT read.
func fakeDirectInput(t *testing.T, data []byte, size int64, pread func(f *os.File, b []byte, off int64) (int, error)) *fileInput {
	t.Helper()
	f := uncachedFile(t, data)
	g, err := os.Open(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	in, err := newDirectInput(f, g, size, func(b []byte, off int64) (int, error) { return pread(g, b, off) })
	if err != nil {
		g.Close()
		t.Skipf("no aligned buffers here: %v", err)
	}
	t.Cleanup(func() { in.Close() })
	return in
}

// directLike is one read as O_DIRECT does it: EINVAL for an unaligned
// offset or length, at most max bytes, short (not io.EOF) at the end.
func directLike(f *os.File, b []byte, off int64, max int) (int, error) {
	if off%directAlign != 0 || len(b)%directAlign != 0 {
		return 0, syscall.EINVAL
	}
	n, err := f.ReadAt(b[:min(len(b), max)], off)
	if err == io.EOF {
		err = nil
	}
	return n, err
}

// TestFileInputTruncated: a file that ends before the size it had when
// opened ends the input with an error naming it, after exactly the bytes
// it still had: the chunks read ahead after the short one are never
// served, even when they did read data (the file grew again meanwhile).
func TestFileInputTruncated(t *testing.T) {
	t.Parallel()
	data := make([]byte, 3*inputChunk+12345)
	_, _ = rand.Read(data)
	check := func(t *testing.T, in io.Reader, name string, end int) {
		t.Helper()
		got, err := io.ReadAll(in)
		if !errors.Is(err, errInputChanged) || !strings.Contains(err.Error(), name) {
			t.Fatalf("read %d bytes, error %v; want %v naming %s", len(got), err, errInputChanged, name)
		}
		if !bytes.Equal(got, data[:end]) {
			t.Fatalf("read %d bytes, want the %d before the file ended (content equal to the start: %v)", len(got), end, bytes.Equal(got, data[:min(len(got), len(data))]))
		}
	}

	// The second chunk ends 8192+100 bytes in; the third and fourth read
	// their data in full.
	cut := int64(inputChunk + 8192 + 100)
	in := fakeDirectInput(t, data, int64(len(data)), func(f *os.File, b []byte, off int64) (int, error) {
		if off >= inputChunk && off < 2*inputChunk {
			if off >= cut {
				return 0, nil
			}
			return directLike(f, b, off, int(cut-off))
		}
		return directLike(f, b, off, len(b))
	})
	t.Run("short chunk then full ones", func(t *testing.T) { check(t, in, in.file.Name(), int(cut)) })

	// A real file, shorter than it was when opened: with O_DIRECT where the
	// file system has it, else the fallback reads.
	f := uncachedFile(t, data)
	if err := os.Truncate(f.Name(), cut); err != nil {
		t.Fatal(err)
	}
	d, err := openDirect(f.Name())
	pread := func(b []byte, off int64) (int, error) { return preadDirect(d, b, off) }
	if err != nil {
		t.Logf("no O_DIRECT for %s (%v): buffered reads", f.Name(), err)
		if d, err = os.Open(f.Name()); err != nil {
			t.Fatal(err)
		}
		pread = func([]byte, int64) (int, error) { return 0, syscall.EINVAL }
	}
	real, err := newDirectInput(f, d, int64(len(data)), pread)
	if err != nil {
		d.Close()
		t.Skipf("no aligned buffers here: %v", err)
	}
	defer real.Close()
	t.Run("truncated file", func(t *testing.T) { check(t, real, f.Name(), int(cut)) })

	// Through newFileInput (O_DIRECT where this test's directory has it).
	g := uncachedFile(t, data)
	if err := os.Truncate(g.Name(), cut); err != nil {
		t.Fatal(err)
	}
	if fin, ok := newFileInput(g, int64(len(data))).(*fileInput); ok {
		defer fin.Close()
		t.Run("newFileInput", func(t *testing.T) { check(t, fin, g.Name(), int(cut)) })
	}
}

// TestFileInputDirectRefused: when O_DIRECT reads are refused (EINVAL, a
// device that wants more alignment), the input is read through the page
// cache from exactly where the direct reads stopped: first thing, after a
// partial chunk, or after a short read left an unaligned offset.
func TestFileInputDirectRefused(t *testing.T) {
	t.Parallel()
	data := make([]byte, 3*inputChunk+12345)
	_, _ = rand.Read(data)
	for _, c := range []struct {
		name    string
		pread   func(f *os.File, b []byte, off int64) (int, error)
		refused bool // the rest of the file is read buffered
	}{
		{"always", func(*os.File, []byte, int64) (int, error) { return 0, syscall.EINVAL }, true},
		{"after 3 blocks of a chunk", func(f *os.File, b []byte, off int64) (int, error) {
			if off%inputChunk != 0 {
				return 0, syscall.EINVAL
			}
			return directLike(f, b, off, 3*directAlign)
		}, true},
		{"after an unaligned short read", func(f *os.File, b []byte, off int64) (int, error) {
			if off%inputChunk == 0 {
				return directLike(f, b, off, 5000) // then unaligned: EINVAL
			}
			return directLike(f, b, off, len(b))
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := fakeDirectInput(t, data, int64(len(data)), c.pread)
			var got bytes.Buffer
			buf := make([]byte, 300001)
			for {
				n, err := in.Read(buf[:1+got.Len()%len(buf)])
				got.Write(buf[:n])
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("after %d bytes: %v", got.Len(), err)
				}
			}
			if !bytes.Equal(got.Bytes(), data) {
				t.Fatalf("read %d bytes of %d, content equal: %v", got.Len(), len(data), bytes.Equal(got.Bytes(), data))
			}
			if in.refused.Load() != c.refused {
				t.Fatalf("O_DIRECT given up for the rest of the file: %v, want %v", in.refused.Load(), c.refused)
			}
		})
	}
}

package main

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
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

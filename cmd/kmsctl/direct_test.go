package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// writeUneven writes data to w in writes of uneven sizes (1 byte up to a
// few chunks), so that chunk and alignment boundaries fall everywhere.
func writeUneven(t *testing.T, w io.Writer, data []byte) {
	t.Helper()
	sizes := []int{1, 4095, 4097, 333333, directChunk - 1, directChunk + 1, 2*directChunk + 7}
	for i := 0; len(data) > 0; i++ {
		n := min(len(data), sizes[i%len(sizes)])
		if k, err := w.Write(data[:n]); err != nil || k != n {
			t.Fatalf("write %d bytes: %d, %v", n, k, err)
		}
		data = data[n:]
	}
}

// TestAtomicDirect: output files written with O_DIRECT (Linux, on a file
// system that has it) hold exactly what was written, for lengths around
// the alignment and chunk boundaries.
func TestAtomicDirect(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, size := range []int{0, 1, directAlign - 1, directAlign, directAlign + 1, directChunk, directChunk + 1, 3*directChunk + 12345} {
		target := filepath.Join(dir, "out")
		a, err := createAtomicWith(target, "", true, atomicOptions{direct: true, sync: startWriteback})
		if err != nil {
			t.Fatal(err)
		}
		if a.dw == nil && directOutputExpected(t, dir) {
			t.Fatalf("no O_DIRECT in %s", dir)
		}
		data := make([]byte, size)
		_, _ = rand.Read(data)
		writeUneven(t, a, data)
		if err := a.Commit(); err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		got, err := os.ReadFile(target)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: read back %d bytes (%v), content equal: %v", size, len(got), err, bytes.Equal(got, data))
		}
	}
	checkNoTemp(t, dir, "out")
}

// TestAtomicDirectFailure: a failed background write fails the following
// Write or Commit, and neither that nor an Abort in the middle leaves an
// output or temporary file.
func TestAtomicDirectFailure(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("O_DIRECT is only used on Linux")
	}
	dir := t.TempDir()
	target := filepath.Join(dir, "out")
	a, err := createAtomicWith(target, "", false, atomicOptions{direct: true, sync: startWriteback})
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, directChunk)
	// The disk "fails": the descriptor is gone under the writer.
	a.f.Close()
	_, werr := a.Write(data)
	for i := 0; werr == nil && i < 2*directBuffers; i++ {
		_, werr = a.Write(data)
	}
	cerr := a.Commit()
	if werr == nil && cerr == nil {
		t.Fatal("writes to a closed file and Commit succeeded")
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("output exists after a failure: %v", err)
	}
	a.Abort()
	checkNoTemp(t, dir, "")

	// Abort with chunks queued.
	b, err := createAtomicWith(target, "", false, atomicOptions{direct: true, sync: startWriteback})
	if err != nil {
		t.Fatal(err)
	}
	writeUneven(t, b, make([]byte, 3*directChunk+5))
	b.Abort()
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("output exists after Abort: %v", err)
	}
	checkNoTemp(t, dir, "")
}

// TestDirectRefusedAfterShortWrite: when the disk refuses an O_DIRECT
// write (EINVAL) after part of the chunk went out, the writer goes on
// through the page cache from where the offset stopped, without writing
// the part already on disk a second time.
func TestDirectRefusedAfterShortWrite(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("O_DIRECT is only used on Linux")
	}
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	calls := 0
	w, err := newDirectWriterWith(f, func(b []byte) (int, error) {
		calls++
		if calls == 2 { // the second chunk: half of it, then refused
			n, err := f.Write(b[:len(b)/2])
			if err != nil {
				return n, err
			}
			return n, errUnsupportedForTest
		}
		return f.Write(b)
	})
	if err != nil {
		t.Skipf("no O_DIRECT here: %v", err)
	}
	data := make([]byte, 3*directChunk+directAlign+5)
	_, _ = rand.Read(data)
	writeUneven(t, w, data)
	if err := w.finish(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if calls < 3 || !bytes.Equal(got, data) {
		t.Fatalf("%d writes; read back %d bytes, want %d; content equal: %v", calls, len(got), len(data), bytes.Equal(got, data))
	}
}

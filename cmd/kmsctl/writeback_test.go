package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// rangeLog records the ranges whose writeback was requested.
type rangeLog struct {
	mu     sync.Mutex
	ranges [][2]int64
	failAt int           // fail the failAt-th request (1-based); 0: never
	err    error         // returned by the failing request
	real   bool          // also start the real writeback
	gate   chan struct{} // when non-nil, each request waits for it
}

func (l *rangeLog) sync(fd uintptr, off, n int64) error {
	if l.gate != nil {
		<-l.gate
	}
	l.mu.Lock()
	l.ranges = append(l.ranges, [2]int64{off, n})
	k := len(l.ranges)
	l.mu.Unlock()
	if k == l.failAt {
		return l.err
	}
	if l.real {
		return startWriteback(fd, off, n)
	}
	return nil
}

// writeChunks writes size random bytes to a in chunks of 1 MiB + 17 (not a
// divisor of writebackEvery) and returns them.
func writeChunks(t *testing.T, a *atomicFile, size int) []byte {
	t.Helper()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1<<20+17)
		if _, err := a.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	return data
}

// TestAtomicWriteback: an output file of several writeback ranges has
// exactly the bytes written once committed; the ranges whose writeback was
// started are contiguous from 0, each at least writebackEvery long, and
// end within the file (the real sync_file_range on Linux runs too).
func TestAtomicWriteback(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	target := filepath.Join(dir, "out")
	log := &rangeLog{real: runtime.GOOS == "linux"}
	a, err := createAtomicWith(target, "", false, atomicOptions{sync: log.sync})
	if err != nil {
		t.Fatal(err)
	}
	const size = 3*writebackEvery + 5<<20
	data := writeChunks(t, a, size)
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("committed file differs from what was written (%d bytes, want %d)", len(got), len(data))
	}
	if len(log.ranges) < 1 {
		t.Fatalf("no writeback was started for %d bytes", size)
	}
	var next int64
	for _, r := range log.ranges {
		if r[0] != next || r[1] < writebackEvery {
			t.Fatalf("ranges %v: want contiguous ranges of at least %d bytes from 0", log.ranges, writebackEvery)
		}
		next = r[0] + r[1]
	}
	if next > size {
		t.Fatalf("ranges %v go past the %d bytes written", log.ranges, size)
	}
	checkNoTemp(t, dir, "out")
}

// TestAtomicWritebackFailure: a writeback request that fails with a real
// error (not "unsupported") fails Commit and leaves no output file and no
// temporary file; one that is merely unsupported changes nothing. A
// failure in the middle of writing (Abort while a request is in flight)
// also leaves nothing behind, and Abort after Commit's failure is safe.
func TestAtomicWritebackFailure(t *testing.T) {
	t.Parallel()
	t.Run("io error", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		target := filepath.Join(dir, "out")
		log := &rangeLog{failAt: 1, err: errors.New("EIO from writeback")}
		a, err := createAtomicWith(target, "", false, atomicOptions{sync: log.sync})
		if err != nil {
			t.Fatal(err)
		}
		writeChunks(t, a, 2*writebackEvery+1)
		if err := a.Commit(); err == nil || !errors.Is(err, log.err) {
			t.Fatalf("Commit after a failed writeback: %v, want %v", err, log.err)
		}
		a.Abort()
		if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("output exists after a failed Commit: %v", err)
		}
		checkNoTemp(t, dir, "")
		log.mu.Lock()
		defer log.mu.Unlock()
		if len(log.ranges) != 1 {
			t.Fatalf("%d writeback requests after the first failed, want none", len(log.ranges)-1)
		}
	})
	t.Run("unsupported", func(t *testing.T) {
		t.Parallel()
		if runtime.GOOS != "linux" {
			t.Skip("the unsupported errors are Linux's")
		}
		dir := t.TempDir()
		target := filepath.Join(dir, "out")
		log := &rangeLog{failAt: 1, err: errUnsupportedForTest}
		a, err := createAtomicWith(target, "", false, atomicOptions{sync: log.sync})
		if err != nil {
			t.Fatal(err)
		}
		data := writeChunks(t, a, writebackEvery+1)
		if err := a.Commit(); err != nil {
			t.Fatalf("Commit after an unsupported writeback: %v", err)
		}
		if got, err := os.ReadFile(target); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("committed file: %d bytes, %v; want the %d written", len(got), err, len(data))
		}
	})
	t.Run("abort mid-write", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		target := filepath.Join(dir, "out")
		log := &rangeLog{gate: make(chan struct{})}
		a, err := createAtomicWith(target, "", false, atomicOptions{sync: log.sync})
		if err != nil {
			t.Fatal(err)
		}
		// The first request blocks in the goroutine; writing goes on
		// (Write never waits for it) until the "failure".
		writeChunks(t, a, 3*writebackEvery)
		close(log.gate)
		a.Abort()
		if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("output exists after Abort: %v", err)
		}
		checkNoTemp(t, dir, "")
	})
}

// checkNoTemp fails if dir holds anything but keep (a leftover temporary
// file of createAtomic).
func checkNoTemp(t *testing.T, dir, keep string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != keep {
			t.Fatalf("%s left in %s", e.Name(), dir)
		}
	}
}

// syncDir: a real directory syncs; one that cannot be opened is not an
// error of the command (Commit has already renamed the complete file).
func TestSyncDir(t *testing.T) {
	if err := syncDir(t.TempDir()); err != nil {
		t.Fatalf("syncDir of a directory: %v", err)
	}
	if err := syncDir(filepath.Join(t.TempDir(), "missing")); err != nil {
		t.Fatalf("syncDir of a missing directory: %v", err)
	}
}

package main

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// dropCache writes f back and drops it from the page cache.
func dropCache(t *testing.T, f *os.File) {
	t.Helper()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
}

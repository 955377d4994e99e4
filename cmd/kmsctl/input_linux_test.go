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

// directInputExpected: the kernel tells what of f is cached (cachestat,
// Linux 6.5), dropCache did take f out of the cache (not on tmpfs, where
// the cache is the file), and f's file system has O_DIRECT: f must then
// be read with O_DIRECT; otherwise it is read through the page cache.
func directInputExpected(t *testing.T, f *os.File) bool {
	t.Helper()
	var st unix.Cachestat_t
	if err := unix.Cachestat(uint(f.Fd()), &unix.CachestatRange{}, &st, 0); err != nil {
		t.Logf("no cachestat here (%v): inputs are read through the page cache", err)
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if int64(st.Cache)*int64(os.Getpagesize())*10 >= fi.Size()*9 {
		t.Logf("%s stays in the page cache (%d pages): it is read from there", f.Name(), st.Cache)
		return false
	}
	d, err := os.OpenFile(f.Name(), os.O_RDONLY|unix.O_DIRECT, 0)
	if err != nil {
		t.Logf("no O_DIRECT for %s (%v): inputs are read through the page cache", f.Name(), err)
		return false
	}
	d.Close()
	return true
}

// directOutputExpected: the file system of dir has O_DIRECT, so output
// files there must be written with it.
func directOutputExpected(t *testing.T, dir string) bool {
	t.Helper()
	f, err := os.CreateTemp(dir, "probe")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	defer os.Remove(f.Name())
	d, err := os.OpenFile(f.Name(), os.O_WRONLY|unix.O_DIRECT, 0)
	if err != nil {
		t.Logf("no O_DIRECT in %s (%v): outputs are written through the page cache", dir, err)
		return false
	}
	d.Close()
	return true
}

package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// openDirect opens path again for reading with O_DIRECT.
func openDirect(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|unix.O_DIRECT, 0)
}

// mostlyUncached reports whether less than 90% of f is in the page
// cache (cachestat, Linux 6.5); false when it cannot tell.
func mostlyUncached(f *os.File, size int64) bool {
	if size <= 0 {
		return false
	}
	var st unix.Cachestat_t
	_, err := control(f, func(fd int) (int, error) {
		return 0, unix.Cachestat(uint(fd), &unix.CachestatRange{}, &st, 0)
	})
	if err != nil {
		return false
	}
	return int64(st.Cache)*int64(os.Getpagesize())*10 < size*9
}

// preadDirect is one pread on direct (opened with O_DIRECT): b and off
// must be aligned.
func preadDirect(direct *os.File, b []byte, off int64) (int, error) {
	n, err := control(direct, func(fd int) (int, error) { return unix.Pread(fd, b, off) })
	if err != nil {
		return 0, err
	}
	return n, nil
}

// control runs fn with f's descriptor.
func control(f *os.File, fn func(fd int) (int, error)) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var ferr error
	if err := rc.Control(func(fd uintptr) { n, ferr = fn(int(fd)) }); err != nil {
		return 0, err
	}
	return n, ferr
}

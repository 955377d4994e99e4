package main

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// setDirect switches O_DIRECT on or off for f (Linux allows it with
// F_SETFL); file systems without direct I/O refuse to switch it on.
func setDirect(f *os.File, on bool) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		flags, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		if err != nil {
			serr = err
			return
		}
		if on {
			flags |= unix.O_DIRECT
		} else {
			flags &^= unix.O_DIRECT
		}
		_, serr = unix.FcntlInt(fd, unix.F_SETFL, flags)
	})
	if err != nil {
		return err
	}
	return serr
}

// directRefused: the write was refused for its alignment (EINVAL), before
// any byte was written.
func directRefused(err error) bool { return errors.Is(err, unix.EINVAL) }

// alignedBuffer returns n bytes of page-aligned memory outside the Go
// heap (anonymous mapping), as O_DIRECT needs.
func alignedBuffer(n int) ([]byte, error) {
	return unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
}

func releaseBuffer(b []byte) { _ = unix.Munmap(b) }

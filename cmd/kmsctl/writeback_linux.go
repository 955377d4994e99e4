package main

import (
	"errors"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing back the dirty pages of
// [off, off+n) without waiting for them. SYNC_FILE_RANGE_WRITE alone does
// not check or advance the file's writeback error state (WAIT_AFTER
// would), so a write error is still reported by the fsync of Commit.
func startWriteback(fd uintptr, off, n int64) error {
	return unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

func writebackUnsupported(err error) bool {
	return errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) ||
		errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ESPIPE)
}

package main

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// renameExclusive renames oldpath to newpath unless newpath exists, in one
// step (renameat2 RENAME_NOREPLACE): an error that is fs.ErrExist (EEXIST)
// then. It returns errors.ErrUnsupported where the kernel (ENOSYS) or the
// file system (EINVAL) does not have the flag.
func renameExclusive(oldpath, newpath string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		return errors.ErrUnsupported
	}
	if err != nil {
		return &os.LinkError{Op: "renameat2", Old: oldpath, New: newpath, Err: err}
	}
	return nil
}

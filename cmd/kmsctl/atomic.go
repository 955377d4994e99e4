package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// atomicFile is an output file that appears under its name only when
// complete: it is written as a hidden temporary file (mode 0600) in the
// target's directory, so the final rename is atomic on the same file
// system, and removed on any failure or interrupt. Readers of the target
// name never see a partial file, and decrypted plaintext is never visible
// under the target name before it has been authenticated. It is written
// with O_DIRECT from a goroutine where the file system allows it
// (direct.go); otherwise through the page cache, with the completed ranges
// written back in the background (writeback.go). Either way the disk works
// while the data is encrypted, and Commit's fsync is short.
type atomicFile struct {
	f      *os.File
	dw     *directWriter // nil: buffered, with wb
	wb     *writeback
	target string
	force  bool // replace the target if it exists at Commit
	done   bool
}

// atomicOptions choose how an atomicFile is written (tests use both ways).
type atomicOptions struct {
	direct bool                                 // try O_DIRECT first
	sync   func(fd uintptr, off, n int64) error // starts writeback when buffered
}

// createAtomic prepares to write target. It refuses to replace an
// existing file unless force is set, and always refuses to replace the
// input (same file, whatever the path says).
func createAtomic(target, input string, force bool) (*atomicFile, error) {
	return createAtomicWith(target, input, force, atomicOptions{direct: true, sync: startWriteback})
}

// createAtomicWith is createAtomic with the choice of the write path.
func createAtomicWith(target, input string, force bool, o atomicOptions) (*atomicFile, error) {
	if st, err := os.Stat(target); err == nil {
		if input != "" {
			if in, err := os.Stat(input); err == nil && os.SameFile(st, in) {
				return nil, usagef("output %s is the input file", target)
			}
		}
		if !force {
			return nil, usagef("output %s exists (use --force to replace it)", target)
		}
		if !st.Mode().IsRegular() {
			return nil, usagef("output %s is not a regular file", target)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".kmsctl-tmp-*")
	if err != nil {
		return nil, err
	}
	a := &atomicFile{f: f, target: target, force: force}
	if o.direct {
		a.dw, _ = newDirectWriter(f) // nil (buffered) if unsupported
	}
	if a.dw == nil {
		a.wb = newWriteback(f, o.sync)
	}
	return a, nil
}

// Write appends to the temporary file.
func (a *atomicFile) Write(p []byte) (int, error) {
	if a.dw != nil {
		return a.dw.Write(p)
	}
	n, err := a.f.Write(p)
	a.wb.wrote(n)
	return n, err
}

// Name is the temporary file's path.
func (a *atomicFile) Name() string { return a.f.Name() }

// Commit flushes the file to disk and renames it into place. Without
// force, a target that appeared during the run is not replaced: Commit
// removes the temporary file and fails.
func (a *atomicFile) Commit() error {
	if a.dw != nil {
		if err := a.dw.finish(); err != nil {
			a.Abort()
			return err
		}
	} else if err := a.wb.stop(); err != nil {
		a.Abort()
		return fmt.Errorf("writing back %s: %w", a.f.Name(), err)
	}
	if err := a.f.Sync(); err != nil {
		a.Abort()
		return err
	}
	if err := a.f.Close(); err != nil {
		a.Abort()
		return err
	}
	// Without --force, the target did not exist when the run started; a
	// file created there since (by someone else) is not replaced.
	rename := renameNoReplace
	if a.force {
		rename = os.Rename
	}
	if err := rename(a.Name(), a.target); err != nil {
		a.done = true
		os.Remove(a.Name())
		if !a.force && errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("output %s appeared while kmsctl was writing it; it was left as it is (use --force to replace it)", a.target)
		}
		return fmt.Errorf("renaming into place: %w", err)
	}
	a.done = true
	// The rename is an entry in the directory: until the directory is
	// synced, a crash may forget it and the output (complete, since the
	// file was synced first) would be missing after a reboot.
	return syncDir(filepath.Dir(a.target))
}

// renameNoReplace renames oldpath to newpath unless newpath exists (an
// error that is fs.ErrExist then): atomically where the system can
// (renameat2 RENAME_NOREPLACE on Linux), otherwise by checking just
// before the rename, which leaves a short window to another creator.
func renameNoReplace(oldpath, newpath string) error {
	if err := renameExclusive(oldpath, newpath); !errors.Is(err, errors.ErrUnsupported) {
		return err
	}
	return checkAndRename(oldpath, newpath)
}

// checkAndRename is renameNoReplace where the system has no exclusive
// rename.
func checkAndRename(oldpath, newpath string) error {
	if _, err := os.Lstat(newpath); err == nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: fs.ErrExist}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.Rename(oldpath, newpath)
}

// syncDir fsyncs a directory. Systems that cannot sync a directory (an
// open of a directory fails on Windows, some file systems refuse fsync
// on one with EINVAL) have nothing more durable to offer; that is not an
// error of the command.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return nil
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("syncing %s after the rename: %w", dir, err)
	}
	return nil
}

// Abort removes the temporary file; it is a no-op after Commit.
func (a *atomicFile) Abort() {
	if a.done {
		return
	}
	a.done = true
	if a.dw != nil {
		a.dw.abort()
	} else {
		a.wb.stop()
	}
	a.f.Close()
	os.Remove(a.Name())
}

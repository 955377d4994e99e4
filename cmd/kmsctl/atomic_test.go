package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAtomicAppeared: without force, a target created by someone else
// while the output was written is left as it is: Commit fails saying so
// and removes the temporary file. With force it is replaced.
func TestAtomicAppeared(t *testing.T) {
	t.Parallel()
	for _, direct := range []bool{true, false} {
		dir := t.TempDir()
		target := filepath.Join(dir, "out")
		a, err := createAtomicWith(target, "", false, atomicOptions{direct: direct, sync: startWriteback})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Write([]byte("ours")); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(target, []byte("theirs"), 0o600); err != nil {
			t.Fatal(err)
		}
		err = a.Commit()
		if err == nil || !strings.Contains(err.Error(), "appeared") || !strings.Contains(err.Error(), target) {
			t.Fatalf("direct %v: Commit over a file created meanwhile: %v, want an error that %s appeared", direct, err, target)
		}
		a.Abort() // a no-op now
		if got, err := os.ReadFile(target); err != nil || string(got) != "theirs" {
			t.Fatalf("direct %v: the file created meanwhile holds %q (%v)", direct, got, err)
		}
		checkNoTemp(t, dir, "out")

		// --force: replaced.
		a, err = createAtomicWith(target, "", true, atomicOptions{direct: direct, sync: startWriteback})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Write([]byte("ours")); err != nil {
			t.Fatal(err)
		}
		if err := a.Commit(); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(target); err != nil || string(got) != "ours" {
			t.Fatalf("direct %v, force: the target holds %q (%v)", direct, got, err)
		}
		checkNoTemp(t, dir, "out")
	}
}

// TestRenameNoReplace: the exclusive rename and the check-then-rename
// used where it is unsupported both rename to a free name and refuse an
// existing one (a file, or a dangling symlink) with fs.ErrExist.
func TestRenameNoReplace(t *testing.T) {
	t.Parallel()
	for name, rename := range map[string]func(string, string) error{"renameNoReplace": renameNoReplace, "checkAndRename": checkAndRename} {
		dir := t.TempDir()
		src := filepath.Join(dir, "src")
		if err := os.WriteFile(src, []byte("new"), 0o600); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "file")
		if err := os.WriteFile(file, []byte("old"), 0o600); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(dir, "link")
		if err := os.Symlink(filepath.Join(dir, "missing"), link); err != nil {
			t.Fatal(err)
		}
		for _, dst := range []string{file, link} {
			if err := rename(src, dst); !errors.Is(err, fs.ErrExist) {
				t.Fatalf("%s onto the existing %s: %v, want %v", name, dst, err, fs.ErrExist)
			}
		}
		if got, err := os.ReadFile(file); err != nil || string(got) != "old" {
			t.Fatalf("%s: %s holds %q (%v)", name, file, got, err)
		}
		free := filepath.Join(dir, "free")
		if err := rename(src, free); err != nil {
			t.Fatalf("%s to a free name: %v", name, err)
		}
		if got, err := os.ReadFile(free); err != nil || string(got) != "new" {
			t.Fatalf("%s: %s holds %q (%v)", name, free, got, err)
		}
		if _, err := os.Lstat(src); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s: the source is still there (%v)", name, err)
		}
	}
}

package sqlstore

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"hsmkms/kms"
)

// TestFilesAreOwnerOnly: the database and its WAL files hold metadata and
// sealed credentials; a permissive umask or an old file must not leave them
// readable by others.
func TestFilesAreOwnerOnly(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "kms.db")
	s := openAt(t, path)
	mustCreate(t, s, keyID(1), acct1, kms.StateEnabled)
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Fatalf("%s has mode %v", filepath.Base(p), fi.Mode().Perm())
		}
	}
	// An existing world-readable file is narrowed at open.
	other := filepath.Join(dir, "old.db")
	if err := os.WriteFile(other, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(context.Background(), other)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if fi, _ := os.Stat(other); fi.Mode().Perm() != 0o600 {
		t.Fatalf("existing file mode %v, want 0600", fi.Mode().Perm())
	}
}

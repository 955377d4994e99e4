package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"hsmkms/kms"
)

const (
	acct1 = "111111111111"
	acct2 = "222222222222"
)

// t0 has a sub-millisecond part and a non-UTC zone, to prove both are
// normalised away.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535_897_932, time.FixedZone("X", 3600))

func ms(t time.Time) time.Time { return t.Truncate(time.Millisecond).UTC() }

// openAt opens a store at path and closes it when the test ends.
func openAt(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// openTemp opens a store on a new file in t.TempDir().
func openTemp(t *testing.T) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "kms.db"))
}

func keyID(i int) string { return fmt.Sprintf("%08x-0000-4000-8000-000000000000", i) }

func testKey(id, account string, state kms.KeyState) kms.KeyRecord {
	return kms.KeyRecord{
		ID: id, AccountID: account, Description: "d " + id,
		KeyUsage: "ENCRYPT_DECRYPT", KeySpec: "SYMMETRIC_DEFAULT", Origin: "AWS_KMS",
		KeyManager: "CUSTOMER", State: state, CreatedAt: t0,
	}
}

func testVersion(id string, version int, backing string) kms.KeyVersion {
	return kms.KeyVersion{
		KeyID: id, Version: version, BackingID: []byte(backing),
		State: kms.VersionCreating, CreatedAt: t0,
	}
}

// mustCreate creates key id with one version whose backing id is "b-"+id.
func mustCreate(t *testing.T, s *Store, id, account string, state kms.KeyState) kms.KeyRecord {
	t.Helper()
	k := testKey(id, account, state)
	if err := s.CreateKey(context.Background(), k, testVersion(id, 1, "b-"+id)); err != nil {
		t.Fatalf("CreateKey(%s): %v", id, err)
	}
	return k
}

// wantErr fails unless errors.Is(err, want); want nil means no error.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("%s: unexpected error %v", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

package sqlstore

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hsmkms/kms"
)

func countMigrations(t *testing.T, path string) (rows, newest int) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+escapePath(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT count(*), coalesce(max(version), 0) FROM schema_migrations`).
		Scan(&rows, &newest); err != nil {
		t.Fatal(err)
	}
	return rows, newest
}

func TestMigrationsIdempotentAndDataSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kms.db")
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, keyID(1), acct1, kms.StateEnabled)
	if err := s.PutSetting(ctx, "x", "y"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for i := range 2 {
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		k, err := s.GetKey(ctx, keyID(1))
		if err != nil || k.State != kms.StateEnabled {
			t.Fatalf("reopen %d: GetKey = %+v, %v", i, k, err)
		}
		if v, err := s.GetSetting(ctx, "x"); err != nil || v != "y" {
			t.Fatalf("reopen %d: GetSetting = %q, %v", i, v, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if rows, newest := countMigrations(t, path); rows != len(ms) || newest != ms[len(ms)-1].version {
		t.Fatalf("schema_migrations has %d rows up to %d; want %d up to %d", rows, newest, len(ms), ms[len(ms)-1].version)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kms.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at)
		VALUES (999, '0999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(ctx, path); err == nil {
		_ = s.Close()
		t.Fatal("Open accepted a schema newer than the binary")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open error = %v", err)
	}
}

func TestConcurrentOpenOfNewFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kms.db")
	errs := make(chan error, 4)
	stores := make(chan *Store, 4)
	for range 4 {
		go func() {
			s, err := Open(ctx, path)
			errs <- err
			stores <- s
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if s := <-stores; s != nil {
			t.Cleanup(func() { _ = s.Close() })
		}
	}
	ms, _ := loadMigrations()
	if rows, _ := countMigrations(t, path); rows != len(ms) {
		t.Fatalf("%d migration rows, want %d", rows, len(ms))
	}
}

func TestPathWithURISpecialCharacters(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a?b#c%d.db")
	s := openAt(t, path)
	mustCreate(t, s, keyID(1), acct1, kms.StateEnabled)
	if _, err := s.GetKey(ctx, keyID(1)); err != nil {
		t.Fatal(err)
	}
	names, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*"))
	for _, n := range names {
		if !strings.HasPrefix(filepath.Base(n), "a?b#c%d.db") {
			t.Fatalf("database written to %s, not %s", n, path)
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("database file %s: %v", path, err)
	}
}

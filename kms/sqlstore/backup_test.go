package sqlstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"hsmkms/kms"
)

func TestBackup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openAt(t, filepath.Join(dir, "kms.db"))
	for i := 1; i <= 20; i++ {
		mustCreate(t, s, keyID(i), acct1, kms.StateEnabled)
	}
	if err := s.CreateAlias(ctx, alias(acct1, "alias/app", keyID(3))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReserveInvocations(ctx, keyID(1), 1, 42, 1000); err != nil {
		t.Fatal(err)
	}

	// Writers keep going during the backup: it must neither block them nor
	// fail because of them.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.PutSetting(ctx, "counter", fmt.Sprint(i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()

	dst := filepath.Join(dir, "backup.db")
	err := s.Backup(ctx, dst)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, %v", fi, err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, "backup.db.tmp-*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}

	b := openAt(t, dst)
	want, _ := s.ListKeys(ctx, acct1, "", 0)
	got, err := b.ListKeys(ctx, acct1, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 20 || !reflect.DeepEqual(got, want) {
		t.Fatalf("backup has %d keys, want 20 equal ones", len(got))
	}
	if a, err := b.GetAlias(ctx, acct1, "alias/app"); err != nil || a.KeyID != keyID(3) {
		t.Fatalf("backup alias = %+v, %v", a, err)
	}
	if v, err := b.GetVersion(ctx, keyID(1), 1); err != nil || v.Reserved != 42 {
		t.Fatalf("backup version = %+v, %v", v, err)
	}

	// A second backup replaces the first.
	if err := s.CreateAlias(ctx, alias(acct1, "alias/later", keyID(4))); err != nil {
		t.Fatal(err)
	}
	if err := s.Backup(ctx, filepath.Join(dir, "backup2.db")); err != nil {
		t.Fatal(err)
	}
	if _, err := openAt(t, filepath.Join(dir, "backup2.db")).GetAlias(ctx, acct1, "alias/later"); err != nil {
		t.Fatal(err)
	}

	if err := s.Backup(ctx, filepath.Join(dir, "kms.db")); err == nil {
		t.Fatal("Backup onto the live database succeeded")
	}
}

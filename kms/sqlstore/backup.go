package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"database/sql"

	"github.com/mattn/go-sqlite3"
)

// Backup writes a consistent copy of the database to dstPath with SQLite's
// online backup API while the store stays in use. The copy is made in a
// temporary file next to dstPath (mode 0600: the database holds access key
// secrets) and renamed over dstPath only when complete, so dstPath never
// holds a partial backup.
//
// The copy runs as one backup step over all pages, inside one read
// transaction on the source. In WAL mode that does not block writers, and it
// cannot starve: a backup taken in several steps restarts whenever another
// connection writes between steps, which under steady load may be forever.
func (s *Store) Backup(ctx context.Context, dstPath string) error {
	if err := s.backup(ctx, dstPath); err != nil {
		return fmt.Errorf("sqlstore: backup to %s: %w", dstPath, err)
	}
	return nil
}

func (s *Store) backup(ctx context.Context, dstPath string) (err error) {
	if same, err := sameFile(s.path, dstPath); err != nil {
		return err
	} else if same {
		return errors.New("destination is the database itself")
	}

	tmp, err := os.CreateTemp(filepath.Dir(dstPath), filepath.Base(dstPath)+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	if err := tmp.Close(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmpName)
		}
	}()

	if err := s.copyTo(ctx, tmpName); err != nil {
		return err
	}
	if err := syncFile(tmpName); err != nil {
		return err
	}
	if err := os.Rename(tmpName, dstPath); err != nil {
		return err
	}
	// Make the rename itself durable.
	return syncFile(filepath.Dir(dstPath))
}

// copyTo runs the SQLite backup from a reader connection into the (empty)
// database file at path.
func (s *Store) copyTo(ctx context.Context, path string) error {
	dstDB, err := sql.Open("sqlite3", "file:"+escapePath(path))
	if err != nil {
		return err
	}
	defer dstDB.Close()
	dst, err := dstDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer dst.Close()
	src, err := s.r.Conn(ctx)
	if err != nil {
		return err
	}
	defer src.Close()

	return dst.Raw(func(dc any) error {
		return src.Raw(func(sc any) error {
			dconn, ok1 := dc.(*sqlite3.SQLiteConn)
			sconn, ok2 := sc.(*sqlite3.SQLiteConn)
			if !ok1 || !ok2 {
				return errors.New("unexpected driver connection type")
			}
			b, err := dconn.Backup("main", sconn, "main")
			if err != nil {
				return err
			}
			for {
				// Step reports SQLITE_BUSY and SQLITE_LOCKED as "not done,
				// no error": wait and retry until ctx ends.
				done, err := b.Step(-1)
				if err != nil {
					_ = b.Finish()
					return err
				}
				if done {
					return b.Finish()
				}
				select {
				case <-ctx.Done():
					_ = b.Finish()
					return ctx.Err()
				case <-time.After(10 * time.Millisecond):
				}
			}
		})
	})
}

// sameFile reports whether a and b name the same existing file.
func sameFile(a, b string) (bool, error) {
	ai, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	bi, err := os.Stat(b)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(ai, bi), nil
}

// syncFile fsyncs a file or directory.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

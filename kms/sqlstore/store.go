// Package sqlstore implements kms.Store on a SQLite file through
// github.com/mattn/go-sqlite3.
//
// Concurrency design. SQLite allows one writer per database file at a time;
// everything else follows from that:
//
//   - Writes go through their own *sql.DB limited to one connection. Writers
//     in this process therefore queue in database/sql, where they honour
//     their context, instead of spinning in SQLite's busy handler.
//   - Every write transaction begins with BEGIN IMMEDIATE (_txlock=immediate),
//     which takes the write lock up front. A deferred transaction that reads
//     first and upgrades later can fail with SQLITE_BUSY at once, without
//     the busy handler, when another process committed in between; an
//     immediate one instead waits up to the busy timeout. That is what lets
//     two processes (two Store values) share the file.
//   - Reads go through a separate pool of query-only connections. In WAL mode
//     readers see a committed snapshot and neither block nor are blocked by
//     the writer.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"hsmkms/kms"

	// Registers the "sqlite3" database/sql driver.
	_ "github.com/mattn/go-sqlite3"
)

// busyTimeoutMillis is how long a connection waits for another process's
// lock before giving up with "database is locked". Write transactions here
// last microseconds to milliseconds, so 5 s only runs out when something
// holds the lock abnormally long.
const busyTimeoutMillis = 5000

// cacheKiB is each connection's page cache. SQLite's default (2 MiB) is
// smaller than the metadata of 10,000 keys (about 5 MiB), and the load tool
// measured about three file reads per request with a random key among
// 10,000; a cache that holds such a database keeps key lookups in memory.
// Pages are allocated only as they are read.
const cacheKiB = 32 << 10

// Store is a kms.Store backed by one SQLite file. It is safe for concurrent
// use, and several Store values (in one process or several) may share a file.
type Store struct {
	path string
	w    *sql.DB // exactly one connection; every write goes here
	r    *sql.DB // query-only connections for reads
	// reads runs the read queries of s.r through prepared statements.
	reads *readStatements
	// reserve group-commits invocation reservations (reservebatch.go).
	reserve *reserveBatcher
}

var _ kms.Store = (*Store)(nil)

// Open opens (creating if needed) the database at path, brings its schema up
// to date and returns the store. It fails if the file's schema is newer than
// this binary knows.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, fmt.Errorf("sqlstore: open: empty path")
	}
	s := &Store{path: path}
	if err := restrictFileMode(path); err != nil {
		return nil, fmt.Errorf("sqlstore: open %s: %w", path, err)
	}

	w, err := sql.Open("sqlite3", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s.w = w

	// Connect the writer before the readers exist: its first connection is
	// the one that switches a new file to WAL, which query-only connections
	// could not do.
	if err := w.PingContext(ctx); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlstore: open %s: %w", path, err)
	}
	if err := migrate(ctx, w); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlstore: open %s: %w", path, err)
	}

	r, err := sql.Open("sqlite3", dsn(path, true))
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlstore: open %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n) // keep them: opening a connection re-runs every pragma
	r.SetConnMaxLifetime(0)
	r.SetConnMaxIdleTime(0)
	if err := r.PingContext(ctx); err != nil {
		_ = r.Close()
		_ = w.Close()
		return nil, fmt.Errorf("sqlstore: open %s: %w", path, err)
	}
	s.r = r
	s.reads = newReadStatements(r)
	s.reserve = newReserveBatcher(s)
	return s, nil
}

// Close closes both connection pools.
func (s *Store) Close() error {
	s.reserve.close()
	serr := s.reads.Close()
	rerr := s.r.Close()
	// Closing the last connection of the writer also checkpoints the WAL.
	werr := s.w.Close()
	if werr != nil {
		return fmt.Errorf("sqlstore: close: %w", werr)
	}
	if rerr == nil {
		rerr = serr
	}
	if rerr != nil {
		return fmt.Errorf("sqlstore: close: %w", rerr)
	}
	return nil
}

// dsn builds the mattn/go-sqlite3 data source name for path.
//
//   - _journal_mode=WAL: readers and the writer do not block each other, and
//     a commit appends to the WAL instead of rewriting pages in place.
//   - _synchronous=FULL: every commit is on disk before it returns. NORMAL
//     (with WAL) cannot corrupt the file, but it can roll back the last
//     commits on power loss while the HSM keeps what was done meanwhile: a
//     key version whose token object exists and whose ciphertexts a client
//     holds would vanish from the metadata, and an invocation reservation
//     could be handed out twice. Writes are rare (key changes, and one
//     reservation per 65,536 encryptions), so the fsync costs little.
//   - _busy_timeout: see busyTimeoutMillis.
//   - _cache_size: see cacheKiB.
//   - _foreign_keys=on: SQLite leaves them off by default, per connection.
//   - _txlock=immediate (writer): see the package comment.
//   - _query_only=on (readers): a read connection that tries to write is a
//     bug; fail loudly instead of bypassing the single writer.
func dsn(path string, readOnly bool) string {
	params := []string{
		"_journal_mode=WAL",
		"_synchronous=FULL",
		fmt.Sprintf("_busy_timeout=%d", busyTimeoutMillis),
		fmt.Sprintf("_cache_size=-%d", cacheKiB),
		"_foreign_keys=on",
	}
	if readOnly {
		params = append(params, "_query_only=on", "_txlock=deferred")
	} else {
		params = append(params, "_txlock=immediate")
	}
	return "file:" + escapePath(filepath.Clean(path)) + "?" + strings.Join(params, "&")
}

// escapePath escapes the characters that are special in a SQLite URI
// filename, so that any path works after "file:".
func escapePath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '%', '?', '#':
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// restrictFileMode makes sure the database and its WAL and shared-memory
// files are readable by the owner only: they hold key metadata, policies
// and sealed credentials. A new database file is created 0600 before
// SQLite opens it (SQLite gives the -wal and -shm files the database
// file's mode); existing files with wider modes are narrowed.
func restrictFileMode(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, fi.Mode().Perm()&0o700); err != nil {
				return err
			}
		}
	}
	return nil
}

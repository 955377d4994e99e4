package sqlstore

import (
	"context"
	"database/sql"
)

// querier is what the helpers need from *sql.DB and *sql.Tx alike.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// writeTx runs fn in a write transaction on the single writer connection and
// commits if fn returns nil. The transaction starts with BEGIN IMMEDIATE, so
// it holds the database's write lock from its first statement to the commit:
// what fn reads cannot change before fn's writes land.
//
// fn must not call methods of the Store that write: the writer connection is
// taken, and the call would wait until ctx ends.
func (s *Store) writeTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// readTx runs fn in a read transaction on the reader pool, for reads that
// need one consistent snapshot across several statements.
func (s *Store) readTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	// Nothing to commit: a read transaction only releases its snapshot.
	defer func() { _ = tx.Rollback() }()
	return fn(tx)
}

// keyExists reports whether a key row (tombstones included) exists.
func keyExists(ctx context.Context, q querier, keyID string) (bool, error) {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM keys WHERE id = ?`, keyID).Scan(&one)
	if err == sql.ErrNoRows {
		return false, nil
	}
	return err == nil, err
}

// requireKey returns ErrStoreNotFound (through classify) if the key is absent.
func requireKey(ctx context.Context, q querier, keyID string) error {
	ok, err := keyExists(ctx, q, keyID)
	if err != nil {
		return err
	}
	if !ok {
		return sql.ErrNoRows
	}
	return nil
}

// sqlLimit turns a page size into a SQLite LIMIT: limit <= 0 means no limit.
func sqlLimit(limit int) int {
	if limit <= 0 {
		return -1
	}
	return limit
}

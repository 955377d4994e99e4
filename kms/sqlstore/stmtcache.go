package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// readStatements runs read queries through statements prepared once per
// query text. Key lookups are on every request's path, and profiles showed
// SQLite spending as long preparing "SELECT ... FROM keys WHERE id = ?" as
// running it; database/sql keeps each *sql.Stmt prepared per connection of
// the read pool, so the text is compiled once per connection, not per call.
type readStatements struct {
	db    *sql.DB
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

func newReadStatements(db *sql.DB) *readStatements {
	return &readStatements{db: db, stmts: map[string]*sql.Stmt{}}
}

func (r *readStatements) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st, ok := r.stmts[query]; ok {
		return st, nil
	}
	st, err := r.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	r.stmts[query] = st
	return st, nil
}

// QueryRowContext runs a single-row read through a prepared statement. A
// failure to prepare is reported by the returned row's Scan, as
// database/sql does for plain queries.
func (r *readStatements) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := r.stmt(ctx, query)
	if err != nil {
		// Let database/sql build a Row that carries the error.
		return r.db.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// QueryContext runs a read through a prepared statement.
func (r *readStatements) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := r.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// ExecContext exists so readStatements is a querier; the read pool is
// query-only, so it is never used for writes.
func (r *readStatements) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return r.db.ExecContext(ctx, query, args...)
}

// Close closes every prepared statement.
func (r *readStatements) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var first error
	for q, st := range r.stmts {
		if err := st.Close(); err != nil && first == nil {
			first = err
		}
		delete(r.stmts, q)
	}
	return first
}

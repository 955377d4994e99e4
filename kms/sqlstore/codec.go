package sqlstore

import (
	"database/sql"
	"time"
)

// Timestamps are stored as INTEGER milliseconds since the Unix epoch, NULL
// for the zero time. Values therefore round-trip exactly at millisecond
// precision and come back in UTC; finer precision is truncated (toward the
// past, also before 1970).

func toMillis(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

func fromMillis(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.UnixMilli(n.Int64).UTC()
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

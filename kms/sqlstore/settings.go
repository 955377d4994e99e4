package sqlstore

import (
	"context"
	"database/sql"
)

// GetSetting returns a service-wide value; ErrStoreNotFound if it is unset.
func (s *Store) GetSetting(ctx context.Context, name string) (string, error) {
	var v string
	err := s.reads.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&v)
	return v, wrap("get setting "+name, err)
}

// PutSetting sets a service-wide value, replacing any earlier one.
func (s *Store) PutSetting(ctx context.Context, name, value string) error {
	return wrap("put setting "+name, s.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
		return err
	}))
}

package sqlstore

import (
	"context"
	"fmt"

	"hsmkms/kms"
)

// CountKeysByState counts customer keys by state (metrics); the service's
// internal keys (account 000000000000) are left out.
func (s *Store) CountKeysByState(ctx context.Context) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT state, count(*) FROM keys WHERE account_id <> '000000000000' GROUP BY state`)
	if err != nil {
		return nil, wrap("count keys", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return nil, wrap("count keys", err)
		}
		out[state] = n
	}
	return out, wrap("count keys", rows.Err())
}

// CountAccountKeys counts an account's keys that are not deleted.
func (s *Store) CountAccountKeys(ctx context.Context, accountID string) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM keys WHERE account_id = ? AND state <> ?`, accountID, string(kms.StateDeleted)).Scan(&n)
	return n, wrap("count keys of "+accountID, err)
}

// CheckMigrations reports an error unless every migration this binary
// embeds is recorded as applied (readiness: another process may have
// replaced the file, or an older binary's file may be in use).
func (s *Store) CheckMigrations(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		return wrap("check migrations", err)
	}
	if n < len(ms) {
		return fmt.Errorf("sqlstore: %d of %d migrations applied", n, len(ms))
	}
	return nil
}

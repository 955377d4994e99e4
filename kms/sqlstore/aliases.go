package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"hsmkms/kms"
)

const aliasColumns = `account_id, name, key_id, created_at, updated_at`

func scanAlias(row scanner) (kms.AliasRecord, error) {
	var (
		a                kms.AliasRecord
		created, updated sql.NullInt64
	)
	if err := row.Scan(&a.AccountID, &a.Name, &a.KeyID, &created, &updated); err != nil {
		return kms.AliasRecord{}, err
	}
	a.CreatedAt = fromMillis(created)
	a.UpdatedAt = fromMillis(updated)
	return a, nil
}

func aliasOp(verb, accountID, name string) string {
	return fmt.Sprintf("%s alias %s of account %s", verb, name, accountID)
}

// CreateAlias adds an alias. ErrStoreAlreadyExists if the account already has
// the name (other accounts may use it); ErrStoreNotFound if the key does not
// exist.
func (s *Store) CreateAlias(ctx context.Context, a kms.AliasRecord) error {
	return wrap(aliasOp("create", a.AccountID, a.Name), s.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO aliases (`+aliasColumns+`)
			VALUES (?, ?, ?, ?, ?)`,
			a.AccountID, a.Name, a.KeyID, toMillis(a.CreatedAt), toMillis(a.UpdatedAt))
		return err
	}))
}

// GetAlias returns an alias of the account by name.
func (s *Store) GetAlias(ctx context.Context, accountID, name string) (kms.AliasRecord, error) {
	a, err := scanAlias(s.reads.QueryRowContext(ctx, `SELECT `+aliasColumns+` FROM aliases
		WHERE account_id = ? AND name = ?`, accountID, name))
	return a, wrap(aliasOp("get", accountID, name), err)
}

// UpdateAlias points an existing alias at another key and sets UpdatedAt.
// ErrStoreNotFound if the alias or the key does not exist.
func (s *Store) UpdateAlias(ctx context.Context, accountID, name, keyID string, now time.Time) error {
	return wrap(aliasOp("update", accountID, name), s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE aliases SET key_id = ?, updated_at = ?
			WHERE account_id = ? AND name = ?`, keyID, toMillis(now), accountID, name)
		return oneRow(res, err)
	}))
}

// DeleteAlias removes an alias; ErrStoreNotFound if there is none.
func (s *Store) DeleteAlias(ctx context.Context, accountID, name string) error {
	return wrap(aliasOp("delete", accountID, name), s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM aliases
			WHERE account_id = ? AND name = ?`, accountID, name)
		return oneRow(res, err)
	}))
}

// ListAliases returns up to limit aliases of the account with name > after,
// in name order; if keyID is not empty, only that key's. limit <= 0 means no
// limit.
func (s *Store) ListAliases(ctx context.Context, accountID, keyID, after string, limit int) ([]kms.AliasRecord, error) {
	op := "list aliases of account " + accountID
	q := `SELECT ` + aliasColumns + ` FROM aliases
		WHERE account_id = ? AND name > ? ORDER BY name LIMIT ?`
	args := []any{accountID, after, sqlLimit(limit)}
	if keyID != "" {
		q = `SELECT ` + aliasColumns + ` FROM aliases
			WHERE key_id = ? AND account_id = ? AND name > ? ORDER BY name LIMIT ?`
		args = append([]any{keyID}, args...)
	}
	rows, err := s.reads.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	var out []kms.AliasRecord
	for rows.Next() {
		a, err := scanAlias(rows)
		if err != nil {
			return nil, wrap(op, err)
		}
		out = append(out, a)
	}
	return out, wrap(op, rows.Err())
}

// CountAliases returns how many aliases, in any account, point at the key.
func (s *Store) CountAliases(ctx context.Context, keyID string) (int, error) {
	var n int
	err := s.reads.QueryRowContext(ctx, `SELECT count(*) FROM aliases WHERE key_id = ?`, keyID).Scan(&n)
	return n, wrap("count aliases of key "+keyID, err)
}

// DeleteAliasesForKey removes every alias that points at the key (none is
// not an error).
func (s *Store) DeleteAliasesForKey(ctx context.Context, keyID string) error {
	return wrap("delete aliases of key "+keyID, s.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM aliases WHERE key_id = ?`, keyID)
		return err
	}))
}

package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"hsmkms/kms"
)

// keyColumns is the column list scanKey reads, in its order.
const keyColumns = `id, account_id, description, key_usage, key_spec, origin,
	key_manager, state, created_at, deletion_date, pending_window_days, current_version`

// errKeyIdentity is returned by UpdateKey when fn changed ID or AccountID.
var errKeyIdentity = errors.New("the key id and account id cannot change")

func scanKey(row scanner) (kms.KeyRecord, error) {
	var (
		k                 kms.KeyRecord
		state             string
		created, deletion sql.NullInt64
	)
	err := row.Scan(&k.ID, &k.AccountID, &k.Description, &k.KeyUsage, &k.KeySpec,
		&k.Origin, &k.KeyManager, &state, &created, &deletion,
		&k.PendingWindowInDays, &k.CurrentVersion)
	if err != nil {
		return kms.KeyRecord{}, err
	}
	k.State = kms.KeyState(state)
	k.CreatedAt = fromMillis(created)
	k.DeletionDate = fromMillis(deletion)
	return k, nil
}

func scanKeys(rows *sql.Rows) ([]kms.KeyRecord, error) {
	defer rows.Close()
	var out []kms.KeyRecord
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// CreateKey records a new key and its first version in one transaction.
// v.KeyID may be left empty; otherwise it must equal k.ID.
func (s *Store) CreateKey(ctx context.Context, k kms.KeyRecord, v kms.KeyVersion) error {
	op := "create key " + k.ID
	if v.KeyID == "" {
		v.KeyID = k.ID
	}
	if v.KeyID != k.ID {
		return wrap(op, fmt.Errorf("version belongs to key %q", v.KeyID))
	}
	return wrap(op, s.writeTx(ctx, func(tx *sql.Tx) error {
		if err := insertKey(ctx, tx, k); err != nil {
			return err
		}
		return insertVersion(ctx, tx, v)
	}))
}

// insertKey inserts a key row and, if the record carries one, its initial
// key policy, inside the caller's transaction.
func insertKey(ctx context.Context, tx *sql.Tx, k kms.KeyRecord) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO keys (`+keyColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.AccountID, k.Description, k.KeyUsage, k.KeySpec, k.Origin,
		k.KeyManager, string(k.State), toMillis(k.CreatedAt), toMillis(k.DeletionDate),
		k.PendingWindowInDays, k.CurrentVersion)
	if err != nil {
		return err
	}
	if k.InitialPolicy != "" {
		_, err = tx.ExecContext(ctx, `INSERT INTO key_policies (key_id, document, updated_at) VALUES (?, ?, ?)`,
			k.ID, k.InitialPolicy, toMillis(k.CreatedAt))
	}
	return err
}

// GetKey returns a key by id, tombstones included.
func (s *Store) GetKey(ctx context.Context, keyID string) (kms.KeyRecord, error) {
	k, err := getKey(ctx, s.reads, keyID)
	return k, wrap("get key "+keyID, err)
}

func getKey(ctx context.Context, q querier, keyID string) (kms.KeyRecord, error) {
	return scanKey(q.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM keys WHERE id = ?`, keyID))
}

// UpdateKey reads the key, calls fn on a copy and writes back what fn left,
// inside one write transaction, so concurrent UpdateKey calls on one key
// serialise and none loses another's change. fn's error is returned as is
// and nothing is written. Changing ID or AccountID is refused. The result is
// the row as stored (times at millisecond precision, UTC).
//
// fn runs while this Store holds the database's write lock: keep it short,
// and do not call the Store's write methods from it (they would wait for
// the lock until ctx ends).
func (s *Store) UpdateKey(ctx context.Context, keyID string, fn func(*kms.KeyRecord) error) (kms.KeyRecord, error) {
	return s.updateKey(ctx, keyID, false, func(k *kms.KeyRecord, _ bool) error { return fn(k) })
}

// UpdateKeyWithMaterial implements kms.Store: UpdateKey, telling fn whether
// the key's current version is Active, read in the same transaction.
func (s *Store) UpdateKeyWithMaterial(ctx context.Context, keyID string, fn func(*kms.KeyRecord, bool) error) (kms.KeyRecord, error) {
	return s.updateKey(ctx, keyID, true, fn)
}

func (s *Store) updateKey(ctx context.Context, keyID string, withMaterial bool, fn func(*kms.KeyRecord, bool) error) (kms.KeyRecord, error) {
	var (
		out   kms.KeyRecord
		fnErr error
	)
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		old, err := getKey(ctx, tx, keyID)
		if err != nil {
			return err
		}
		material := false
		if withMaterial && old.CurrentVersion > 0 {
			if err := tx.QueryRowContext(ctx, `SELECT count(*) > 0 FROM key_versions WHERE key_id = ? AND version = ? AND state = ?`,
				keyID, old.CurrentVersion, string(kms.VersionActive)).Scan(&material); err != nil {
				return err
			}
		}
		k := old
		if err := fn(&k, material); err != nil {
			fnErr = err
			return err
		}
		if k.ID != old.ID || k.AccountID != old.AccountID {
			return errKeyIdentity
		}
		out, err = scanKey(tx.QueryRowContext(ctx, `UPDATE keys SET
				description = ?, key_usage = ?, key_spec = ?, origin = ?, key_manager = ?,
				state = ?, created_at = ?, deletion_date = ?, pending_window_days = ?,
				current_version = ?
			WHERE id = ? RETURNING `+keyColumns,
			k.Description, k.KeyUsage, k.KeySpec, k.Origin, k.KeyManager,
			string(k.State), toMillis(k.CreatedAt), toMillis(k.DeletionDate),
			k.PendingWindowInDays, k.CurrentVersion, keyID))
		return err
	})
	if fnErr != nil {
		return kms.KeyRecord{}, fnErr
	}
	if err != nil {
		return kms.KeyRecord{}, wrap("update key "+keyID, err)
	}
	return out, nil
}

// ListKeys returns up to limit keys of the account with id > after, in id
// order, leaving out keys being created and tombstones. limit <= 0 means no
// limit.
func (s *Store) ListKeys(ctx context.Context, accountID, after string, limit int) ([]kms.KeyRecord, error) {
	rows, err := s.reads.QueryContext(ctx, `SELECT `+keyColumns+` FROM keys
		WHERE account_id = ? AND id > ? AND state NOT IN (?, ?)
		ORDER BY id LIMIT ?`,
		accountID, after, string(kms.StateCreating), string(kms.StateDeleted), sqlLimit(limit))
	if err != nil {
		return nil, wrap("list keys", err)
	}
	ks, err := scanKeys(rows)
	return ks, wrap("list keys", err)
}

// KeysByState returns every key in the given state, in id order.
func (s *Store) KeysByState(ctx context.Context, state kms.KeyState) ([]kms.KeyRecord, error) {
	op := "keys in state " + string(state)
	rows, err := s.reads.QueryContext(ctx,
		`SELECT `+keyColumns+` FROM keys WHERE state = ? ORDER BY id`, string(state))
	if err != nil {
		return nil, wrap(op, err)
	}
	ks, err := scanKeys(rows)
	return ks, wrap(op, err)
}

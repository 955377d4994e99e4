package sqlstore

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"

	"hsmkms/kms"
)

const versionColumns = `key_id, version, backing_id, state, created_at, reserved`

func scanVersion(row scanner) (kms.KeyVersion, error) {
	return scanVersionWith(row)
}

// scanVersionWith scans versionColumns followed by extra columns.
func scanVersionWith(row scanner, extra ...any) (kms.KeyVersion, error) {
	var (
		v        kms.KeyVersion
		state    string
		created  sql.NullInt64
		reserved int64
	)
	dest := append([]any{&v.KeyID, &v.Version, &v.BackingID, &state, &created, &reserved}, extra...)
	if err := row.Scan(dest...); err != nil {
		return kms.KeyVersion{}, err
	}
	v.State = kms.VersionState(state)
	v.CreatedAt = fromMillis(created)
	v.Reserved = uint64(reserved) // CHECK (reserved >= 0) in the schema
	return v, nil
}

func scanVersions(rows *sql.Rows) ([]kms.KeyVersion, error) {
	defer rows.Close()
	var out []kms.KeyVersion
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func insertVersion(ctx context.Context, q querier, v kms.KeyVersion) error {
	if v.Reserved > maxReserved {
		return fmt.Errorf("reserved %d does not fit the database", v.Reserved)
	}
	_, err := q.ExecContext(ctx, `INSERT INTO key_versions (`+versionColumns+`)
		VALUES (?, ?, ?, ?, ?, ?)`,
		v.KeyID, v.Version, v.BackingID, string(v.State), toMillis(v.CreatedAt), int64(v.Reserved))
	return err
}

func versionOp(verb, keyID string, version int) string {
	return fmt.Sprintf("%s version %d of key %s", verb, version, keyID)
}

// AddVersion records a new version of an existing key. ErrStoreAlreadyExists
// if the version number or backing id is taken; ErrStoreNotFound if the key
// does not exist.
func (s *Store) AddVersion(ctx context.Context, v kms.KeyVersion) error {
	return wrap(versionOp("add", v.KeyID, v.Version), s.writeTx(ctx, func(tx *sql.Tx) error {
		return insertVersion(ctx, tx, v)
	}))
}

// GetVersion returns one version of a key.
func (s *Store) GetVersion(ctx context.Context, keyID string, version int) (kms.KeyVersion, error) {
	v, err := scanVersion(s.reads.QueryRowContext(ctx, `SELECT `+versionColumns+` FROM key_versions
		WHERE key_id = ? AND version = ?`, keyID, version))
	return v, wrap(versionOp("get", keyID, version), err)
}

// ListVersions returns all versions of a key in version order;
// ErrStoreNotFound if the key does not exist.
func (s *Store) ListVersions(ctx context.Context, keyID string) ([]kms.KeyVersion, error) {
	var vs []kms.KeyVersion
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		if err := requireKey(ctx, tx, keyID); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+versionColumns+` FROM key_versions
			WHERE key_id = ? ORDER BY version`, keyID)
		if err != nil {
			return err
		}
		vs, err = scanVersions(rows)
		return err
	})
	if err != nil {
		return nil, wrap("list versions of key "+keyID, err)
	}
	return vs, nil
}

// VersionsByState returns every version in the given state, ordered by key
// id and version.
func (s *Store) VersionsByState(ctx context.Context, state kms.VersionState) ([]kms.KeyVersion, error) {
	op := "versions in state " + string(state)
	rows, err := s.reads.QueryContext(ctx, `SELECT `+versionColumns+` FROM key_versions
		WHERE state = ? ORDER BY key_id, version`, string(state))
	if err != nil {
		return nil, wrap(op, err)
	}
	vs, err := scanVersions(rows)
	return vs, wrap(op, err)
}

// SetVersionState changes the state of one version.
func (s *Store) SetVersionState(ctx context.Context, keyID string, version int, state kms.VersionState) error {
	return wrap(versionOp("set state of", keyID, version), s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE key_versions SET state = ?
			WHERE key_id = ? AND version = ?`, string(state), keyID, version)
		return oneRow(res, err)
	}))
}

// ActivateVersion marks the version Active and makes it the key's current
// version if the key's current version is still prevCurrent; otherwise
// ErrStoreConflict. A version that is Destroying or Destroyed cannot be
// activated either (ErrStoreConflict): its token object is, or may be, gone.
func (s *Store) ActivateVersion(ctx context.Context, keyID string, version, prevCurrent int) error {
	return wrap(versionOp("activate", keyID, version), s.writeTx(ctx, func(tx *sql.Tx) error {
		// A Deleted key gets no new current version: its abandoned
		// creation's leftover object is not made live under a tombstone.
		res, err := tx.ExecContext(ctx, `UPDATE keys SET current_version = ?
			WHERE id = ? AND current_version = ? AND state <> ?`, version, keyID, prevCurrent, string(kms.StateDeleted))
		if n, err := affected(res, err); err != nil {
			return err
		} else if n == 0 {
			if err := requireKey(ctx, tx, keyID); err != nil {
				return err
			}
			return fmt.Errorf("%w: current version is not %d, or the key is deleted", kms.ErrStoreConflict, prevCurrent)
		}

		st, err := getVersionState(ctx, tx, keyID, version)
		if err != nil {
			return err // sql.ErrNoRows: no such version
		}
		// Only an intent becomes current: a version a settler already
		// committed or tombstoned is someone else's decision (the creator
		// re-reads it on this conflict).
		if st != kms.VersionCreating {
			return fmt.Errorf("%w: version is %s, not %s", kms.ErrStoreConflict, st, kms.VersionCreating)
		}
		res, err = tx.ExecContext(ctx, `UPDATE key_versions SET state = ?
			WHERE key_id = ? AND version = ?`, string(kms.VersionActive), keyID, version)
		return oneRow(res, err)
	}))
}

// AllBackingIDs returns every version not yet Destroyed, keyed by the hex
// encoding of its backing id: the token objects the metadata still claims.
func (s *Store) AllBackingIDs(ctx context.Context) (map[string]kms.KeyVersion, error) {
	rows, err := s.reads.QueryContext(ctx, `SELECT `+versionColumns+` FROM key_versions
		WHERE state <> ?`, string(kms.VersionDestroyed))
	if err != nil {
		return nil, wrap("all backing ids", err)
	}
	vs, err := scanVersions(rows)
	if err != nil {
		return nil, wrap("all backing ids", err)
	}
	out := make(map[string]kms.KeyVersion, len(vs))
	for _, v := range vs {
		out[hex.EncodeToString(v.BackingID)] = v
	}
	return out, nil
}

// affected returns the number of rows an Exec changed.
func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// oneRow turns "no row changed" into sql.ErrNoRows (ErrStoreNotFound).
func oneRow(res sql.Result, err error) error {
	n, err := affected(res, err)
	if err != nil {
		return err
	}
	if n == 0 {
		return sql.ErrNoRows
	}
	return nil
}

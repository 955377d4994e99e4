package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"

	"hsmkms/kms"
)

// SetVersionStateIf implements kms.VersionCASStore in one statement, so a
// concurrent transition wins or loses as a whole.
func (s *Store) SetVersionStateIf(ctx context.Context, keyID string, version int, from, to kms.VersionState) error {
	return wrap(versionOp("set state of", keyID, version), s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE key_versions SET state = ?
			WHERE key_id = ? AND version = ? AND state = ?`, string(to), keyID, version, string(from))
		n, err := affected(res, err)
		if err != nil {
			return err
		}
		if n == 1 {
			return nil
		}
		st, err := getVersionState(ctx, tx, keyID, version)
		if err != nil {
			return err // sql.ErrNoRows: ErrStoreNotFound
		}
		return fmt.Errorf("%w: version is %s, not %s", kms.ErrStoreConflict, st, from)
	}))
}

// SetVersionStateIfID implements kms.VersionCASStore: SetVersionStateIf
// conditional on the backing id too, in one statement.
func (s *Store) SetVersionStateIfID(ctx context.Context, keyID string, version int, backingID []byte, from, to kms.VersionState) error {
	return wrap(versionOp("set state of", keyID, version), s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE key_versions SET state = ?
			WHERE key_id = ? AND version = ? AND backing_id = ? AND state = ?`, string(to), keyID, version, backingID, string(from))
		n, err := affected(res, err)
		if err != nil {
			return err
		}
		if n == 1 {
			return nil
		}
		var (
			st  string
			cur []byte
		)
		if err := tx.QueryRowContext(ctx, `SELECT state, backing_id FROM key_versions WHERE key_id = ? AND version = ?`,
			keyID, version).Scan(&st, &cur); err != nil {
			return err // sql.ErrNoRows: ErrStoreNotFound
		}
		if !bytes.Equal(cur, backingID) {
			return fmt.Errorf("%w: version is backed by another object now (%s)", kms.ErrStoreConflict, st)
		}
		return fmt.Errorf("%w: version is %s, not %s", kms.ErrStoreConflict, st, from)
	}))
}

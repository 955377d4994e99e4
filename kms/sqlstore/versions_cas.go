package sqlstore

import (
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

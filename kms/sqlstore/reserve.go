package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"math"

	"hsmkms/kms"
)

// maxReserved is the largest counter SQLite's signed 64-bit INTEGER holds.
const maxReserved = math.MaxInt64

// ReserveInvocations adds n to the version's Reserved counter if the result
// stays <= bound and returns the counter's value before the addition;
// otherwise ErrStoreExhausted and nothing changes.
//
// The check and the addition are one conditional UPDATE, inside a write
// transaction that holds the database's write lock, so no two callers (in
// this process or another one sharing the file) can be handed overlapping
// ranges, and the bound can never be passed. The comparison is written as
// reserved <= bound - n, computed in Go, because reserved + n could overflow
// SQLite's INTEGER, which silently turns the sum into a REAL.
func (s *Store) ReserveInvocations(ctx context.Context, keyID string, version int, n, bound uint64) (uint64, error) {
	op := versionOp("reserve invocations of", keyID, version)
	bound = min(bound, maxReserved)
	var before uint64
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		if n > bound {
			// Cannot fit even into an unused version; only tell "absent"
			// from "exhausted".
			if _, err := getVersionState(ctx, tx, keyID, version); err != nil {
				return err
			}
			return kms.ErrStoreExhausted
		}
		var old int64
		err := tx.QueryRowContext(ctx, `UPDATE key_versions SET reserved = reserved + ?
			WHERE key_id = ? AND version = ? AND reserved <= ?
			RETURNING reserved - ?`,
			int64(n), keyID, version, int64(bound-n), int64(n)).Scan(&old)
		if err == sql.ErrNoRows {
			if _, err := getVersionState(ctx, tx, keyID, version); err != nil {
				return err
			}
			return fmt.Errorf("%w: %d more would pass %d", kms.ErrStoreExhausted, n, bound)
		}
		before = uint64(old)
		return err
	})
	if err != nil {
		return 0, wrap(op, err)
	}
	return before, nil
}

// getVersionState returns the state of a version; sql.ErrNoRows if absent.
func getVersionState(ctx context.Context, q querier, keyID string, version int) (kms.VersionState, error) {
	var state string
	err := q.QueryRowContext(ctx, `SELECT state FROM key_versions
		WHERE key_id = ? AND version = ?`, keyID, version).Scan(&state)
	return kms.VersionState(state), err
}

package sqlstore

import (
	"context"
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
// transaction that holds the database's write lock (group-committed with
// concurrent reservations: reservebatch.go), so no two callers (in
// this process or another one sharing the file) can be handed overlapping
// ranges, and the bound can never be passed. The comparison is written as
// reserved <= bound - n, computed in Go, because reserved + n could overflow
// SQLite's INTEGER, which silently turns the sum into a REAL.
func (s *Store) ReserveInvocations(ctx context.Context, keyID string, version int, n, bound uint64) (uint64, error) {
	r := &reserveRequest{keyID: keyID, version: version, n: n, bound: bound}
	if err := s.reserve.submit(ctx, r); err != nil {
		return 0, wrap(versionOp("reserve invocations of", keyID, version), err)
	}
	return r.before, nil
}

// getVersionState returns the state of a version; sql.ErrNoRows if absent.
func getVersionState(ctx context.Context, q querier, keyID string, version int) (kms.VersionState, error) {
	var state string
	err := q.QueryRowContext(ctx, `SELECT state FROM key_versions
		WHERE key_id = ? AND version = ?`, keyID, version).Scan(&state)
	return kms.VersionState(state), err
}

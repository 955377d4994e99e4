package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"hsmkms/kms"
)

const msPerDay = 24 * 60 * 60 * 1000

// TombstoneIntent implements kms.IntentRollbackStore. The version's
// tombstone and the schedule's repair are one transaction: a crash between
// them would leave no Creating version for the next Reconcile to find, and
// the cut rotation dropped after all.
func (s *Store) TombstoneIntent(ctx context.Context, keyID string, version int) (bool, error) {
	return s.tombstoneIntent(ctx, keyID, version, kms.VersionDestroyed, time.Time{})
}

// TombstoneIntentRetryAt implements kms.IntentRollbackStore: TombstoneIntent
// with the key due again at retryAt instead of at the intent's own time.
func (s *Store) TombstoneIntentRetryAt(ctx context.Context, keyID string, version int, to kms.VersionState, retryAt time.Time) (bool, error) {
	if to != kms.VersionDestroyed && to != kms.VersionDestroying {
		return false, fmt.Errorf("sqlstore: an abandoned intent goes to %s or %s, not %s", kms.VersionDestroyed, kms.VersionDestroying, to)
	}
	return s.tombstoneIntent(ctx, keyID, version, to, retryAt)
}

// tombstoneIntent puts a recognised claim's schedule back to
// min(max(retryAt, rotated_at), the date now stored): a zero retryAt is the
// intent's own time.
func (s *Store) tombstoneIntent(ctx context.Context, keyID string, version int, to kms.VersionState, retryAt time.Time) (bool, error) {
	rescheduled := false
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE key_versions SET state = ?
			WHERE key_id = ? AND version = ? AND state = ?`,
			string(to), keyID, version, string(kms.VersionCreating))
		n, err := affected(res, err)
		if err != nil {
			return err
		}
		if n == 0 {
			st, err := getVersionState(ctx, tx, keyID, version)
			if err != nil {
				return err // sql.ErrNoRows: ErrStoreNotFound
			}
			return fmt.Errorf("%w: version is %s, not %s", kms.ErrStoreConflict, st, kms.VersionCreating)
		}
		var (
			typ string
			at  int64
		)
		err = tx.QueryRowContext(ctx, `SELECT rotation_type, rotated_at FROM key_rotations
			WHERE key_id = ? AND version = ?`, keyID, version).Scan(&typ, &at)
		if err == sql.ErrNoRows || (err == nil && typ != string(kms.RotationAutomatic)) {
			return nil // a key's first version, an import or an on-demand rotation: no schedule moved
		}
		if err != nil {
			return err
		}
		// The claim set next_rotation_at to rotated_at + period; a period
		// change since moved both by the same amount, so the test holds
		// while the schedule is the one the claim left (enabled = 1 fails
		// after DisableKeyRotation, the date after a fresh enable). An
		// AUTOMATIC rotation made at the nonce bound claims nothing; if
		// another live AUTOMATIC version was recorded at the same instant,
		// it may be the claim, and either way the key was rotated then (this
		// version itself is excluded: it may be left Destroying).
		// A zero retryAt is long before any intent: the intent's own time.
		due := max(retryAt.UnixMilli(), at)
		res, err = tx.ExecContext(ctx, `UPDATE key_rotation_schedules SET next_rotation_at = MIN(?, next_rotation_at)
			WHERE key_id = ? AND enabled = 1 AND next_rotation_at = ? + period_days * ?
			AND NOT EXISTS (SELECT 1 FROM key_rotations r
				JOIN key_versions v ON v.key_id = r.key_id AND v.version = r.version
				WHERE r.key_id = ? AND r.version <> ? AND r.rotation_type = ? AND r.rotated_at = ? AND v.state <> ?)`,
			due, keyID, at, msPerDay,
			keyID, version, string(kms.RotationAutomatic), at, string(kms.VersionDestroyed))
		n, err = affected(res, err)
		rescheduled = n == 1
		return err
	})
	return rescheduled, wrap(versionOp("tombstone the intent of", keyID, version), err)
}

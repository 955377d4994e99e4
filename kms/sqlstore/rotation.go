package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"hsmkms/kms"
)

// GetRotationSchedule implements kms.RotationStore.
func (s *Store) GetRotationSchedule(ctx context.Context, keyID string) (kms.RotationSchedule, error) {
	sc := kms.RotationSchedule{KeyID: keyID}
	var (
		enabled int
		next    sql.NullInt64
	)
	err := s.r.QueryRowContext(ctx, `SELECT enabled, period_days, next_rotation_at
		FROM key_rotation_schedules WHERE key_id = ?`, keyID).Scan(&enabled, &sc.PeriodDays, &next)
	if err == sql.ErrNoRows {
		return sc, nil
	}
	if err != nil {
		return sc, wrap("get rotation schedule of key "+keyID, err)
	}
	sc.Enabled = enabled == 1
	sc.NextRotation = fromMillis(next)
	return sc, nil
}

// PutRotationSchedule implements kms.RotationStore.
func (s *Store) PutRotationSchedule(ctx context.Context, sc kms.RotationSchedule) error {
	return wrap("put rotation schedule of key "+sc.KeyID, s.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO key_rotation_schedules (key_id, enabled, period_days, next_rotation_at)
			VALUES (?, ?, ?, ?)
			ON CONFLICT (key_id) DO UPDATE SET enabled = excluded.enabled,
				period_days = excluded.period_days, next_rotation_at = excluded.next_rotation_at`,
			sc.KeyID, boolInt(sc.Enabled), sc.PeriodDays, toMillis(sc.NextRotation))
		return err
	}))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// DueRotations implements kms.RotationStore.
func (s *Store) DueRotations(ctx context.Context, now time.Time, limit int) ([]kms.RotationSchedule, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT key_id, period_days, next_rotation_at FROM key_rotation_schedules
		WHERE enabled = 1 AND next_rotation_at <= ? ORDER BY next_rotation_at LIMIT ?`,
		now.UnixMilli(), sqlLimit(limit))
	if err != nil {
		return nil, wrap("due rotations", err)
	}
	defer rows.Close()
	var out []kms.RotationSchedule
	for rows.Next() {
		sc := kms.RotationSchedule{Enabled: true}
		var next sql.NullInt64
		if err := rows.Scan(&sc.KeyID, &sc.PeriodDays, &next); err != nil {
			return nil, wrap("due rotations", err)
		}
		sc.NextRotation = fromMillis(next)
		out = append(out, sc)
	}
	return out, wrap("due rotations", rows.Err())
}

// RecordRotationIntent implements kms.RotationStore.
func (s *Store) RecordRotationIntent(ctx context.Context, in kms.RotationIntent) (kms.KeyVersion, error) {
	var v kms.KeyVersion
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		if err := requireKey(ctx, tx, in.KeyID); err != nil {
			return err
		}
		if !in.ClaimDue.IsZero() {
			res, err := tx.ExecContext(ctx, `UPDATE key_rotation_schedules SET next_rotation_at = ?
				WHERE key_id = ? AND enabled = 1 AND next_rotation_at = ?`,
				toMillis(in.NextDue), in.KeyID, in.ClaimDue.UnixMilli())
			if n, err := affected(res, err); err != nil {
				return err
			} else if n == 0 {
				return fmt.Errorf("%w: the rotation due %s was claimed or rescheduled", kms.ErrStoreConflict, in.ClaimDue.UTC().Format(time.RFC3339))
			}
		}
		if in.MaxOnDemand > 0 {
			var creating int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM key_versions WHERE key_id = ? AND state = ?`,
				in.KeyID, string(kms.VersionCreating)).Scan(&creating); err != nil {
				return err
			}
			if creating > 0 {
				return fmt.Errorf("%w: a new version of the key is being made", kms.ErrStoreConflict)
			}
			n, err := countRotations(ctx, tx, in.KeyID, kms.RotationOnDemand)
			if err != nil {
				return err
			}
			if n >= in.MaxOnDemand {
				return fmt.Errorf("%w: %d on-demand rotations", kms.ErrStoreExhausted, n)
			}
		}
		var maxVersion int
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM key_versions WHERE key_id = ?`,
			in.KeyID).Scan(&maxVersion); err != nil {
			return err
		}
		v = kms.KeyVersion{KeyID: in.KeyID, Version: maxVersion + 1, BackingID: in.BackingID,
			State: kms.VersionCreating, CreatedAt: in.At.UTC()}
		if err := insertVersion(ctx, tx, v); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO key_rotations (key_id, version, rotation_type, rotated_at)
			VALUES (?, ?, ?, ?)`, in.KeyID, v.Version, string(in.Type), in.At.UnixMilli())
		return err
	})
	return v, wrap("record rotation of key "+in.KeyID, err)
}

func countRotations(ctx context.Context, q querier, keyID string, typ kms.RotationType) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM key_rotations r
		JOIN key_versions v ON v.key_id = r.key_id AND v.version = r.version
		WHERE r.key_id = ? AND r.rotation_type = ? AND v.state <> ?`,
		keyID, string(typ), string(kms.VersionDestroyed)).Scan(&n)
	return n, err
}

// CountRotations implements kms.RotationStore.
func (s *Store) CountRotations(ctx context.Context, keyID string, typ kms.RotationType) (int, error) {
	n, err := countRotations(ctx, s.r, keyID, typ)
	return n, wrap("count rotations of key "+keyID, err)
}

// ListRotations implements kms.RotationStore.
func (s *Store) ListRotations(ctx context.Context, keyID string, state kms.VersionState, afterVersion, limit int) ([]kms.RotationRecord, error) {
	op := "list rotations of key " + keyID
	rows, err := s.r.QueryContext(ctx, `SELECT r.version, r.rotation_type, r.rotated_at, v.backing_id, v.state
		FROM key_rotations r JOIN key_versions v ON v.key_id = r.key_id AND v.version = r.version
		WHERE r.key_id = ? AND v.state = ? AND r.version > ? ORDER BY r.version LIMIT ?`,
		keyID, string(state), afterVersion, sqlLimit(limit))
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	var out []kms.RotationRecord
	for rows.Next() {
		r := kms.RotationRecord{KeyID: keyID}
		var typ, st string
		var at int64
		if err := rows.Scan(&r.Version, &typ, &at, &r.BackingID, &st); err != nil {
			return nil, wrap(op, err)
		}
		r.Type, r.VersionState, r.RotatedAt = kms.RotationType(typ), kms.VersionState(st), time.UnixMilli(at).UTC()
		out = append(out, r)
	}
	return out, wrap(op, rows.Err())
}

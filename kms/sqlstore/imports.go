package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"time"

	"hsmkms/kms"
)

// CreateExternalKey implements kms.ImportStore.
func (s *Store) CreateExternalKey(ctx context.Context, k kms.KeyRecord) error {
	return wrap("create external key "+k.ID, s.writeTx(ctx, func(tx *sql.Tx) error {
		if err := insertKey(ctx, tx, k); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO key_imports (key_id) VALUES (?)`, k.ID)
		return err
	}))
}

const importColumns = `key_id, expiration_model, valid_to, check_value, pending_model, pending_valid_to`

func scanImport(row scanner) (kms.ImportRecord, error) {
	var (
		r                kms.ImportRecord
		valid, pendValid sql.NullInt64
	)
	if err := row.Scan(&r.KeyID, &r.ExpirationModel, &valid, &r.CheckValue, &r.PendingModel, &pendValid); err != nil {
		return r, err
	}
	r.ValidTo, r.PendingValidTo = fromMillis(valid), fromMillis(pendValid)
	return r, nil
}

// GetImport implements kms.ImportStore.
func (s *Store) GetImport(ctx context.Context, keyID string) (kms.ImportRecord, error) {
	r, err := scanImport(s.r.QueryRowContext(ctx, `SELECT `+importColumns+` FROM key_imports WHERE key_id = ?`, keyID))
	return r, wrap("get import of key "+keyID, err)
}

// ImportsExpiring implements kms.ImportStore.
func (s *Store) ImportsExpiring(ctx context.Context, now time.Time) ([]kms.ImportRecord, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT i.key_id, i.expiration_model, i.valid_to, i.check_value, i.pending_model, i.pending_valid_to
		FROM key_imports i JOIN key_versions v ON v.key_id = i.key_id AND v.version = 1
		WHERE i.expiration_model = 'KEY_MATERIAL_EXPIRES' AND i.valid_to <= ? AND v.state = ?
		ORDER BY i.valid_to`, now.UnixMilli(), string(kms.VersionActive))
	if err != nil {
		return nil, wrap("expiring imports", err)
	}
	defer rows.Close()
	var out []kms.ImportRecord
	for rows.Next() {
		r, err := scanImport(rows)
		if err != nil {
			return nil, wrap("expiring imports", err)
		}
		out = append(out, r)
	}
	return out, wrap("expiring imports", rows.Err())
}

// BeginImport implements kms.ImportStore.
func (s *Store) BeginImport(ctx context.Context, keyID string, backingID []byte, createdAt time.Time, model string, validTo time.Time) (kms.KeyVersion, error) {
	var v kms.KeyVersion
	createdAt = fromMillis(toMillis(createdAt)) // as it will read back
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		cur, err := scanVersion(tx.QueryRowContext(ctx, `SELECT `+versionColumns+` FROM key_versions
			WHERE key_id = ? AND version = 1`, keyID))
		switch {
		case err == sql.ErrNoRows:
			v = kms.KeyVersion{KeyID: keyID, Version: 1, BackingID: backingID, State: kms.VersionCreating, CreatedAt: createdAt}
			if err := insertVersion(ctx, tx, v); err != nil {
				return err
			}
		case err != nil:
			return err
		case cur.State == kms.VersionActive:
			return fmt.Errorf("%w: key material is present", kms.ErrStoreAlreadyExists)
		case cur.State != kms.VersionDestroyed:
			return fmt.Errorf("%w: version 1 is %s", kms.ErrStoreConflict, cur.State)
		default:
			// A new backing id and time: see kms.ImportStore.BeginImport.
			if _, err := tx.ExecContext(ctx, `UPDATE key_versions SET state = ?, backing_id = ?, created_at = ?
				WHERE key_id = ? AND version = 1`,
				string(kms.VersionCreating), backingID, toMillis(createdAt), keyID); err != nil {
				return err
			}
			v = cur
			v.State, v.BackingID, v.CreatedAt = kms.VersionCreating, backingID, createdAt
		}
		res, err := tx.ExecContext(ctx, `UPDATE key_imports SET pending_model = ?, pending_valid_to = ? WHERE key_id = ?`,
			model, toMillis(validTo), keyID)
		return oneRow(res, err)
	})
	return v, wrap("begin import into key "+keyID, err)
}

// CompleteImport implements kms.ImportStore.
func (s *Store) CompleteImport(ctx context.Context, keyID string, backingID, checkValue []byte) error {
	return wrap("complete import into key "+keyID, s.writeTx(ctx, func(tx *sql.Tx) error {
		rec, err := scanImport(tx.QueryRowContext(ctx, `SELECT `+importColumns+` FROM key_imports WHERE key_id = ?`, keyID))
		if err != nil {
			return err
		}
		if rec.CheckValue != nil && !bytes.Equal(rec.CheckValue, checkValue) {
			return fmt.Errorf("%w: the key material differs from the material imported before", kms.ErrStoreConflict)
		}
		cur, err := scanVersion(tx.QueryRowContext(ctx, `SELECT `+versionColumns+` FROM key_versions
			WHERE key_id = ? AND version = 1`, keyID))
		if err != nil {
			return err
		}
		if !bytes.Equal(cur.BackingID, backingID) {
			return fmt.Errorf("%w: version 1 is another import attempt now", kms.ErrStoreConflict)
		}
		if cur.State != kms.VersionCreating && cur.State != kms.VersionActive {
			return fmt.Errorf("%w: version 1 is %s", kms.ErrStoreConflict, cur.State)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE key_versions SET state = ? WHERE key_id = ? AND version = 1`,
			string(kms.VersionActive), keyID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE keys SET current_version = 1,
				state = CASE WHEN state = ? THEN ? ELSE state END WHERE id = ?`,
			string(kms.StatePendingImport), string(kms.StateEnabled), keyID); err != nil {
			return err
		}
		if rec.CheckValue == nil {
			rec.CheckValue = checkValue
		}
		_, err = tx.ExecContext(ctx, `UPDATE key_imports SET expiration_model = pending_model,
				valid_to = pending_valid_to, check_value = ?, pending_model = '', pending_valid_to = NULL
			WHERE key_id = ?`, rec.CheckValue, keyID)
		return err
	}))
}

// SetImportExpiration implements kms.ImportStore.
func (s *Store) SetImportExpiration(ctx context.Context, keyID string, backingID []byte, model string, validTo time.Time) error {
	return wrap("set import expiration of key "+keyID, s.writeTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM key_versions
			WHERE key_id = ? AND version = 1 AND state = ? AND backing_id = ?`,
			keyID, string(kms.VersionActive), backingID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: the material of key %s is no longer the one compared", kms.ErrStoreConflict, keyID)
		}
		res, err := tx.ExecContext(ctx, `UPDATE key_imports SET expiration_model = ?, valid_to = ? WHERE key_id = ?`,
			model, toMillis(validTo), keyID)
		return oneRow(res, err)
	}))
}

// BeginDeleteMaterial implements kms.ImportStore.
func (s *Store) BeginDeleteMaterial(ctx context.Context, keyID string, expiredBy time.Time) (kms.KeyVersion, error) {
	var v kms.KeyVersion
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		if !expiredBy.IsZero() {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM key_imports
				WHERE key_id = ? AND expiration_model = 'KEY_MATERIAL_EXPIRES' AND valid_to <= ?`,
				keyID, expiredBy.UnixMilli()).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return sql.ErrNoRows // re-imported or extended since it was listed
			}
		}
		var err error
		v, err = scanVersion(tx.QueryRowContext(ctx, `SELECT `+versionColumns+` FROM key_versions
			WHERE key_id = ? AND version = 1 AND state = ?`, keyID, string(kms.VersionActive)))
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE key_versions SET state = ? WHERE key_id = ? AND version = 1`,
			string(kms.VersionDestroying), keyID); err != nil {
			return err
		}
		v.State = kms.VersionDestroying
		_, err = tx.ExecContext(ctx, `UPDATE keys SET state = ? WHERE id = ? AND state IN (?, ?)`,
			string(kms.StatePendingImport), keyID, string(kms.StateEnabled), string(kms.StateDisabled))
		return err
	})
	return v, wrap("delete material of key "+keyID, err)
}

const wrappingColumns = `backing_id, key_id, algorithm, spec, token_hash, state, created_at, expires_at`

func scanWrapping(row scanner) (kms.WrappingKey, error) {
	var (
		w                kms.WrappingKey
		state            string
		created, expires sql.NullInt64
	)
	if err := row.Scan(&w.BackingID, &w.KeyID, &w.Algorithm, &w.Spec, &w.TokenHash, &state, &created, &expires); err != nil {
		return w, err
	}
	w.State, w.CreatedAt, w.ExpiresAt = kms.WrappingKeyState(state), fromMillis(created), fromMillis(expires)
	return w, nil
}

// PutWrappingKey implements kms.ImportStore.
func (s *Store) PutWrappingKey(ctx context.Context, w kms.WrappingKey) error {
	return wrap("put wrapping key", s.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO wrapping_keys (`+wrappingColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			w.BackingID, w.KeyID, w.Algorithm, w.Spec, w.TokenHash, string(w.State), toMillis(w.CreatedAt), toMillis(w.ExpiresAt))
		return err
	}))
}

// GetWrappingKey implements kms.ImportStore.
func (s *Store) GetWrappingKey(ctx context.Context, backingID []byte) (kms.WrappingKey, error) {
	w, err := scanWrapping(s.r.QueryRowContext(ctx, `SELECT `+wrappingColumns+` FROM wrapping_keys WHERE backing_id = ?`, backingID))
	return w, wrap("get wrapping key", err)
}

// SetWrappingKeyState implements kms.ImportStore.
func (s *Store) SetWrappingKeyState(ctx context.Context, backingID []byte, state kms.WrappingKeyState) error {
	return wrap("set wrapping key state", s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE wrapping_keys SET state = ? WHERE backing_id = ?`, string(state), backingID)
		return oneRow(res, err)
	}))
}

// LiveWrappingKeys implements kms.ImportStore.
func (s *Store) LiveWrappingKeys(ctx context.Context) ([]kms.WrappingKey, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+wrappingColumns+` FROM wrapping_keys WHERE state <> ? ORDER BY created_at`,
		string(kms.WrappingDestroyed))
	if err != nil {
		return nil, wrap("live wrapping keys", err)
	}
	defer rows.Close()
	var out []kms.WrappingKey
	for rows.Next() {
		w, err := scanWrapping(rows)
		if err != nil {
			return nil, wrap("live wrapping keys", err)
		}
		out = append(out, w)
	}
	return out, wrap("live wrapping keys", rows.Err())
}

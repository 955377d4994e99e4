package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"hsmkms/kms"
)

// ListAccessKeys returns a principal's access keys in id order, without
// secrets.
func (s *Store) ListAccessKeys(ctx context.Context, principalARN string) ([]kms.AccessKey, error) {
	rows, err := s.reads.QueryContext(ctx, `SELECT id, account_id, principal_arn, active, created_at
		FROM access_keys WHERE principal_arn = ? ORDER BY id`, principalARN)
	if err != nil {
		return nil, wrap("list access keys of "+principalARN, err)
	}
	defer rows.Close()
	var out []kms.AccessKey
	for rows.Next() {
		var (
			k       kms.AccessKey
			created sql.NullInt64
		)
		if err := rows.Scan(&k.ID, &k.AccountID, &k.PrincipalARN, &k.Active, &created); err != nil {
			return nil, wrap("list access keys of "+principalARN, err)
		}
		k.CreatedAt = fromMillis(created)
		out = append(out, k)
	}
	return out, wrap("list access keys of "+principalARN, rows.Err())
}

// SetAccessKeyActive activates or deactivates an access key.
func (s *Store) SetAccessKeyActive(ctx context.Context, id string, active bool) error {
	return wrap("set access key "+id+" status", s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE access_keys SET active = ? WHERE id = ?`, active, id)
		if err != nil {
			return err
		}
		return requireOneRow(res)
	}))
}

// DeleteAccessKey removes an access key.
func (s *Store) DeleteAccessKey(ctx context.Context, id string) error {
	return wrap("delete access key "+id, s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM access_keys WHERE id = ?`, id)
		if err != nil {
			return err
		}
		return requireOneRow(res)
	}))
}

// PlainAccessKeyIDs returns the ids of access keys whose secret column still
// holds a plain-text secret.
func (s *Store) PlainAccessKeyIDs(ctx context.Context) ([]string, error) {
	rows, err := s.reads.QueryContext(ctx, `SELECT id FROM access_keys WHERE secret <> '' ORDER BY id`)
	if err != nil {
		return nil, wrap("list plain access keys", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, wrap("list plain access keys", err)
		}
		out = append(out, id)
	}
	return out, wrap("list plain access keys", rows.Err())
}

// SealAccessKeySecret stores the sealed secret and clears the plain one in
// one statement, so no state has neither.
//
// SQLite may keep the old plain-text bytes in free pages and in the WAL
// after the UPDATE; secure_delete overwrites freed content with zeros, and
// the checkpoint that follows the write moves the page into the main file.
func (s *Store) SealAccessKeySecret(ctx context.Context, id string, sealed []byte) error {
	if len(sealed) == 0 {
		return fmt.Errorf("sqlstore: seal access key %s: empty sealed secret", id)
	}
	err := wrap("seal access key "+id, s.writeTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE access_keys SET sealed_secret = ?, secret = '' WHERE id = ?`, sealed, id)
		if err != nil {
			return err
		}
		return requireOneRow(res)
	}))
	if err != nil {
		return err
	}
	return nil
}

// ScrubFreePages truncates the WAL into the main file and vacuums it, so
// that plain-text secrets overwritten by SealAccessKeySecret leave no copy
// in free pages or in the WAL. It is slow on a large file; kms calls it only
// after sealing legacy rows, which happens once.
func (s *Store) ScrubFreePages(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `VACUUM`); err != nil {
		return wrap("vacuum", err)
	}
	if _, err := s.w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return wrap("checkpoint", err)
	}
	return nil
}

// PutSession stores temporary credentials.
func (s *Store) PutSession(ctx context.Context, r kms.SessionRecord) error {
	return wrap("put session "+r.AccessKeyID, s.writeTx(ctx, func(tx *sql.Tx) error {
		if err := requirePrincipal(ctx, tx, r.RoleARN); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions
			(access_key_id, sealed_secret, token_hash, account_id, role_arn, session_name, source_arn, expiration, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.AccessKeyID, r.SealedSecret, r.TokenHash, r.AccountID, r.RoleARN, r.SessionName, r.SourceARN,
			r.Expiration.UnixMilli(), toMillis(r.CreatedAt))
		return err
	}))
}

// GetSession returns temporary credentials by access key id.
func (s *Store) GetSession(ctx context.Context, accessKeyID string) (kms.SessionRecord, error) {
	var (
		r          kms.SessionRecord
		expiration int64
		created    sql.NullInt64
	)
	err := s.reads.QueryRowContext(ctx, `SELECT access_key_id, sealed_secret, token_hash, account_id, role_arn,
		session_name, source_arn, expiration, created_at FROM sessions WHERE access_key_id = ?`, accessKeyID).
		Scan(&r.AccessKeyID, &r.SealedSecret, &r.TokenHash, &r.AccountID, &r.RoleARN, &r.SessionName,
			&r.SourceARN, &expiration, &created)
	if err != nil {
		return kms.SessionRecord{}, wrap("get session "+accessKeyID, err)
	}
	r.Expiration = time.UnixMilli(expiration).UTC()
	r.CreatedAt = fromMillis(created)
	return r, nil
}

// DeleteSessionsExpiredBefore removes sessions that expired before t.
func (s *Store) DeleteSessionsExpiredBefore(ctx context.Context, t time.Time) (int, error) {
	var n int64
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expiration < ?`, t.UnixMilli())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), wrap("delete expired sessions", err)
}

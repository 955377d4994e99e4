package sqlstore

import (
	"context"
	"database/sql"

	"hsmkms/kms"
)

// Access key secrets are stored in plain text for now (see the access_keys
// table in migrations/0001_init.sql); a later change encrypts them under an
// HSM-resident key. Whatever the storage, never put a secret into an error,
// a log line or an audit record: errors here name the access key id only.

// PutAccessKey stores an access key; ErrStoreAlreadyExists if the id exists.
func (s *Store) PutAccessKey(ctx context.Context, k kms.AccessKey) error {
	return wrap("put access key "+k.ID, s.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO access_keys
			(id, secret, account_id, principal_arn, active, created_at)
			VALUES (?, ?, ?, ?, ?, ?)`,
			k.ID, k.Secret, k.AccountID, k.PrincipalARN, k.Active, toMillis(k.CreatedAt))
		return err
	}))
}

// GetAccessKey returns an access key by id, secret included.
func (s *Store) GetAccessKey(ctx context.Context, id string) (kms.AccessKey, error) {
	var (
		k       kms.AccessKey
		created sql.NullInt64
	)
	err := s.reads.QueryRowContext(ctx, `SELECT id, secret, account_id, principal_arn, active, created_at
		FROM access_keys WHERE id = ?`, id).
		Scan(&k.ID, &k.Secret, &k.AccountID, &k.PrincipalARN, &k.Active, &created)
	if err != nil {
		return kms.AccessKey{}, wrap("get access key "+id, err)
	}
	k.CreatedAt = fromMillis(created)
	return k, nil
}

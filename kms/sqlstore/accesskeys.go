package sqlstore

import (
	"context"
	"database/sql"

	"hsmkms/kms"
)

// Secret access keys are stored sealed (sealed_secret, migration 0005): the
// service seals them under an HSM-resident key before they reach the store.
// The plain-text secret column of 0001 only still holds a value for rows
// written before 0005, until kms seals them at start-up
// (SealAccessKeySecret clears it). Whatever the storage, never put a secret
// into an error, a log line or an audit record: errors here name the access
// key id only.

// PutAccessKey stores an access key; ErrStoreAlreadyExists if the id exists.
func (s *Store) PutAccessKey(ctx context.Context, k kms.AccessKey) error {
	return wrap("put access key "+k.ID, s.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO access_keys
			(id, secret, sealed_secret, account_id, principal_arn, active, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`,
			k.ID, k.Secret, k.SealedSecret, k.AccountID, k.PrincipalARN, k.Active, toMillis(k.CreatedAt))
		return err
	}))
}

// GetAccessKey returns an access key by id, with its sealed secret (and the
// plain one for a row not yet sealed).
func (s *Store) GetAccessKey(ctx context.Context, id string) (kms.AccessKey, error) {
	var (
		k       kms.AccessKey
		created sql.NullInt64
	)
	err := s.reads.QueryRowContext(ctx, `SELECT id, secret, sealed_secret, account_id, principal_arn, active, created_at
		FROM access_keys WHERE id = ?`, id).
		Scan(&k.ID, &k.Secret, &k.SealedSecret, &k.AccountID, &k.PrincipalARN, &k.Active, &created)
	if err != nil {
		return kms.AccessKey{}, wrap("get access key "+id, err)
	}
	k.CreatedAt = fromMillis(created)
	return k, nil
}

package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"hsmkms/kms"
)

// PutTags adds or overwrites tags of a key in one transaction. If the key
// would then have more than maxTags tags, the transaction rolls back and
// ErrStoreExhausted is returned. ErrStoreNotFound if the key does not exist.
func (s *Store) PutTags(ctx context.Context, keyID string, tags []kms.TagRecord, maxTags int) error {
	return wrap("put tags of key "+keyID, s.writeTx(ctx, func(tx *sql.Tx) error {
		if err := requireKey(ctx, tx, keyID); err != nil {
			return err
		}
		for _, t := range tags {
			if _, err := tx.ExecContext(ctx, `INSERT INTO tags (key_id, tag_key, value)
				VALUES (?, ?, ?)
				ON CONFLICT (key_id, tag_key) DO UPDATE SET value = excluded.value`,
				keyID, t.Key, t.Value); err != nil {
				return err
			}
		}
		// Counting after the writes handles overwrites and duplicates in
		// tags without reasoning about them.
		var n int
		if err := tx.QueryRowContext(ctx,
			`SELECT count(*) FROM tags WHERE key_id = ?`, keyID).Scan(&n); err != nil {
			return err
		}
		if n > maxTags {
			return fmt.Errorf("%w: %d tags, at most %d", kms.ErrStoreExhausted, n, maxTags)
		}
		return nil
	}))
}

// DeleteTags removes the named tags; absent names are ignored.
// ErrStoreNotFound if the key does not exist.
func (s *Store) DeleteTags(ctx context.Context, keyID string, keys []string) error {
	return wrap("delete tags of key "+keyID, s.writeTx(ctx, func(tx *sql.Tx) error {
		if err := requireKey(ctx, tx, keyID); err != nil {
			return err
		}
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx,
				`DELETE FROM tags WHERE key_id = ? AND tag_key = ?`, keyID, k); err != nil {
				return err
			}
		}
		return nil
	}))
}

// ListTags returns up to limit tags of a key with key > after, in key order.
// limit <= 0 means no limit. ErrStoreNotFound if the key does not exist.
func (s *Store) ListTags(ctx context.Context, keyID, after string, limit int) ([]kms.TagRecord, error) {
	var out []kms.TagRecord
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		if err := requireKey(ctx, tx, keyID); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT tag_key, value FROM tags
			WHERE key_id = ? AND tag_key > ? ORDER BY tag_key LIMIT ?`,
			keyID, after, sqlLimit(limit))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var t kms.TagRecord
			if err := rows.Scan(&t.Key, &t.Value); err != nil {
				return err
			}
			out = append(out, t)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrap("list tags of key "+keyID, err)
	}
	return out, nil
}

package sqlstore

import (
	"context"
	"database/sql"

	"hsmkms/kms"
)

// ReserveForCurrentVersions reserves n invocations, in one transaction and
// one fsync, for the current version of every usable key (Enabled or
// Disabled, with an Active current version whose counter has room below
// bound), and returns each version with the counter's value before the
// addition. It lets a starting kmsd warm every key at once instead of
// paying a durable write on each key's first Encrypt.
func (s *Store) ReserveForCurrentVersions(ctx context.Context, n, bound uint64) ([]kms.Reservation, error) {
	bound = min(bound, maxReserved)
	if n > bound {
		return nil, nil
	}
	var out []kms.Reservation
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE key_versions SET reserved = reserved + ?
			WHERE state = ? AND reserved <= ?
			AND (key_id, version) IN (SELECT id, current_version FROM keys WHERE state IN (?, ?))
			RETURNING `+versionColumns+`, reserved - ?`,
			int64(n), string(kms.VersionActive), int64(bound-n),
			string(kms.StateEnabled), string(kms.StateDisabled), int64(n))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				r      kms.Reservation
				before int64
			)
			v, err := scanVersionWith(rows, &before)
			if err != nil {
				return err
			}
			r.Version, r.Start = v, uint64(before)
			out = append(out, r)
		}
		return rows.Err()
	})
	return out, wrap("reserve for current versions", err)
}

package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"hsmkms/kms"
)

// PutKeyPolicy stores the key's policy document, replacing any.
func (s *Store) PutKeyPolicy(ctx context.Context, keyID, document string, now time.Time) error {
	return wrap("put policy of key "+keyID, s.writeTx(ctx, func(tx *sql.Tx) error {
		if err := requireKey(ctx, tx, keyID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO key_policies (key_id, document, updated_at)
			VALUES (?, ?, ?)
			ON CONFLICT (key_id) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at`,
			keyID, document, toMillis(now))
		return err
	}))
}

// GetKeyPolicy returns the key's policy document.
func (s *Store) GetKeyPolicy(ctx context.Context, keyID string) (string, error) {
	var doc string
	err := s.reads.QueryRowContext(ctx, `SELECT document FROM key_policies WHERE key_id = ?`, keyID).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		err = kms.ErrStoreNotFound
	}
	return doc, wrap("get policy of key "+keyID, err)
}

// grantConstraints is the JSON form of a grant's constraints column. A
// nil map (no constraint) is left out; an empty one is a constraint and is
// kept (omitempty dropped it, and with it the constraint).
type grantConstraints struct {
	Equals map[string]string `json:"equals,omitzero"`
	Subset map[string]string `json:"subset,omitzero"`
}

const grantColumns = `grant_id, key_id, issuing_account, name, grantee_principal,
	retiring_principal, operations, constraints, created_at`

func scanGrant(row scanner) (kms.GrantRecord, error) {
	var (
		g           kms.GrantRecord
		ops, constr string
		created     sql.NullInt64
	)
	if err := row.Scan(&g.GrantID, &g.KeyID, &g.IssuingAccount, &g.Name, &g.GranteePrincipal,
		&g.RetiringPrincipal, &ops, &constr, &created); err != nil {
		return kms.GrantRecord{}, err
	}
	if err := json.Unmarshal([]byte(ops), &g.Operations); err != nil {
		return kms.GrantRecord{}, fmt.Errorf("grant %s operations: %w", g.GrantID, err)
	}
	var c grantConstraints
	if err := json.Unmarshal([]byte(constr), &c); err != nil {
		return kms.GrantRecord{}, fmt.Errorf("grant %s constraints: %w", g.GrantID, err)
	}
	g.EncryptionContextEquals, g.EncryptionContextSubset = c.Equals, c.Subset
	g.CreatedAt = fromMillis(created)
	return g, nil
}

func scanGrants(rows *sql.Rows, err error) ([]kms.GrantRecord, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []kms.GrantRecord
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// CreateGrant stores a grant unless the key already has maxPerKey grants.
func (s *Store) CreateGrant(ctx context.Context, g kms.GrantRecord, maxPerKey int) error {
	ops, err := json.Marshal(g.Operations)
	if err != nil {
		return wrap("create grant", err)
	}
	constr, err := json.Marshal(grantConstraints{Equals: g.EncryptionContextEquals, Subset: g.EncryptionContextSubset})
	if err != nil {
		return wrap("create grant", err)
	}
	return wrap("create grant on key "+g.KeyID, s.writeTx(ctx, func(tx *sql.Tx) error {
		if err := requireKey(ctx, tx, g.KeyID); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM grants WHERE key_id = ?`, g.KeyID).Scan(&n); err != nil {
			return err
		}
		if n >= maxPerKey {
			return fmt.Errorf("%w: key has %d grants", kms.ErrStoreExhausted, n)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO grants (`+grantColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			g.GrantID, g.KeyID, g.IssuingAccount, g.Name, g.GranteePrincipal, g.RetiringPrincipal,
			string(ops), string(constr), toMillis(g.CreatedAt))
		return err
	}))
}

// GetGrant returns one grant of a key.
func (s *Store) GetGrant(ctx context.Context, keyID, grantID string) (kms.GrantRecord, error) {
	g, err := scanGrant(s.reads.QueryRowContext(ctx,
		`SELECT `+grantColumns+` FROM grants WHERE key_id = ? AND grant_id = ?`, keyID, grantID))
	if errors.Is(err, sql.ErrNoRows) {
		err = kms.ErrStoreNotFound
	}
	return g, wrap("get grant "+grantID, err)
}

// ListGrants returns grants of a key in grant id order.
func (s *Store) ListGrants(ctx context.Context, keyID, after string, limit int) ([]kms.GrantRecord, error) {
	gs, err := scanGrants(s.reads.QueryContext(ctx, `SELECT `+grantColumns+` FROM grants
		WHERE key_id = ? AND grant_id > ? ORDER BY grant_id LIMIT ?`, keyID, after, sqlLimit(limit)))
	return gs, wrap("list grants of key "+keyID, err)
}

// ListRetirableGrants returns grants whose retiring principal is one of
// the given names.
func (s *Store) ListRetirableGrants(ctx context.Context, retiringPrincipals []string, after string, limit int) ([]kms.GrantRecord, error) {
	if len(retiringPrincipals) == 0 {
		return nil, nil
	}
	args := make([]any, 0, len(retiringPrincipals)+2)
	for _, p := range retiringPrincipals {
		args = append(args, p)
	}
	args = append(args, after, sqlLimit(limit))
	gs, err := scanGrants(s.reads.QueryContext(ctx, `SELECT `+grantColumns+` FROM grants
		WHERE retiring_principal IN (?`+strings.Repeat(", ?", len(retiringPrincipals)-1)+`) AND grant_id > ?
		ORDER BY grant_id LIMIT ?`, args...))
	return gs, wrap("list retirable grants", err)
}

// DeleteGrant removes a grant.
func (s *Store) DeleteGrant(ctx context.Context, keyID, grantID string) error {
	return wrap("delete grant "+grantID, s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM grants WHERE key_id = ? AND grant_id = ?`, keyID, grantID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return kms.ErrStoreNotFound
		}
		return nil
	}))
}

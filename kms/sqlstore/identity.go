package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"hsmkms/kms"
	"hsmkms/kms/policy"
)

// IdentityPolicies returns the identity policies attached to a user or role
// ARN in name order; an empty slice if none (also for an unknown ARN, so
// that callers evaluating policies need no special case).
func (s *Store) IdentityPolicies(ctx context.Context, principalARN string) ([]kms.NamedPolicy, error) {
	rows, err := s.reads.QueryContext(ctx, `SELECT name, document FROM identity_policies
		WHERE principal_arn = ? ORDER BY name`, principalARN)
	if err != nil {
		return nil, wrap("identity policies of "+principalARN, err)
	}
	defer rows.Close()
	out := []kms.NamedPolicy{}
	for rows.Next() {
		var p kms.NamedPolicy
		if err := rows.Scan(&p.Name, &p.Document); err != nil {
			return nil, wrap("identity policies of "+principalARN, err)
		}
		out = append(out, p)
	}
	return out, wrap("identity policies of "+principalARN, rows.Err())
}

// CreateAccount adds an account; ErrStoreAlreadyExists if the id exists.
func (s *Store) CreateAccount(ctx context.Context, a kms.AccountRecord) error {
	return wrap("create account "+a.ID, s.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)`,
			a.ID, a.Name, toMillis(a.CreatedAt))
		return err
	}))
}

// GetAccount returns an account by id.
func (s *Store) GetAccount(ctx context.Context, id string) (kms.AccountRecord, error) {
	var (
		a       kms.AccountRecord
		created sql.NullInt64
	)
	err := s.reads.QueryRowContext(ctx, `SELECT id, name, created_at FROM accounts WHERE id = ?`, id).
		Scan(&a.ID, &a.Name, &created)
	if err != nil {
		return kms.AccountRecord{}, wrap("get account "+id, err)
	}
	a.CreatedAt = fromMillis(created)
	return a, nil
}

// ListAccounts returns up to limit accounts with id > after, in id order.
func (s *Store) ListAccounts(ctx context.Context, after string, limit int) ([]kms.AccountRecord, error) {
	rows, err := s.reads.QueryContext(ctx, `SELECT id, name, created_at FROM accounts
		WHERE id > ? ORDER BY id LIMIT ?`, after, sqlLimit(limit))
	if err != nil {
		return nil, wrap("list accounts", err)
	}
	defer rows.Close()
	var out []kms.AccountRecord
	for rows.Next() {
		var (
			a       kms.AccountRecord
			created sql.NullInt64
		)
		if err := rows.Scan(&a.ID, &a.Name, &created); err != nil {
			return nil, wrap("list accounts", err)
		}
		a.CreatedAt = fromMillis(created)
		out = append(out, a)
	}
	return out, wrap("list accounts", rows.Err())
}

// CreatePrincipal adds a user or role. ErrStoreNotFound if the account does
// not exist; ErrStoreAlreadyExists if the name (case-insensitively), ARN or
// unique id is taken.
func (s *Store) CreatePrincipal(ctx context.Context, p kms.PrincipalRecord) error {
	return wrap("create principal "+p.ARN, s.writeTx(ctx, func(tx *sql.Tx) error {
		var one int
		// Checked first so that a missing account is "not found" rather than
		// the foreign-key failure, which classify would call a missing key.
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE id = ?`, p.AccountID).Scan(&one); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO principals
			(arn, account_id, kind, name, unique_id, trust_policy, max_session_seconds, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			p.ARN, p.AccountID, p.Kind, p.Name, p.UniqueID, p.TrustPolicy, p.MaxSessionSeconds, toMillis(p.CreatedAt))
		return err
	}))
}

const principalColumns = `arn, account_id, kind, name, unique_id, trust_policy, max_session_seconds, created_at`

func scanPrincipal(sc scanner) (kms.PrincipalRecord, error) {
	var (
		p       kms.PrincipalRecord
		created sql.NullInt64
	)
	if err := sc.Scan(&p.ARN, &p.AccountID, &p.Kind, &p.Name, &p.UniqueID, &p.TrustPolicy,
		&p.MaxSessionSeconds, &created); err != nil {
		return kms.PrincipalRecord{}, err
	}
	p.CreatedAt = fromMillis(created)
	return p, nil
}

// GetPrincipal returns a user or role by ARN.
func (s *Store) GetPrincipal(ctx context.Context, arn string) (kms.PrincipalRecord, error) {
	p, err := scanPrincipal(s.reads.QueryRowContext(ctx,
		`SELECT `+principalColumns+` FROM principals WHERE arn = ?`, arn))
	if err != nil {
		return kms.PrincipalRecord{}, wrap("get principal "+arn, err)
	}
	return p, nil
}

// ListPrincipals returns up to limit principals of one kind in an account
// with name > after, in name order.
func (s *Store) ListPrincipals(ctx context.Context, accountID, kind, after string, limit int) ([]kms.PrincipalRecord, error) {
	op := fmt.Sprintf("list %ss of account %s", kind, accountID)
	rows, err := s.reads.QueryContext(ctx, `SELECT `+principalColumns+` FROM principals
		WHERE account_id = ? AND kind = ? AND name > ? ORDER BY name LIMIT ?`,
		accountID, kind, after, sqlLimit(limit))
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	var out []kms.PrincipalRecord
	for rows.Next() {
		p, err := scanPrincipal(rows)
		if err != nil {
			return nil, wrap(op, err)
		}
		out = append(out, p)
	}
	return out, wrap(op, rows.Err())
}

// DeletePrincipal removes a user or role with its tags, policies, access
// keys and sessions in one transaction.
func (s *Store) DeletePrincipal(ctx context.Context, arn string) error {
	return wrap("delete principal "+arn, s.writeTx(ctx, func(tx *sql.Tx) error {
		var uid, kind, account, name string
		if err := tx.QueryRowContext(ctx, `SELECT unique_id, kind, account_id, name FROM principals WHERE arn = ?`, arn).
			Scan(&uid, &kind, &account, &name); err != nil {
			return err
		}
		// access_keys (0001) has no foreign key to principals; the others
		// cascade.
		if _, err := tx.ExecContext(ctx, `DELETE FROM access_keys WHERE principal_arn = ?`, arn); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM principals WHERE arn = ?`, arn)
		if err != nil {
			return err
		}
		if err := requireOneRow(res); err != nil {
			return err
		}
		sessions := ""
		if kind == kms.KindRole {
			sessions = "arn:aws:sts::" + account + ":assumed-role/" + name[strings.LastIndex(name, "/")+1:] + "/"
		}
		return forgetDeletedPrincipal(ctx, tx, arn, sessions, uid)
	}))
}

// forgetDeletedPrincipal replaces a deleted user's or role's ARN (and its
// sessions' ARNs) by its unique id wherever access is granted by name: key
// policies, trust policies and grants, as AWS shows a deleted principal.
// Matching is by ARN, so without this a user or role created later under
// the same name would inherit the old one's access; a unique id is never
// reused. It runs in the delete's transaction: no moment sees the
// principal gone and its name still granted.
func forgetDeletedPrincipal(ctx context.Context, tx *sql.Tx, arn, sessions, uid string) error {
	// The documents are kept as written, and JSON may spell the ARN with
	// escapes ("user\/alice", "\u0061lice"): only documents that hold the
	// name as is, or any backslash, can name the principal, and those are
	// decoded (the rewrite compares decoded values).
	name := arn[strings.LastIndex(arn, "/")+1:]
	rewrite := func(query, update string) error {
		rows, err := tx.QueryContext(ctx, query, name)
		if err != nil {
			return err
		}
		docs := map[string]string{}
		for rows.Next() {
			var id, doc string
			if err := rows.Scan(&id, &doc); err != nil {
				rows.Close()
				return err
			}
			docs[id] = doc
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for id, doc := range docs {
			out, changed, err := policy.ReplaceDeletedPrincipal(doc, arn, sessions, uid)
			if err != nil {
				return err
			}
			if changed {
				if _, err := tx.ExecContext(ctx, update, out, id); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := rewrite(`SELECT key_id, document FROM key_policies WHERE instr(document, ?) > 0 OR instr(document, '\') > 0`,
		`UPDATE key_policies SET document = ? WHERE key_id = ?`); err != nil {
		return err
	}
	if err := rewrite(`SELECT arn, trust_policy FROM principals WHERE instr(trust_policy, ?) > 0 OR instr(trust_policy, '\') > 0`,
		`UPDATE principals SET trust_policy = ? WHERE arn = ?`); err != nil {
		return err
	}
	for _, col := range []string{"grantee_principal", "retiring_principal"} {
		if _, err := tx.ExecContext(ctx, `UPDATE grants SET `+col+` = ? WHERE `+col+` = ?`, uid, arn); err != nil {
			return err
		}
		if sessions != "" {
			if _, err := tx.ExecContext(ctx, `UPDATE grants SET `+col+` = ? || ':' || substr(`+col+`, ?) WHERE substr(`+col+`, 1, ?) = ?`,
				uid, len(sessions)+1, len(sessions), sessions); err != nil {
				return err
			}
		}
	}
	return nil
}

// requireOneRow turns "no row changed" into ErrStoreNotFound (via classify).
func requireOneRow(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return sql.ErrNoRows
	}
	return nil
}

func requirePrincipal(ctx context.Context, q querier, arn string) error {
	var one int
	return q.QueryRowContext(ctx, `SELECT 1 FROM principals WHERE arn = ?`, arn).Scan(&one)
}

// PutPrincipalTags adds or overwrites tags of a principal, at most maxTags.
// An existing key in another case is the same key to IAM and is replaced
// in the same transaction, so a refused put (too many tags) keeps it.
func (s *Store) PutPrincipalTags(ctx context.Context, arn string, tags []kms.TagRecord, maxTags int) error {
	return wrap("tag principal "+arn, s.writeTx(ctx, func(tx *sql.Tx) error {
		if err := requirePrincipal(ctx, tx, arn); err != nil {
			return err
		}
		var existing []string
		rows, err := tx.QueryContext(ctx, `SELECT tag_key FROM principal_tags WHERE principal_arn = ?`, arn)
		if err != nil {
			return err
		}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				rows.Close()
				return err
			}
			existing = append(existing, k)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, t := range tags {
			for _, old := range existing {
				// EqualFold, not SQL lower(): keys may be non-ASCII letters.
				if old != t.Key && strings.EqualFold(old, t.Key) {
					if _, err := tx.ExecContext(ctx, `DELETE FROM principal_tags WHERE principal_arn = ? AND tag_key = ?`, arn, old); err != nil {
						return err
					}
				}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO principal_tags (principal_arn, tag_key, value)
				VALUES (?, ?, ?) ON CONFLICT (principal_arn, tag_key) DO UPDATE SET value = excluded.value`,
				arn, t.Key, t.Value); err != nil {
				return err
			}
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM principal_tags WHERE principal_arn = ?`, arn).Scan(&n); err != nil {
			return err
		}
		if n > maxTags {
			return fmt.Errorf("%w: %d tags, at most %d", kms.ErrStoreExhausted, n, maxTags)
		}
		return nil
	}))
}

// DeletePrincipalTags removes the named tags; absent names are ignored.
func (s *Store) DeletePrincipalTags(ctx context.Context, arn string, keys []string) error {
	return wrap("untag principal "+arn, s.writeTx(ctx, func(tx *sql.Tx) error {
		if err := requirePrincipal(ctx, tx, arn); err != nil {
			return err
		}
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, `DELETE FROM principal_tags WHERE principal_arn = ? AND tag_key = ?`, arn, k); err != nil {
				return err
			}
		}
		return nil
	}))
}

// PrincipalTags returns every tag of a principal in key order.
func (s *Store) PrincipalTags(ctx context.Context, arn string) ([]kms.TagRecord, error) {
	rows, err := s.reads.QueryContext(ctx, `SELECT tag_key, value FROM principal_tags
		WHERE principal_arn = ? ORDER BY tag_key`, arn)
	if err != nil {
		return nil, wrap("tags of principal "+arn, err)
	}
	defer rows.Close()
	var out []kms.TagRecord
	for rows.Next() {
		var t kms.TagRecord
		if err := rows.Scan(&t.Key, &t.Value); err != nil {
			return nil, wrap("tags of principal "+arn, err)
		}
		out = append(out, t)
	}
	return out, wrap("tags of principal "+arn, rows.Err())
}

// PutIdentityPolicy attaches or replaces a named policy, at most maxPolicies.
func (s *Store) PutIdentityPolicy(ctx context.Context, arn string, p kms.NamedPolicy, maxPolicies int) error {
	return wrap("put identity policy "+p.Name+" of "+arn, s.writeTx(ctx, func(tx *sql.Tx) error {
		if err := requirePrincipal(ctx, tx, arn); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO identity_policies (principal_arn, name, document, updated_at)
			VALUES (?, ?, ?, ?) ON CONFLICT (principal_arn, name)
			DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at`,
			arn, p.Name, p.Document, toMillis(time.Now())); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM identity_policies WHERE principal_arn = ?`, arn).Scan(&n); err != nil {
			return err
		}
		if n > maxPolicies {
			return fmt.Errorf("%w: %d policies, at most %d", kms.ErrStoreExhausted, n, maxPolicies)
		}
		return nil
	}))
}

// DeleteIdentityPolicy detaches a named policy.
func (s *Store) DeleteIdentityPolicy(ctx context.Context, arn, name string) error {
	return wrap("delete identity policy "+name+" of "+arn, s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM identity_policies WHERE principal_arn = ? AND name = ?`, arn, name)
		if err != nil {
			return err
		}
		return requireOneRow(res)
	}))
}

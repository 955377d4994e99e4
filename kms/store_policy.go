package kms

import (
	"context"
	"time"
)

// GrantRecord is a stored grant.
type GrantRecord struct {
	GrantID           string // 64 lower-case hex characters
	KeyID             string
	IssuingAccount    string // account of the key that issued it
	Name              string
	GranteePrincipal  string
	RetiringPrincipal string
	Operations        []string
	// Constraints: at most one of the two is set, as AWS allows.
	EncryptionContextEquals map[string]string
	EncryptionContextSubset map[string]string
	CreatedAt               time.Time
}

// PolicyStore keeps key policies and grants.
type PolicyStore interface {
	// PutKeyPolicy stores the key's policy document, replacing any.
	PutKeyPolicy(ctx context.Context, keyID, document string, now time.Time) error
	// GetKeyPolicy returns the key's policy document; ErrStoreNotFound if
	// the key has none.
	GetKeyPolicy(ctx context.Context, keyID string) (string, error)

	// CreateGrant stores a grant unless the key already has maxPerKey
	// grants (ErrStoreExhausted).
	CreateGrant(ctx context.Context, g GrantRecord, maxPerKey int) error
	// GetGrant returns one grant of a key.
	GetGrant(ctx context.Context, keyID, grantID string) (GrantRecord, error)
	// ListGrants returns up to limit grants of a key with id > after, in
	// grant id order (limit <= 0: all).
	ListGrants(ctx context.Context, keyID, after string, limit int) ([]GrantRecord, error)
	// ListRetirableGrants returns up to limit grants, of any key, whose
	// retiring principal is the given one, ordered by grant id > after.
	// Any of the given spellings of the principal matches (an account's
	// root ARN and its bare id name the same principal).
	ListRetirableGrants(ctx context.Context, retiringPrincipals []string, after string, limit int) ([]GrantRecord, error)
	// DeleteGrant removes a grant; ErrStoreNotFound if it does not exist.
	DeleteGrant(ctx context.Context, keyID, grantID string) error
}

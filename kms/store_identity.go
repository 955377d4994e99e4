package kms

import (
	"context"
	"time"
)

// NamedPolicy is an identity policy attached to a user or role, by name
// (IAM's inline policies: PutUserPolicy / PutRolePolicy).
type NamedPolicy struct {
	Name     string
	Document string
}

// Principal kinds as stored.
const (
	KindUser = "user"
	KindRole = "role"
)

// AccountRecord is a stored account.
type AccountRecord struct {
	ID        string // 12 digits
	Name      string // free text for humans
	CreatedAt time.Time
}

// PrincipalRecord is a stored IAM user or role.
type PrincipalRecord struct {
	ARN       string // arn:aws:iam::ACCOUNT:user/NAME or role/NAME
	AccountID string
	Kind      string // KindUser or KindRole
	Name      string
	// UniqueID is aws:userid: "AIDA" + 17 characters for users, "AROA" + 17
	// for roles. It never changes and is never reused.
	UniqueID string
	// TrustPolicy (roles only) says who may assume the role: a policy
	// document whose Allow statements name principals for sts:AssumeRole.
	TrustPolicy string
	// MaxSessionSeconds (roles only) caps DurationSeconds of AssumeRole.
	MaxSessionSeconds int
	CreatedAt         time.Time
}

// SessionRecord is a set of temporary credentials issued by AssumeRole.
type SessionRecord struct {
	AccessKeyID string // "ASIA" + 16 characters
	// SealedSecret is the secret access key sealed under an HSM-resident
	// key (see kms/secrets.go); the plaintext is never stored.
	SealedSecret []byte
	// TokenHash is the SHA-256 of the session token; the token itself is
	// given to the caller once and never stored.
	TokenHash   []byte
	AccountID   string
	RoleARN     string
	SessionName string
	// SourceARN is the principal that called AssumeRole, for audit.
	SourceARN  string
	Expiration time.Time
	CreatedAt  time.Time
}

// IdentityStore keeps accounts, users, roles, their tags and identity
// policies, access keys, temporary sessions and the secret-sealing keys.
type IdentityStore interface {
	// IdentityPolicies returns the identity policies attached to a user or role ARN (empty slice if none).
	IdentityPolicies(ctx context.Context, principalARN string) ([]NamedPolicy, error)

	// CreateAccount adds an account; ErrStoreAlreadyExists if the id exists.
	CreateAccount(ctx context.Context, a AccountRecord) error
	// GetAccount returns an account by id.
	GetAccount(ctx context.Context, id string) (AccountRecord, error)
	// ListAccounts returns up to limit accounts with id > after, in id
	// order (limit <= 0: all).
	ListAccounts(ctx context.Context, after string, limit int) ([]AccountRecord, error)

	// CreatePrincipal adds a user or role. ErrStoreNotFound if the account
	// does not exist; ErrStoreAlreadyExists if the account has a principal
	// of that kind with the same name (compared case-insensitively, as IAM
	// does) or the ARN or unique id is taken.
	CreatePrincipal(ctx context.Context, p PrincipalRecord) error
	// GetPrincipal returns a user or role by ARN.
	GetPrincipal(ctx context.Context, arn string) (PrincipalRecord, error)
	// ListPrincipals returns up to limit principals of one kind in an
	// account with name > after, in name order (limit <= 0: all).
	ListPrincipals(ctx context.Context, accountID, kind, after string, limit int) ([]PrincipalRecord, error)
	// DeletePrincipal removes a user or role together with its tags,
	// identity policies, access keys and sessions, in one transaction.
	// ErrStoreNotFound if it does not exist.
	DeletePrincipal(ctx context.Context, arn string) error

	// PutPrincipalTags adds or overwrites tags of a principal, replacing a
	// key it has in another case (IAM keys ignore case); if it would then
	// have more than maxTags, nothing changes and ErrStoreExhausted.
	PutPrincipalTags(ctx context.Context, arn string, tags []TagRecord, maxTags int) error
	// DeletePrincipalTags removes the named tags; absent names are ignored.
	DeletePrincipalTags(ctx context.Context, arn string, keys []string) error
	// PrincipalTags returns every tag of a principal, in key order.
	PrincipalTags(ctx context.Context, arn string) ([]TagRecord, error)

	// PutIdentityPolicy attaches (or replaces) a named policy; if the
	// principal would then have more than maxPolicies, nothing changes and
	// ErrStoreExhausted. ErrStoreNotFound if the principal does not exist.
	PutIdentityPolicy(ctx context.Context, arn string, p NamedPolicy, maxPolicies int) error
	// DeleteIdentityPolicy detaches a named policy; ErrStoreNotFound if the
	// principal has no policy of that name.
	DeleteIdentityPolicy(ctx context.Context, arn, name string) error

	// ListAccessKeys returns the access keys of a principal in id order,
	// without secrets (neither plain nor sealed).
	ListAccessKeys(ctx context.Context, principalARN string) ([]AccessKey, error)
	// SetAccessKeyActive activates or deactivates an access key.
	SetAccessKeyActive(ctx context.Context, id string, active bool) error
	// DeleteAccessKey removes an access key; ErrStoreNotFound if absent.
	DeleteAccessKey(ctx context.Context, id string) error
	// PlainAccessKeyIDs returns the ids of access keys whose secret is still
	// stored in plain text (rows written before secrets were sealed).
	PlainAccessKeyIDs(ctx context.Context) ([]string, error)
	// SealAccessKeySecret stores the sealed secret of an access key and
	// clears its plain-text secret, in one statement.
	SealAccessKeySecret(ctx context.Context, id string, sealed []byte) error

	// PutSession stores temporary credentials; ErrStoreAlreadyExists if the
	// access key id exists.
	PutSession(ctx context.Context, r SessionRecord) error
	// GetSession returns temporary credentials by access key id.
	GetSession(ctx context.Context, accessKeyID string) (SessionRecord, error)
	// DeleteSessionsExpiredBefore removes sessions that expired before t and
	// returns how many.
	DeleteSessionsExpiredBefore(ctx context.Context, t time.Time) (int, error)

	// ScrubFreePages rewrites the database so that overwritten values (the
	// plain-text secrets SealAccessKeySecret cleared) leave no copy in free
	// pages or the write-ahead log. Slow on a big file: call it rarely.
	ScrubFreePages(ctx context.Context) error
}

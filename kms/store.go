package kms

import (
	"context"
	"errors"
	"time"
)

// KeyState is the lifecycle state of a key as stored. The AWS states are sent
// to clients as is; StateCreating and StateDeleted are internal: a key being
// created is invisible, and a deleted key is a tombstone that answers
// NotFoundException.
type KeyState string

// Key states.
const (
	StateCreating        KeyState = "Creating"
	StateEnabled         KeyState = "Enabled"
	StateDisabled        KeyState = "Disabled"
	StatePendingDeletion KeyState = "PendingDeletion"
	StatePendingImport   KeyState = "PendingImport"
	StateDeleted         KeyState = "Deleted"
)

// VersionState is the state of one version of a key's material, that is of
// one token object.
type VersionState string

// Version states. The sequence Creating -> Active -> Destroying -> Destroyed
// is what lets the start-up reconciler settle a crash between the database
// and the HSM, which share no transaction.
const (
	// VersionCreating: the intent is recorded; the token object may or may
	// not exist yet.
	VersionCreating VersionState = "Creating"
	// VersionActive: the token object exists and the version is usable.
	VersionActive VersionState = "Active"
	// VersionDestroying: the version is being destroyed; the token object may
	// or may not still exist.
	VersionDestroying VersionState = "Destroying"
	// VersionDestroyed: the token object is gone; the row is a tombstone.
	VersionDestroyed VersionState = "Destroyed"
)

// Store errors. Implementations return (possibly wrapped) these values.
var (
	ErrStoreNotFound      = errors.New("store: not found")
	ErrStoreAlreadyExists = errors.New("store: already exists")
	// ErrStoreExhausted: reserving invocations would pass the version's bound.
	ErrStoreExhausted = errors.New("store: invocation bound reached")
	// ErrStoreConflict: a conditional update lost a race (for example the
	// current version changed underneath).
	ErrStoreConflict = errors.New("store: conflict")
)

// KeyRecord is the stored metadata of a KMS key.
type KeyRecord struct {
	ID                  string // lower-case UUID
	AccountID           string // 12 digits
	Description         string
	KeyUsage            string
	KeySpec             string
	Origin              string
	KeyManager          string
	State               KeyState
	CreatedAt           time.Time
	DeletionDate        time.Time // zero unless PendingDeletion
	PendingWindowInDays int       // set with DeletionDate
	CurrentVersion      int       // version used for new encryptions; 0 if none
	// InitialPolicy is read by CreateKey only: the key policy to store in
	// the same transaction as the key, so a key never exists, even after a
	// crash, with a policy other than the one it was created with.
	// GetKey leaves it empty.
	InitialPolicy string
}

// KeyVersion is one version of a key's material: one token object whose
// CKA_ID is BackingID.
type KeyVersion struct {
	KeyID     string
	Version   int // 1, 2, ...
	BackingID []byte
	State     VersionState
	CreatedAt time.Time
	// Reserved is how many AES-GCM invocations have been reserved for this
	// version so far. It only grows; it bounds the number of encryptions ever
	// made with the version's object.
	Reserved uint64
}

// Reservation is a block of invocations reserved for a key version:
// [Start, Start+n) of the version's counter.
type Reservation struct {
	Version KeyVersion
	Start   uint64
}

// AliasRecord is a stored alias. Name includes the "alias/" prefix.
type AliasRecord struct {
	AccountID string
	Name      string
	KeyID     string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// TagRecord is one tag of a key.
type TagRecord struct {
	Key   string
	Value string
}

// AccessKey is a credential that signs requests with SigV4.
type AccessKey struct {
	ID     string
	Secret string
	// SealedSecret is Secret sealed under the HSM-resident sealing key; the
	// store keeps only this (see store_identity.go).
	SealedSecret []byte
	AccountID    string
	PrincipalARN string
	Active       bool
	CreatedAt    time.Time

	// Set by Service.LookupAccessKey, never stored: the owner as policies
	// see it and, for temporary credentials, the SHA-256 of the session
	// token that must accompany the key and when it expires.
	Principal        Principal
	SessionTokenHash []byte
	Expiration       time.Time
}

// Store holds the service's metadata. Implementations must be safe for
// concurrent use and must make every method atomic. Lookups of absent rows
// return ErrStoreNotFound.
type Store interface {
	RotationStore
	ImportStore
	IdentityStore
	PolicyStore
	VersionCASStore // store_cas.go
	IntentRollbackStore
	// CreateKey records a new key and its first version in one transaction.
	// The key is normally in StateCreating and the version in
	// VersionCreating: the intent, written before the token object is made.
	// ErrStoreAlreadyExists if the key id or backing id is taken.
	CreateKey(ctx context.Context, k KeyRecord, v KeyVersion) error

	// GetKey returns a key by id, tombstones included (State StateDeleted).
	GetKey(ctx context.Context, keyID string) (KeyRecord, error)

	// UpdateKey reads the key, calls fn on it and writes back what fn left,
	// all in one transaction. If fn returns an error nothing is written and
	// that error is returned as is. The ID and AccountID cannot change. fn
	// runs while the store's write lock is held: it must not call the Store
	// or do slow work such as HSM calls.
	UpdateKey(ctx context.Context, keyID string, fn func(*KeyRecord) error) (KeyRecord, error)

	// UpdateKeyWithMaterial is UpdateKey for changes that depend on
	// whether the key has material to use: fn also learns, in the same
	// transaction, whether the key's current version exists and is Active.
	UpdateKeyWithMaterial(ctx context.Context, keyID string, fn func(k *KeyRecord, hasMaterial bool) error) (KeyRecord, error)

	// ListKeys returns up to limit keys of the account with id > after, in id
	// order, leaving out keys in StateCreating and StateDeleted.
	ListKeys(ctx context.Context, accountID, after string, limit int) ([]KeyRecord, error)
	// CountAccountKeys counts an account's keys that are not deleted
	// (tombstones), for the keys-per-account quota.
	CountAccountKeys(ctx context.Context, accountID string) (int, error)

	// KeysByState returns every key in the given state (all accounts).
	KeysByState(ctx context.Context, state KeyState) ([]KeyRecord, error)

	// AddVersion records a new version of a key (normally in VersionCreating).
	// ErrStoreAlreadyExists if that version number or backing id exists.
	AddVersion(ctx context.Context, v KeyVersion) error

	// GetVersion returns one version of a key.
	GetVersion(ctx context.Context, keyID string, version int) (KeyVersion, error)

	// ListVersions returns all versions of a key in version order.
	ListVersions(ctx context.Context, keyID string) ([]KeyVersion, error)

	// VersionsByState returns every version in the given state (all keys).
	VersionsByState(ctx context.Context, state VersionState) ([]KeyVersion, error)

	// SetVersionState changes the state of one version.
	SetVersionState(ctx context.Context, keyID string, version int, state VersionState) error

	// ActivateVersion marks a version Active and makes it the key's current
	// version, in one transaction, if the key's current version is still
	// prevCurrent, the key is not Deleted and the version is still Creating;
	// otherwise ErrStoreConflict and nothing changes.
	ActivateVersion(ctx context.Context, keyID string, version, prevCurrent int) error

	// ReserveInvocations atomically adds n to the version's Reserved counter
	// if the result stays <= bound, and returns the counter's value before
	// the addition. If it would pass the bound, nothing changes and
	// ErrStoreExhausted is returned. It does not look at the version's state:
	// callers use only Active versions.
	ReserveInvocations(ctx context.Context, keyID string, version int, n, bound uint64) (uint64, error)

	// ReserveForCurrentVersions reserves n invocations, in one
	// transaction, for the current version of every Enabled or Disabled
	// key whose Active current version has room below bound, and returns
	// each version (as before the addition) with the counter's value before
	// the addition.
	ReserveForCurrentVersions(ctx context.Context, n, bound uint64) ([]Reservation, error)

	// AllBackingIDs returns every backing id the metadata references, in any
	// version state except VersionDestroyed, keyed by the id's hex encoding.
	AllBackingIDs(ctx context.Context) (map[string]KeyVersion, error)

	// CreateAlias adds an alias; ErrStoreAlreadyExists if the account has it.
	CreateAlias(ctx context.Context, a AliasRecord) error
	// GetAlias returns an alias of the account by name.
	GetAlias(ctx context.Context, accountID, name string) (AliasRecord, error)
	// UpdateAlias points an existing alias at another key.
	UpdateAlias(ctx context.Context, accountID, name, keyID string, now time.Time) error
	// DeleteAlias removes an alias.
	DeleteAlias(ctx context.Context, accountID, name string) error
	// ListAliases returns up to limit aliases of the account with name >
	// after, in name order; if keyID is not empty only that key's aliases.
	ListAliases(ctx context.Context, accountID, keyID, after string, limit int) ([]AliasRecord, error)
	// CountAliases returns how many aliases point at the key.
	CountAliases(ctx context.Context, keyID string) (int, error)
	// DeleteAliasesForKey removes every alias that points at the key.
	DeleteAliasesForKey(ctx context.Context, keyID string) error

	// PutTags adds or overwrites tags of a key in one transaction; if the key
	// would then have more than maxTags tags, nothing changes and
	// ErrStoreExhausted is returned.
	PutTags(ctx context.Context, keyID string, tags []TagRecord, maxTags int) error
	// DeleteTags removes the named tags; absent names are ignored.
	DeleteTags(ctx context.Context, keyID string, keys []string) error
	// ListTags returns up to limit tags of a key with key > after, in key order.
	ListTags(ctx context.Context, keyID, after string, limit int) ([]TagRecord, error)

	// PutAccessKey stores an access key; ErrStoreAlreadyExists if the id exists.
	PutAccessKey(ctx context.Context, k AccessKey) error
	// GetAccessKey returns an access key by id.
	GetAccessKey(ctx context.Context, id string) (AccessKey, error)

	// GetSetting and PutSetting keep small service-wide values (for example
	// the default account id chosen at first start).
	GetSetting(ctx context.Context, name string) (string, error)
	PutSetting(ctx context.Context, name, value string) error

	// Close closes the store.
	Close() error
}

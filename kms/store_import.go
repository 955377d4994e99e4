package kms

import (
	"context"
	"time"
)

// ImportRecord is the import state of an EXTERNAL key.
type ImportRecord struct {
	KeyID string
	// ExpirationModel and ValidTo describe the material now in the key
	// ("" while none has ever been imported).
	ExpirationModel string
	ValidTo         time.Time
	// CheckValue is the AES-CMAC of hsm.CheckValueMessage under the first
	// material imported; later imports must match it. Nil before that.
	CheckValue []byte
	// PendingModel and PendingValidTo are what the import in progress asked
	// for, so that the reconciler can finish it after a crash.
	PendingModel   string
	PendingValidTo time.Time
}

// WrappingKeyState is the life of a wrapping key pair in the token.
type WrappingKeyState string

// Wrapping key states, with the same intent rule as key versions.
const (
	WrappingCreating   WrappingKeyState = "Creating"
	WrappingActive     WrappingKeyState = "Active"
	WrappingDestroying WrappingKeyState = "Destroying"
	WrappingDestroyed  WrappingKeyState = "Destroyed"
)

// WrappingKey is a wrapping key pair made by GetParametersForImport and the
// import token that goes with it.
type WrappingKey struct {
	BackingID []byte
	KeyID     string
	Algorithm string // AWS WrappingAlgorithm
	Spec      string // AWS WrappingKeySpec
	// TokenHash is SHA-256 of the secret half of the import token; the
	// secret itself is only ever in the client's hands.
	TokenHash []byte
	State     WrappingKeyState
	CreatedAt time.Time
	ExpiresAt time.Time
}

// ImportStore keeps imported-material state.
type ImportStore interface {
	// CreateExternalKey records a new EXTERNAL key (normally PendingImport,
	// no version) and its empty import record in one transaction.
	CreateExternalKey(ctx context.Context, k KeyRecord) error
	// GetImport returns a key's import record.
	GetImport(ctx context.Context, keyID string) (ImportRecord, error)
	// ImportsExpiring returns the import records with ExpirationModel
	// KEY_MATERIAL_EXPIRES and ValidTo <= now whose key has an Active
	// version 1.
	ImportsExpiring(ctx context.Context, now time.Time) ([]ImportRecord, error)

	// BeginImport records the intent to import material as version 1 of the
	// key, backed by backingID and created at createdAt: a new version row,
	// or the existing Destroyed row (keeping its invocation counter, because
	// re-imported material is the same key) back in VersionCreating with
	// that new backing id and time; and the pending expiration. It returns
	// the version. ErrStoreAlreadyExists if version 1 is Active (material
	// present); ErrStoreConflict if it is Creating or Destroying (another
	// import or a deletion in progress).
	//
	// Every attempt gets a backing id of its own, never the one of earlier
	// material: a settler or another kmsd that saw the old object's destroy
	// unfinished may still destroy that id, and must not hit the new object.
	// The fresh createdAt lets settlers see that the attempt is young.
	BeginImport(ctx context.Context, keyID string, backingID []byte, createdAt time.Time, model string, validTo time.Time) (KeyVersion, error)
	// CompleteImport, in one transaction, if version 1 is still the attempt
	// backed by backingID and Creating (or already Active: done twice):
	// version 1 Active and current, the key Enabled if it was
	// PendingImport, the pending expiration made current, and the check
	// value recorded if there was none. ErrStoreConflict, and nothing
	// changes, if a different check value is recorded or version 1 is
	// another attempt or was settled otherwise.
	CompleteImport(ctx context.Context, keyID string, backingID, checkValue []byte) error
	// SetImportExpiration changes the expiration of present material, if
	// version 1 is still Active with the given backing id (the material the
	// caller compared); else ErrStoreConflict: the material was deleted (by
	// the expiry pass or DeleteImportedKeyMaterial, here or in another
	// kmsd) or replaced meanwhile.
	SetImportExpiration(ctx context.Context, keyID string, backingID []byte, model string, validTo time.Time) error
	// BeginDeleteMaterial, in one transaction: version 1 Destroying and the
	// key PendingImport (a key PendingDeletion keeps its state), if version
	// 1 is Active and, when expiredBy is not zero, the material expires
	// (KEY_MATERIAL_EXPIRES) with a ValidTo at or before expiredBy; else
	// ErrStoreNotFound. The expiry condition is checked in the transaction:
	// the expiry pass works from a list that a re-import (here or in
	// another kmsd) may have made stale.
	BeginDeleteMaterial(ctx context.Context, keyID string, expiredBy time.Time) (KeyVersion, error)

	// PutWrappingKey records a wrapping key (normally WrappingCreating).
	PutWrappingKey(ctx context.Context, w WrappingKey) error
	// GetWrappingKey returns a wrapping key by backing id.
	GetWrappingKey(ctx context.Context, backingID []byte) (WrappingKey, error)
	// SetWrappingKeyState changes a wrapping key's state.
	SetWrappingKeyState(ctx context.Context, backingID []byte, state WrappingKeyState) error
	// LiveWrappingKeys returns every wrapping key not yet Destroyed.
	LiveWrappingKeys(ctx context.Context) ([]WrappingKey, error)
}

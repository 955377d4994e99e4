package kms

import (
	"context"
	"time"
)

// IntentRollbackStore rolls back a creation intent whose token object was
// never made (Reconcile), giving back what the intent's transaction took.
type IntentRollbackStore interface {
	// TombstoneIntent changes a version from VersionCreating to
	// VersionDestroyed, only if it is still Creating (ErrStoreConflict
	// otherwise, ErrStoreNotFound if there is no such version). If the
	// version is an AUTOMATIC rotation whose scheduler claim moved the key's
	// next-rotation date to its RotatedAt plus the period (see
	// RotationIntent.NextDue), and the schedule still says so, the same
	// transaction puts the next-rotation date back to RotatedAt, so the
	// rotation that was cut is due again; rescheduled reports it. A
	// schedule disabled or restarted since is left alone; a period changed
	// since is kept.
	TombstoneIntent(ctx context.Context, keyID string, version int) (rescheduled bool, err error)
	// TombstoneIntentRetryAt is TombstoneIntent for a scheduled rotation
	// whose token object could not be made (rotationretry.go): the version
	// goes to state to (VersionDestroyed, or VersionDestroying when what
	// the failed creation may have left in the token could not be destroyed
	// yet: Reconcile finishes it), and the same claim, recognised the same
	// way, makes the key due again at retryAt (no earlier than RotatedAt,
	// no later than the date the claim set).
	TombstoneIntentRetryAt(ctx context.Context, keyID string, version int, to VersionState, retryAt time.Time) (rescheduled bool, err error)
}

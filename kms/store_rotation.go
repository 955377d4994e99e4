package kms

import (
	"context"
	"time"
)

// RotationType says why a key version was made (ListKeyRotations).
type RotationType string

// Rotation types, as AWS names them.
const (
	RotationAutomatic RotationType = "AUTOMATIC"
	RotationOnDemand  RotationType = "ON_DEMAND"
)

// RotationSchedule is a key's automatic-rotation setting.
type RotationSchedule struct {
	KeyID      string
	Enabled    bool
	PeriodDays int
	// NextRotation is when the scheduler rotates the key next; it is also
	// the claim a scheduler must match to rotate (see RotationIntent).
	NextRotation time.Time
}

// RotationRecord is one rotation: the version it made and how.
type RotationRecord struct {
	KeyID        string
	Version      int
	Type         RotationType
	RotatedAt    time.Time
	BackingID    []byte
	VersionState VersionState
}

// RotationIntent asks RecordRotationIntent to record a new version.
type RotationIntent struct {
	KeyID     string
	BackingID []byte
	Type      RotationType
	At        time.Time
	// ClaimDue, if not zero, makes the intent a scheduler's claim: it is
	// recorded only if the key's rotation is enabled and its stored
	// NextRotation still equals ClaimDue, which then becomes NextDue. Of
	// several schedulers (processes) racing for one due date exactly one
	// wins; the others get ErrStoreConflict. NextDue is At plus the key's
	// period: that is how TombstoneIntent (store_rollback.go) recognises the
	// claim of a rotation cut by a crash and makes it due again.
	ClaimDue, NextDue time.Time
	// MaxOnDemand, if > 0, refuses (ErrStoreExhausted) an intent when the
	// key already has that many ON_DEMAND rotations.
	MaxOnDemand int
}

// RotationStore keeps rotation schedules and history.
type RotationStore interface {
	// GetRotationSchedule returns a key's schedule; a key never configured
	// has a disabled zero schedule (no error).
	GetRotationSchedule(ctx context.Context, keyID string) (RotationSchedule, error)
	// PutRotationSchedule stores a key's schedule.
	PutRotationSchedule(ctx context.Context, s RotationSchedule) error
	// DueRotations returns up to limit enabled schedules with NextRotation
	// <= now, oldest first.
	DueRotations(ctx context.Context, now time.Time, limit int) ([]RotationSchedule, error)
	// RecordRotationIntent records, in one transaction, the key's next
	// version (number max+1, state VersionCreating, the given backing id)
	// and its rotation record, subject to the intent's claim and limit.
	// With MaxOnDemand > 0, ErrStoreConflict also when another version of
	// the key is Creating (a rotation in progress, AWS's ConflictException).
	RecordRotationIntent(ctx context.Context, in RotationIntent) (KeyVersion, error)
	// ListRotations returns the key's rotations whose version is in state,
	// with version > afterVersion, in version order, at most limit.
	ListRotations(ctx context.Context, keyID string, state VersionState, afterVersion, limit int) ([]RotationRecord, error)
	// CountRotations returns how many rotations of the type the key has
	// whose version is not Destroyed.
	CountRotations(ctx context.Context, keyID string, typ RotationType) (int, error)
}

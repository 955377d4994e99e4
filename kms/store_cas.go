package kms

import "context"

// VersionCASStore makes version state transitions compare-and-set, for
// code that may race a live service on the same database (Reconcile at the
// start-up of a second kmsd).
type VersionCASStore interface {
	// SetVersionStateIf changes the state of one version from `from` to
	// `to`, only if it is still `from`; ErrStoreConflict otherwise,
	// ErrStoreNotFound if there is no such version.
	SetVersionStateIf(ctx context.Context, keyID string, version int, from, to VersionState) error
	// SetVersionStateIfID is SetVersionStateIf that also requires the
	// version to be still backed by backingID. Version 1 of an imported key
	// gets a new backing id at every import attempt (import.go), so its
	// state alone does not say which attempt a settler saw.
	SetVersionStateIfID(ctx context.Context, keyID string, version int, backingID []byte, from, to VersionState) error
}

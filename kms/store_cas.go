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
}

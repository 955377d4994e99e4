package kms

import (
	"context"
	"errors"

	"hsmkms/hsm"
)

// abandonVersion settles a new version whose token object could not be
// made. A failed creation may still have left an object in the token (the
// module made it, then the session failed), so the version is destroyed in
// the token like abandonCreate does, not only marked Destroyed: a leftover
// object with that id would be an orphan, and a duplicate if the id were
// ever reused. discardIntent (discard.go) claims the version first, so a
// settler that found that object and committed the version keeps it; if
// the destroy fails the version stays Destroying and the settlement pass
// finishes it.
func (s *Service) abandonVersion(ctx context.Context, v KeyVersion) {
	s.discardIntent(ctx, v)
}

// destroyLeftover is abandonVersion's first step, shared with
// abandonClaim (rotationretry.go): it destroys what a failed creation may
// have left in the token. On failure the caller leaves the version
// Destroying, for Reconcile to finish.
func (s *Service) destroyLeftover(ctx context.Context, v KeyVersion) error {
	if err := s.device.Destroy(ctx, v.BackingID); err != nil && !errors.Is(err, hsm.ErrKeyNotFound) {
		s.log.WarnContext(ctx, "abandoned version: destroying token object failed; the reconciler will retry", "key_id", v.KeyID, "version", v.Version, "err", err)
		return err
	}
	return nil
}

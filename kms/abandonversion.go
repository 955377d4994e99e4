package kms

import "context"

// abandonVersion settles a new version whose token object could not be
// made. A failed creation may still have left an object in the token (the
// module made it, then the session failed), so the version is destroyed in
// the token like abandonCreate does, not only marked Destroyed: a leftover
// object with that id would be an orphan, and a duplicate if the id were
// ever reused. discardIntent (discard.go) claims the version first, so a
// settler that found that object and committed the version keeps it
// (the outcome is then discardCommitted); if the destroy fails the version
// stays Destroying and the settlement pass finishes it.
func (s *Service) abandonVersion(ctx context.Context, v KeyVersion) discardOutcome {
	return s.discard(ctx, v)
}

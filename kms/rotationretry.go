package kms

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// rotationRetryBackoff is how long after a failed scheduled rotation the key
// is due again. The claim (RecordRotationIntent) moved the key's
// next-rotation date a whole period ahead; without giving it back, an HSM
// fault at that minute would skip the rotation for a period (a year by
// default). Retrying on the scheduler's next pass (every
// rotation_check_interval, 1m by default) would, through a long outage, add
// a tombstoned version row per due key per minute; a fixed hour bounds that
// to 24 a day per key while delaying a rotation of a 90..2560-day period by
// at most an hour per fault. A growing back-off would need a per-key
// failure count the schema does not keep, for little gain at that rate.
const rotationRetryBackoff = time.Hour

// abandonClaim settles a scheduled rotation (one whose intent was the
// scheduler's claim) whose token object could not be made, and returns
// cause with what happens next, which the scheduler logs.
//
// As abandonVersion, it first destroys whatever the failed creation may
// have left in the token. Then, in one transaction, the version is
// tombstoned (or left Destroying if that destroy failed, for Reconcile to
// finish) and, only while the schedule is still the one the claim left,
// the key is due again at min(now + rotationRetryBackoff, the date the
// claim set) (TombstoneIntentRetryAt). The schedule is given back even
// when the destroy failed: in an HSM outage, the case the retry is for,
// the destroy fails too. If that transaction fails the version stays
// Creating, and the settlement pass (settle.go) settles it once it is
// CreateIntentGrace old and makes the key due at once (TombstoneIntent).
func (s *Service) abandonClaim(ctx context.Context, v KeyVersion, cause error) error {
	ctx = context.WithoutCancel(ctx)
	to, left := VersionDestroyed, ""
	if err := s.destroyLeftover(ctx, v); err != nil {
		to, left = VersionDestroying, fmt.Sprintf("; destroying the new version's token object failed too (%v): version %d is left Destroying for the reconciler", err, v.Version)
	}
	retry := s.now().UTC().Add(rotationRetryBackoff).Truncate(time.Millisecond)
	when := "retrying at " + retry.Format(time.RFC3339)
	if errors.Is(cause, context.Canceled) || errors.Is(cause, context.DeadlineExceeded) {
		// Cut by a shutdown, not an HSM fault: due again at once (the
		// intent's own time), as after a crash at this point.
		retry, when = time.Time{}, "due again at once"
	}
	rescheduled, err := s.store.TombstoneIntentRetryAt(ctx, v.KeyID, v.Version, to, retry)
	switch {
	case err != nil:
		// Not %w: an ErrStoreConflict here would read as another
		// scheduler's claim to rotateDue and hide the failure.
		return fmt.Errorf("%w%s; settling version %d failed (%v): the settlement pass settles it once it is %v old and makes the key due again",
			cause, left, v.Version, err, CreateIntentGrace)
	case !rescheduled:
		// Disabled or enabled afresh meanwhile, or the key rotated at that
		// instant: the newer state stands (as for TombstoneIntent).
		return fmt.Errorf("%w%s; not retried: the key's rotation schedule is no longer the one this attempt claimed", cause, left)
	}
	return fmt.Errorf("%w%s; %s", cause, left, when)
}

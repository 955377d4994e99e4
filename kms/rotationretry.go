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
// The creation may have taken longer than CreateIntentGrace (an HSM
// recovering its session), so a settlement pass, here or in another kmsd,
// may have settled the version meanwhile: committed it if it found the
// object (the failure was a lost reply), or tombstoned it. So the version
// is claimed before anything is destroyed: in one transaction it goes
// Creating -> Destroying, compare-and-set, and, only while the schedule is
// still the one the claim left, the key is due again at
// min(now + rotationRetryBackoff, the date the claim set)
// (TombstoneIntentRetryAt). Then whatever the failed creation left in the
// token is destroyed and the version tombstoned (tombstoneDestroying); if
// that destroy fails the version stays Destroying for the settlement pass.
// The schedule is given back even then: in an HSM outage, the case the
// retry is for, the destroy fails too.
//
// If the claim finds the version committed by a settler, nothing is
// destroyed and committed is true: the rotation happened. If a settler
// tombstoned it, that settler made the key due again (TombstoneIntent). If
// the transaction fails the version stays Creating, and the settlement pass
// settles it once it is CreateIntentGrace old.
func (s *Service) abandonClaim(ctx context.Context, v KeyVersion, cause error) (committed bool, err error) {
	ctx = context.WithoutCancel(ctx)
	retry := s.now().UTC().Add(rotationRetryBackoff).Truncate(time.Millisecond)
	when := "retrying at " + retry.Format(time.RFC3339)
	if errors.Is(cause, context.Canceled) || errors.Is(cause, context.DeadlineExceeded) {
		// Cut by a shutdown, not an HSM fault: due again at once (the
		// intent's own time), as after a crash at this point.
		retry, when = time.Time{}, "due again at once"
	}
	rescheduled, err := s.store.TombstoneIntentRetryAt(ctx, v.KeyID, v.Version, VersionDestroying, retry)
	if err != nil {
		switch s.afterLostClaim(ctx, v, err) { // discard.go
		case discardCommitted:
			s.log.WarnContext(ctx, "scheduled rotation: the HSM reported a failure, but a settlement pass found the new version's token object and committed it; the rotation stands",
				"key_id", v.KeyID, "version", v.Version, "err", cause)
			return true, nil
		case discardSettled:
			return false, fmt.Errorf("%w; version %d was settled meanwhile by a settlement pass, which made the key due again", cause, v.Version)
		}
		// Not %w: an ErrStoreConflict here would read as another
		// scheduler's claim to rotateDue and hide the failure.
		return false, fmt.Errorf("%w; settling version %d failed (%v): the settlement pass settles it once it is %v old and makes the key due again",
			cause, v.Version, err, CreateIntentGrace)
	}
	left := ""
	if _, err := s.tombstoneDestroying(ctx, v); err != nil { // settle.go
		left = fmt.Sprintf("; destroying the new version's token object failed too (%v): version %d is left Destroying for the reconciler", err, v.Version)
	}
	if !rescheduled {
		// Disabled or enabled afresh meanwhile, or the key rotated at that
		// instant: the newer state stands (as for TombstoneIntent).
		return false, fmt.Errorf("%w%s; not retried: the key's rotation schedule is no longer the one this attempt claimed", cause, left)
	}
	return false, fmt.Errorf("%w%s; %s", cause, left, when)
}

package kms

// Settlement of creations and destroys left unfinished, while kmsd runs.
//
// Reconcile (lifecycle.go) settles what a crash left, once, at start-up.
// Some leftovers appear without a crash, or outlive that one pass:
//
//   - an intent younger than CreateIntentGrace at start-up (a restart
//     within two minutes of a crash) is left for later, since it may be in
//     flight in another kmsd;
//   - a failed scheduled rotation whose settling transaction failed stays
//     Creating (abandonClaim, rotationretry.go);
//   - a version whose token object could not be destroyed during an HSM
//     fault stays Destroying (discardIntent, abandonClaim, the deletion
//     worker, DeleteImportedKeyMaterial).
//
// Until settled, a Creating version makes RotateKeyOnDemand answer
// ConflictException, and a cut scheduled rotation is not done; a cut import
// or a Destroying imported version makes ImportKeyMaterial answer
// KMSInvalidStateException (ImportStore.BeginImport). So
// RunRotationScheduler runs SettleUnfinished on every pass, with the same
// per-version steps as Reconcile (settleIntent, settleStuckKey,
// tombstoneDestroying below: one copy, both call it). It differs from
// Reconcile in three ways: it asks the token about one object at a time
// (hsm.PresenceDevice) instead of listing it, which is a start-up cost; it
// skips a key whose in-process lock is held and re-reads the version under
// that lock, so it never settles a creation, rotation or import this
// process has in flight (their creators hold the lock from intent to
// commit, however long the HSM takes, and settle their own versions), and
// never waits behind one hung in the HSM, which would stop the scheduler's
// rotations and import expiry too; and an error is logged and retried on
// the next pass instead of stopping kmsd.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"hsmkms/hsm"
)

// SettleUnfinished is the settlement pass of a running kmsd
// (RunRotationScheduler calls it before rotating, so that a cut scheduled
// rotation made due again here is rotated in the same pass). As Reconcile:
//
//   - a version in Creating older than CreateIntentGrace is committed if
//     its token object exists, else tombstoned (TombstoneIntent: a cut
//     scheduled rotation is due again); younger ones are left alone;
//   - a version in Destroying has its object destroyed (one already gone
//     is fine) and is tombstoned;
//   - a key still in Creating past the grace is settled from its version.
//
// Every transition is a compare-and-set, so several kmsd processes, the
// deletion worker and a start-up Reconcile elsewhere may settle the same
// thing at once: one of them does it, the others find it done. An import
// attempt in Creating is committed only if its object also has the key's
// check value (settleImportIntent, import.go). When there is work and the
// HSM does not answer, the pass does nothing and says so; it is tried again
// next time.
// The report counts what this call settled; MissingObjects and
// OrphanObjects, which need a token scan, stay empty.
func (s *Service) SettleUnfinished(ctx context.Context) (ReconcileReport, error) {
	var rep ReconcileReport
	creating, err := s.store.VersionsByState(ctx, VersionCreating)
	if err != nil {
		return rep, err
	}
	creating = slices.DeleteFunc(creating, func(v KeyVersion) bool { return s.youngIntent(v.CreatedAt) })
	destroying, err := s.store.VersionsByState(ctx, VersionDestroying)
	if err != nil {
		return rep, err
	}
	if len(creating) > 0 || len(destroying) > 0 {
		// An HSM that is down would fail every step below; one probe
		// instead (it also recovers the login, as /readyz does).
		if err := s.device.Health(ctx); err != nil {
			return rep, fmt.Errorf("HSM unavailable; settlement skipped until the next pass: %w", err)
		}
	}

	var errs []error
	// Keys one of whose intents could not be settled, or is in flight in
	// this process: their key record is left alone too, since
	// settleStuckKey would tombstone a key whose first version's object may
	// exist.
	unsettled := map[string]bool{}
	fail := func(v KeyVersion, err error) bool {
		unsettled[v.KeyID] = true
		if errors.Is(err, errInFlight) {
			return false
		}
		errs = append(errs, fmt.Errorf("%s: %w", versionKey(v.KeyID, v.Version), err))
		return deviceDown(ctx, err)
	}
	for _, v := range creating {
		if err := s.settleIntentNow(ctx, v, &rep); err != nil && fail(v, err) {
			return rep, s.settleFailed(ctx, rep, errs)
		}
	}
	for _, v := range destroying {
		if err := s.tombstoneDestroyingNow(ctx, v, &rep); err != nil && fail(v, err) {
			return rep, s.settleFailed(ctx, rep, errs)
		}
	}
	stuck, err := s.store.KeysByState(ctx, StateCreating)
	if err != nil {
		errs = append(errs, err)
	}
	for _, k := range stuck {
		if unsettled[k.ID] {
			continue
		}
		if err := s.settleStuckKeyNow(ctx, k, &rep); err != nil && !errors.Is(err, errInFlight) {
			errs = append(errs, fmt.Errorf("key %s: %w", k.ID, err))
		}
	}
	if rep.CompletedCreates+rep.AbandonedCreates+rep.CompletedDestroys > 0 {
		s.log.InfoContext(ctx, "settled unfinished creations and destroys",
			"completed_creates", rep.CompletedCreates, "abandoned_creates", rep.AbandonedCreates,
			"rescheduled_rotations", rep.RescheduledRotations, "completed_destroys", rep.CompletedDestroys)
	}
	return rep, errors.Join(errs...)
}

// settleFailed ends a pass cut short by the HSM going away.
func (s *Service) settleFailed(ctx context.Context, rep ReconcileReport, errs []error) error {
	if rep.CompletedCreates+rep.AbandonedCreates+rep.CompletedDestroys > 0 {
		s.log.InfoContext(ctx, "settled unfinished creations and destroys before the HSM failed",
			"completed_creates", rep.CompletedCreates, "abandoned_creates", rep.AbandonedCreates,
			"rescheduled_rotations", rep.RescheduledRotations, "completed_destroys", rep.CompletedDestroys)
	}
	return fmt.Errorf("settlement stopped until the next pass: %w", errors.Join(errs...))
}

// deviceDown reports the errors after which the rest of a pass would fail
// the same way.
func deviceDown(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, hsm.ErrUnavailable) || errors.Is(err, hsm.ErrClosed)
}

// errInFlight: the key's lock is held in this process; the pass skips the
// key until a later pass.
var errInFlight = errors.New("a version change of this key is in flight in this process")

// settleIntentNow settles one listed intent under the key's lock, which
// every creator in this process holds from intent to commit or abandonment
// (CreateKey, rotations, imports): an intent this process is still making
// is never settled under it, however long the HSM takes. A held lock is not
// waited for (errInFlight): its holder settles its own version, and a
// creation hung in the HSM must not stop the pass. The version is read
// again under the lock; the list may be stale.
func (s *Service) settleIntentNow(ctx context.Context, listed KeyVersion, rep *ReconcileReport) error {
	v, unlock, ok, err := s.relist(ctx, listed)
	if !ok {
		return err
	}
	defer unlock()
	return s.settleIntent(ctx, v, func(v KeyVersion) (bool, error) {
		return s.device.HasObject(ctx, v.BackingID)
	}, rep)
}

// relist takes the listed version's key lock without waiting (errInFlight
// when it is held) and reads the version again: ok is false, with the lock
// released, when it was settled since it was listed (another state or
// backing id).
func (s *Service) relist(ctx context.Context, listed KeyVersion) (v KeyVersion, unlock func(), ok bool, err error) {
	unlock, locked := s.tryLockKey(listed.KeyID)
	if !locked {
		return KeyVersion{}, nil, false, errInFlight
	}
	v, err = s.store.GetVersion(ctx, listed.KeyID, listed.Version)
	if err != nil || v.State != listed.State || !bytes.Equal(v.BackingID, listed.BackingID) {
		unlock()
		return v, nil, false, err
	}
	return v, unlock, true, nil
}

// tombstoneDestroyingNow is settleIntentNow for a version in Destroying.
func (s *Service) tombstoneDestroyingNow(ctx context.Context, listed KeyVersion, rep *ReconcileReport) error {
	v, unlock, ok, err := s.relist(ctx, listed)
	if !ok {
		return err
	}
	defer unlock()
	done, err := s.tombstoneDestroying(ctx, v)
	if done {
		rep.CompletedDestroys++
	}
	return err
}

// settleIntent settles one version in Creating, for Reconcile and
// SettleUnfinished: an intent younger than CreateIntentGrace is left alone
// (it may be in flight in another kmsd); one whose token object exists
// (present) is committed, and its key enabled if it was being created;
// one without is tombstoned, and so is its key if it was being created.
// Imported material compares its check value first (settleImportIntent).
// rep counts only what this call changed.
func (s *Service) settleIntent(ctx context.Context, v KeyVersion, present func(KeyVersion) (bool, error), rep *ReconcileReport) error {
	if s.youngIntent(v.CreatedAt) { // reconcile_cas.go
		return nil
	}
	key, err := s.store.GetKey(ctx, v.KeyID)
	if err != nil {
		return fmt.Errorf("key %s: %w", v.KeyID, err)
	}
	if key.Origin == originExternal {
		return s.settleImportIntent(ctx, v, present, rep) // import.go
	}
	ok, err := present(v)
	if err != nil {
		return fmt.Errorf("look for the token object of %s: %w", versionKey(v.KeyID, v.Version), err)
	}
	if ok {
		done, err := s.completeCreate(ctx, key, v)
		if done {
			rep.CompletedCreates++
		}
		return err
	}
	// An automatic rotation's claim moved the key's next-rotation date a
	// period ahead; the same transaction puts it back (store_rollback.go).
	rescheduled, err := s.store.TombstoneIntent(ctx, v.KeyID, v.Version)
	if err != nil {
		return ignoreSettled(err) // its creator, or another settler, got there first
	}
	if rescheduled {
		rep.RescheduledRotations++
		s.log.InfoContext(ctx, "automatic rotation cut before its token object existed; the key is due again", "key_id", v.KeyID, "version", v.Version)
	}
	if key.State == StateCreating {
		if _, err := s.store.UpdateKey(ctx, key.ID, tombstoneCreating); ignoreSettled(err) != nil {
			return err
		}
	}
	rep.AbandonedCreates++
	return nil
}

// settleStuckKeyNow is settleIntentNow for a key left in Creating: a key
// this process is still creating holds its lock until it is committed or
// abandoned.
func (s *Service) settleStuckKeyNow(ctx context.Context, k KeyRecord, rep *ReconcileReport) error {
	unlock, ok := s.tryLockKey(k.ID)
	if !ok {
		return errInFlight
	}
	defer unlock()
	return s.settleStuckKey(ctx, k, rep)
}

// settleStuckKey settles a key left in Creating past the grace: Enabled if
// its first version was activated, else Deleted.
func (s *Service) settleStuckKey(ctx context.Context, k KeyRecord, rep *ReconcileReport) error {
	if s.youngIntent(k.CreatedAt) {
		return nil
	}
	// Its first version is settled first: a pass (or Reconcile) that found
	// that version too young, or could not settle it, and reaches the key
	// once the grace has passed must not tombstone a key whose version may
	// still be committed (then CreateKey would answer success for a Deleted
	// key).
	vs, err := s.store.ListVersions(ctx, k.ID)
	if err != nil {
		return err
	}
	for _, v := range vs {
		if v.State == VersionCreating {
			return nil
		}
	}
	r, err := s.store.UpdateKey(ctx, k.ID, settleStuck)
	if err != nil {
		return ignoreSettled(err)
	}
	if r.State == StateEnabled {
		rep.CompletedCreates++
	} else {
		rep.AbandonedCreates++
	}
	return nil
}

// tombstoneDestroying destroys the token object of a version in Destroying
// (one already gone is fine) and then tombstones the version, only if it is
// still Destroying. done reports whether this call made that transition:
// the deletion worker, a settlement pass or another kmsd may be destroying
// the same version, and each destroy and transition is safe to repeat. The
// transition is conditional on the backing id as well: version 1 of an
// imported key may, since v was read, have been destroyed, re-imported
// under a new backing id and deleted again, and that newer object is not
// the one destroyed here.
func (s *Service) tombstoneDestroying(ctx context.Context, v KeyVersion) (done bool, err error) {
	if err := s.device.Destroy(ctx, v.BackingID); err != nil && !errors.Is(err, hsm.ErrKeyNotFound) {
		return false, fmt.Errorf("destroy token object of %s: %w", versionKey(v.KeyID, v.Version), err)
	}
	s.versions.Delete(versionKey(v.KeyID, v.Version))
	err = s.store.SetVersionStateIfID(ctx, v.KeyID, v.Version, v.BackingID, VersionDestroying, VersionDestroyed)
	if err == nil {
		return true, nil
	}
	return false, ignoreSettled(err)
}

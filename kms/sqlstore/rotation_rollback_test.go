package sqlstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"hsmkms/kms"
)

// TestTombstoneIntent checks when tombstoning a rotation intent puts the
// key's schedule back: only for the scheduler's claim, only while the
// schedule is the one the claim left.
func TestTombstoneIntent(t *testing.T) {
	ctx := context.Background()
	day := 24 * time.Hour
	due := ms(t0.Add(90 * day))
	// The scheduler ran a little late; the intent's time has a
	// sub-millisecond part, as time.Now has, and the store keeps
	// milliseconds.
	atRaw := due.Add(3*time.Minute + 456*time.Microsecond)
	at := ms(atRaw)

	// setup makes key id with an Active version 1, rotation every 90 days
	// due at `due`, and a rotation intent (version 2) made as rotateDue or
	// RotateKeyOnDemand would.
	setup := func(t *testing.T, s *Store, id string, in kms.RotationIntent) kms.KeyVersion {
		t.Helper()
		mustCreate(t, s, id, acct1, kms.StateCreating)
		wantErr(t, "activate v1", s.ActivateVersion(ctx, id, 1, 0), nil)
		wantErr(t, "schedule", s.PutRotationSchedule(ctx, kms.RotationSchedule{KeyID: id, Enabled: true, PeriodDays: 90, NextRotation: due}), nil)
		in.KeyID, in.BackingID = id, []byte(fmt.Sprintf("b2-%s", id))
		if in.At.IsZero() {
			in.At = atRaw
		}
		v, err := s.RecordRotationIntent(ctx, in)
		wantErr(t, "intent", err, nil)
		return v
	}
	// As rotateDue makes it.
	claim := kms.RotationIntent{Type: kms.RotationAutomatic, ClaimDue: due, NextDue: atRaw.Add(90 * day).Truncate(time.Millisecond)}
	schedule := func(t *testing.T, s *Store, id string) kms.RotationSchedule {
		t.Helper()
		sc, err := s.GetRotationSchedule(ctx, id)
		wantErr(t, "schedule", err, nil)
		return sc
	}
	tombstone := func(t *testing.T, s *Store, id string, version int, want bool) {
		t.Helper()
		got, err := s.TombstoneIntent(ctx, id, version)
		wantErr(t, "TombstoneIntent", err, nil)
		if got != want {
			t.Fatalf("rescheduled = %v, want %v", got, want)
		}
		if v, _ := s.GetVersion(ctx, id, version); v.State != kms.VersionDestroyed {
			t.Fatalf("version %d is %s after TombstoneIntent", version, v.State)
		}
	}

	t.Run("ScheduledClaim", func(t *testing.T) {
		s := openTemp(t)
		v := setup(t, s, keyID(1), claim)
		if sc := schedule(t, s, keyID(1)); !sc.NextRotation.Equal(at.Add(90 * day)) {
			t.Fatalf("the claim left next %v", sc.NextRotation)
		}
		tombstone(t, s, keyID(1), v.Version, true)
		sc := schedule(t, s, keyID(1))
		if !sc.Enabled || sc.PeriodDays != 90 || !sc.NextRotation.Equal(at) {
			t.Fatalf("schedule after rollback %+v, want due at %v", sc, at)
		}
		if dueNow, _ := s.DueRotations(ctx, at, 0); len(dueNow) != 1 {
			t.Fatalf("%d rotations due after rollback, want 1", len(dueNow))
		}
		// Settled once: a second Reconcile loses the transition and
		// changes nothing.
		_, err := s.TombstoneIntent(ctx, keyID(1), v.Version)
		wantErr(t, "second TombstoneIntent", err, kms.ErrStoreConflict)
		_, err = s.TombstoneIntent(ctx, keyID(1), 9)
		wantErr(t, "missing version", err, kms.ErrStoreNotFound)
	})

	t.Run("OnDemandLeavesSchedule", func(t *testing.T) {
		s := openTemp(t)
		v := setup(t, s, keyID(2), kms.RotationIntent{Type: kms.RotationOnDemand, MaxOnDemand: 25})
		tombstone(t, s, keyID(2), v.Version, false)
		if sc := schedule(t, s, keyID(2)); !sc.NextRotation.Equal(due) {
			t.Fatalf("next %v, want %v unchanged", sc.NextRotation, due)
		}
	})

	t.Run("NonceBoundLeavesSchedule", func(t *testing.T) {
		// An AUTOMATIC version made at the invocation bound claims nothing.
		s := openTemp(t)
		v := setup(t, s, keyID(3), kms.RotationIntent{Type: kms.RotationAutomatic})
		tombstone(t, s, keyID(3), v.Version, false)
		if sc := schedule(t, s, keyID(3)); !sc.NextRotation.Equal(due) {
			t.Fatalf("next %v, want %v unchanged", sc.NextRotation, due)
		}
	})

	t.Run("DisabledStaysDisabled", func(t *testing.T) {
		s := openTemp(t)
		v := setup(t, s, keyID(4), claim)
		wantErr(t, "disable", s.PutRotationSchedule(ctx, kms.RotationSchedule{KeyID: keyID(4), PeriodDays: 90}), nil)
		tombstone(t, s, keyID(4), v.Version, false)
		if sc := schedule(t, s, keyID(4)); sc.Enabled || !sc.NextRotation.IsZero() {
			t.Fatalf("schedule %+v, want disabled", sc)
		}
	})

	t.Run("FreshEnableKept", func(t *testing.T) {
		// Disabled and enabled again: a new schedule, not the claim's.
		s := openTemp(t)
		v := setup(t, s, keyID(5), claim)
		fresh := ms(at.Add(time.Hour).Add(90 * day))
		wantErr(t, "re-enable", s.PutRotationSchedule(ctx, kms.RotationSchedule{KeyID: keyID(5), Enabled: true, PeriodDays: 90, NextRotation: fresh}), nil)
		tombstone(t, s, keyID(5), v.Version, false)
		if sc := schedule(t, s, keyID(5)); !sc.NextRotation.Equal(fresh) {
			t.Fatalf("next %v, want %v kept", sc.NextRotation, fresh)
		}
	})

	t.Run("PeriodChangeKept", func(t *testing.T) {
		// EnableKeyRotation with a new period moves the date by the
		// difference: the claim is still recognised, the new period stays.
		s := openTemp(t)
		v := setup(t, s, keyID(6), claim)
		wantErr(t, "new period", s.PutRotationSchedule(ctx, kms.RotationSchedule{KeyID: keyID(6), Enabled: true, PeriodDays: 180, NextRotation: at.Add(180 * day)}), nil)
		tombstone(t, s, keyID(6), v.Version, true)
		if sc := schedule(t, s, keyID(6)); sc.PeriodDays != 180 || !sc.NextRotation.Equal(at) {
			t.Fatalf("schedule %+v, want period 180 due at %v", sc, at)
		}
	})

	t.Run("LiveRotationSameInstant", func(t *testing.T) {
		// Another AUTOMATIC version recorded at the same millisecond (a
		// rotation at the invocation bound in another process) is live:
		// the key was rotated at that instant, so nothing is given back.
		s := openTemp(t)
		v := setup(t, s, keyID(7), claim)
		other, err := s.RecordRotationIntent(ctx, kms.RotationIntent{KeyID: keyID(7), BackingID: []byte("b3"), Type: kms.RotationAutomatic, At: atRaw})
		wantErr(t, "second intent", err, nil)
		wantErr(t, "activate v3", s.ActivateVersion(ctx, keyID(7), other.Version, 1), nil)
		tombstone(t, s, keyID(7), v.Version, false)
		if sc := schedule(t, s, keyID(7)); !sc.NextRotation.Equal(at.Add(90 * day)) {
			t.Fatalf("next %v, want the claim's %v", sc.NextRotation, at.Add(90*day))
		}
	})
}

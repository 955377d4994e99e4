package sqlstore

import (
	"context"
	"testing"
	"time"

	"hsmkms/kms"
)

// TestTombstoneIntentRetryAt: the claim is recognised as by TombstoneIntent,
// and the key is due again at retryAt, bounded by the intent's time below
// and the claimed date above.
func TestTombstoneIntentRetryAt(t *testing.T) {
	ctx := context.Background()
	day := 24 * time.Hour
	due := ms(t0.Add(90 * day))
	at := ms(due.Add(3 * time.Minute))
	claimed := at.Add(90 * day)

	setup := func(t *testing.T, id string, in kms.RotationIntent) (*Store, kms.KeyVersion) {
		t.Helper()
		s := openTemp(t)
		mustCreate(t, s, id, acct1, kms.StateCreating)
		wantErr(t, "activate v1", s.ActivateVersion(ctx, id, 1, 0), nil)
		wantErr(t, "schedule", s.PutRotationSchedule(ctx, kms.RotationSchedule{KeyID: id, Enabled: true, PeriodDays: 90, NextRotation: due}), nil)
		in.KeyID, in.BackingID, in.At = id, []byte("b2-"+id), at
		v, err := s.RecordRotationIntent(ctx, in)
		wantErr(t, "intent", err, nil)
		return s, v
	}
	claim := kms.RotationIntent{Type: kms.RotationAutomatic, ClaimDue: due, NextDue: claimed}
	check := func(t *testing.T, s *Store, id string, version int, retryAt time.Time, wantRescheduled bool, wantNext time.Time) {
		t.Helper()
		got, err := s.TombstoneIntentRetryAt(ctx, id, version, kms.VersionDestroyed, retryAt)
		wantErr(t, "TombstoneIntentRetryAt", err, nil)
		if got != wantRescheduled {
			t.Fatalf("rescheduled = %v, want %v", got, wantRescheduled)
		}
		if v, _ := s.GetVersion(ctx, id, version); v.State != kms.VersionDestroyed {
			t.Fatalf("version %d is %s", version, v.State)
		}
		sc, err := s.GetRotationSchedule(ctx, id)
		wantErr(t, "schedule", err, nil)
		if !sc.NextRotation.Equal(wantNext) {
			t.Fatalf("next rotation %v, want %v", sc.NextRotation, wantNext)
		}
	}

	for name, tc := range map[string]struct{ retryAt, want time.Time }{
		"BackOff":          {at.Add(time.Hour), at.Add(time.Hour)},
		"CappedAtClaim":    {claimed.Add(time.Hour), claimed},
		"NotBeforeIntent":  {at.Add(-time.Hour), at},
		"ZeroIsIntentTime": {time.Time{}, at},
	} {
		t.Run(name, func(t *testing.T) {
			s, v := setup(t, keyID(1), claim)
			check(t, s, keyID(1), v.Version, tc.retryAt, true, tc.want)
			// Settled once.
			_, err := s.TombstoneIntentRetryAt(ctx, keyID(1), v.Version, kms.VersionDestroyed, tc.retryAt)
			wantErr(t, "second call", err, kms.ErrStoreConflict)
		})
	}
	t.Run("OnDemandLeavesSchedule", func(t *testing.T) {
		s, v := setup(t, keyID(2), kms.RotationIntent{Type: kms.RotationOnDemand, MaxOnDemand: 25})
		check(t, s, keyID(2), v.Version, at.Add(time.Hour), false, due)
	})
	t.Run("DisabledStaysDisabled", func(t *testing.T) {
		s, v := setup(t, keyID(3), claim)
		wantErr(t, "disable", s.PutRotationSchedule(ctx, kms.RotationSchedule{KeyID: keyID(3), PeriodDays: 90}), nil)
		check(t, s, keyID(3), v.Version, at.Add(time.Hour), false, time.Time{})
	})
	// The token object could not be destroyed yet: the version is left
	// Destroying (for Reconcile), and the claim is still given back; the
	// version itself, not Destroyed, must not count as another rotation
	// made at that instant.
	t.Run("LeftDestroying", func(t *testing.T) {
		s, v := setup(t, keyID(4), claim)
		got, err := s.TombstoneIntentRetryAt(ctx, keyID(4), v.Version, kms.VersionDestroying, at.Add(time.Hour))
		wantErr(t, "TombstoneIntentRetryAt", err, nil)
		if !got {
			t.Fatal("not rescheduled")
		}
		if v, _ := s.GetVersion(ctx, keyID(4), v.Version); v.State != kms.VersionDestroying {
			t.Fatalf("version is %s, want %s", v.State, kms.VersionDestroying)
		}
		sc, err := s.GetRotationSchedule(ctx, keyID(4))
		wantErr(t, "schedule", err, nil)
		if !sc.NextRotation.Equal(at.Add(time.Hour)) {
			t.Fatalf("next rotation %v, want %v", sc.NextRotation, at.Add(time.Hour))
		}
	})
	t.Run("OnlyToATombstone", func(t *testing.T) {
		s, v := setup(t, keyID(5), claim)
		if _, err := s.TombstoneIntentRetryAt(ctx, keyID(5), v.Version, kms.VersionActive, at.Add(time.Hour)); err == nil {
			t.Fatal("an abandoned intent was made Active")
		}
		if v, _ := s.GetVersion(ctx, keyID(5), v.Version); v.State != kms.VersionCreating {
			t.Fatalf("version is %s after a refused call", v.State)
		}
	})
}

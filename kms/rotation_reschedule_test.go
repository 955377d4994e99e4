package kms_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"hsmkms/kms"
	"hsmkms/kms/sqlstore"
)

// These tests cut a scheduled rotation with the fault hook of
// TestRotationCrash (rotation_test.go) and restart on the same database and
// token: a rotation that was due and never made its token object must
// happen at the restart, not a period later.

const day = 24 * time.Hour

// dueKey makes a key with automatic rotation every 90 days, a ciphertext
// under its first version, and moves the clock to the due date.
func dueKey(t *testing.T, e *env) (md *kms.KeyMetadata, blob []byte) {
	t.Helper()
	md = e.createKey(t)
	enc, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("v1")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.EnableKeyRotation(e.ctx, &kms.EnableKeyRotationInput{KeyId: ptr(md.KeyId), RotationPeriodInDays: ptr(int32(90))}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(90 * day)
	return md, enc.CiphertextBlob
}

// cutScheduledRotation runs the scheduler with a crash at stage.
func cutScheduledRotation(t *testing.T, e *env, stage string) {
	t.Helper()
	crash := errors.New("killed")
	restore := kms.SetRotationFault(func(s string) error {
		if s == stage {
			return crash
		}
		return nil
	})
	n, err := e.svc.RotateDueKeys(e.ctx)
	restore()
	if n != 0 || !errors.Is(err, crash) {
		t.Fatalf("RotateDueKeys = %d, %v; want the crash", n, err)
	}
}

// restart is a new service on the token and database of e (through store,
// which may be another connection to the same file), started once the cut
// intent is past its grace.
func restart(t *testing.T, e *env, store *sqlstore.Store) *env {
	t.Helper()
	r := newEnvWith(t, e.device, store)
	r.clock.Advance(e.clock.Now().Sub(r.clock.Now()) + kms.CreateIntentGrace)
	return r
}

func TestScheduledRotationCrash(t *testing.T) {
	for name, dev := range map[string]deviceFactory{"Fake": fakeDevice, "SoftHSM": softHSMDevice} {
		t.Run(name, func(t *testing.T) {
			t.Run("BeforeObject", func(t *testing.T) {
				e := newEnv(t, dev)
				md, blob := dueKey(t, e)
				cutScheduledRotation(t, e, "intent")
				// What the crash left: the claim moved the date a period
				// ahead, and the key has not rotated.
				if st, _ := e.svc.GetKeyRotationStatus(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)}); !st.NextRotationDate.Time().After(e.clock.Now()) {
					t.Fatalf("the claim did not move the date: %v", st.NextRotationDate.Time())
				}

				r := restart(t, e, e.store)
				rep, err := r.svc.Reconcile(r.ctx)
				if err != nil {
					t.Fatal(err)
				}
				if rep.AbandonedCreates != 1 || rep.RescheduledRotations != 1 || len(rep.OrphanObjects) != 0 || len(rep.MissingObjects) != 0 {
					t.Fatalf("report %+v", rep)
				}
				st, err := r.svc.GetKeyRotationStatus(r.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)})
				if err != nil || !st.KeyRotationEnabled || *st.RotationPeriodInDays != 90 || st.NextRotationDate.Time().After(r.clock.Now()) {
					t.Fatalf("status after Reconcile %+v, %v; want due", st, err)
				}
				// The start-up scheduler pass rotates it, once.
				if n, err := r.svc.RotateDueKeys(r.ctx); err != nil || n != 1 {
					t.Fatalf("RotateDueKeys = %d, %v; want 1", n, err)
				}
				if n, err := r.svc.RotateDueKeys(r.ctx); err != nil || n != 0 {
					t.Fatalf("second RotateDueKeys = %d, %v; want 0", n, err)
				}
				checkRotatedOnce(t, r, md.KeyId, blob)
				vs, _ := r.store.ListVersions(r.ctx, md.KeyId)
				if len(vs) != 3 || vs[0].State != kms.VersionActive || vs[1].State != kms.VersionDestroyed || vs[2].State != kms.VersionActive {
					t.Fatalf("versions %+v, want Active, Destroyed (the cut intent), Active", vs)
				}
				if st, _ := r.svc.GetKeyRotationStatus(r.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)}); !st.NextRotationDate.Time().Equal(r.clock.Now().Add(90 * day)) {
					t.Fatalf("next rotation %v, want a period from now", st.NextRotationDate.Time())
				}
			})
			t.Run("AfterObject", func(t *testing.T) {
				// The object exists: Reconcile commits the rotation, and
				// the key is not due again.
				e := newEnv(t, dev)
				md, blob := dueKey(t, e)
				cutScheduledRotation(t, e, "object")
				r := restart(t, e, e.store)
				rep, err := r.svc.Reconcile(r.ctx)
				if err != nil || rep.CompletedCreates != 1 || rep.RescheduledRotations != 0 {
					t.Fatalf("report %+v, %v", rep, err)
				}
				if n, err := r.svc.RotateDueKeys(r.ctx); err != nil || n != 0 {
					t.Fatalf("RotateDueKeys = %d, %v; want 0", n, err)
				}
				checkRotatedOnce(t, r, md.KeyId, blob)
			})
		})
	}
}

// checkRotatedOnce: one AUTOMATIC rotation, current; the old ciphertext
// decrypts; new ones use the new material.
func checkRotatedOnce(t *testing.T, r *env, keyID string, blob []byte) {
	t.Helper()
	rots, err := r.svc.ListKeyRotations(r.ctx, &kms.ListKeyRotationsInput{KeyId: ptr(keyID)})
	if err != nil || len(rots.Rotations) != 1 || rots.Rotations[0].RotationType != "AUTOMATIC" || rots.Rotations[0].KeyMaterialState != "CURRENT" {
		t.Fatalf("rotations %+v, %v; want one AUTOMATIC, current", rots, err)
	}
	dec, err := r.svc.Decrypt(r.ctx, &kms.DecryptInput{CiphertextBlob: blob})
	if err != nil || string(dec.Plaintext) != "v1" {
		t.Fatalf("ciphertext from before the crash: %v", err)
	}
	enc, err := r.svc.Encrypt(r.ctx, &kms.EncryptInput{KeyId: ptr(keyID), Plaintext: []byte("v2")})
	if err != nil {
		t.Fatal(err)
	}
	dec, err = r.svc.Decrypt(r.ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	if err != nil || dec.KeyMaterialId != rots.Rotations[0].KeyMaterialId {
		t.Fatalf("new ciphertext under material %q, want the rotation's %q (%v)", dec.KeyMaterialId, rots.Rotations[0].KeyMaterialId, err)
	}
}

// TestScheduledRotationCrashSettings: what changed between the crash and
// the restart decides whether the cut rotation is due again.
func TestScheduledRotationCrashSettings(t *testing.T) {
	t.Run("RotationDisabled", func(t *testing.T) {
		e := newEnv(t, fakeDevice)
		md, _ := dueKey(t, e)
		cutScheduledRotation(t, e, "intent")
		if _, err := e.svc.DisableKeyRotation(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)}); err != nil {
			t.Fatal(err)
		}
		r := restart(t, e, e.store)
		if rep, err := r.svc.Reconcile(r.ctx); err != nil || rep.AbandonedCreates != 1 || rep.RescheduledRotations != 0 {
			t.Fatalf("report %+v, %v", rep, err)
		}
		if st, _ := r.svc.GetKeyRotationStatus(r.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)}); st.KeyRotationEnabled {
			t.Fatal("Reconcile enabled rotation again")
		}
		if n, err := r.svc.RotateDueKeys(r.ctx); err != nil || n != 0 {
			t.Fatalf("RotateDueKeys = %d, %v; want 0", n, err)
		}
	})
	t.Run("RotationEnabledAgain", func(t *testing.T) {
		// Disabled then enabled: a new schedule from that day, kept.
		e := newEnv(t, fakeDevice)
		md, _ := dueKey(t, e)
		cutScheduledRotation(t, e, "intent")
		if _, err := e.svc.DisableKeyRotation(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)}); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Hour)
		if _, err := e.svc.EnableKeyRotation(e.ctx, &kms.EnableKeyRotationInput{KeyId: ptr(md.KeyId), RotationPeriodInDays: ptr(int32(90))}); err != nil {
			t.Fatal(err)
		}
		want := e.clock.Now().Add(90 * day)
		r := restart(t, e, e.store)
		if rep, err := r.svc.Reconcile(r.ctx); err != nil || rep.RescheduledRotations != 0 {
			t.Fatalf("report %+v, %v", rep, err)
		}
		if st, _ := r.svc.GetKeyRotationStatus(r.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)}); !st.NextRotationDate.Time().Equal(want) {
			t.Fatalf("next rotation %v, want %v", st.NextRotationDate.Time(), want)
		}
	})
	t.Run("PeriodChanged", func(t *testing.T) {
		// The new period stays; the rotation that was due happens.
		e := newEnv(t, fakeDevice)
		md, blob := dueKey(t, e)
		cutScheduledRotation(t, e, "intent")
		if _, err := e.svc.EnableKeyRotation(e.ctx, &kms.EnableKeyRotationInput{KeyId: ptr(md.KeyId), RotationPeriodInDays: ptr(int32(180))}); err != nil {
			t.Fatal(err)
		}
		r := restart(t, e, e.store)
		if rep, err := r.svc.Reconcile(r.ctx); err != nil || rep.RescheduledRotations != 1 {
			t.Fatalf("report %+v, %v", rep, err)
		}
		if n, err := r.svc.RotateDueKeys(r.ctx); err != nil || n != 1 {
			t.Fatalf("RotateDueKeys = %d, %v; want 1", n, err)
		}
		checkRotatedOnce(t, r, md.KeyId, blob)
		st, _ := r.svc.GetKeyRotationStatus(r.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)})
		if *st.RotationPeriodInDays != 180 || !st.NextRotationDate.Time().Equal(r.clock.Now().Add(180*day)) {
			t.Fatalf("status %+v, want period 180 from now", st)
		}
	})
	t.Run("OnDemand", func(t *testing.T) {
		// An on-demand rotation claims no date: the schedule is untouched.
		e := newEnv(t, fakeDevice)
		md := e.createKey(t)
		if _, err := e.svc.EnableKeyRotation(e.ctx, &kms.EnableKeyRotationInput{KeyId: ptr(md.KeyId), RotationPeriodInDays: ptr(int32(90))}); err != nil {
			t.Fatal(err)
		}
		want := e.clock.Now().Add(90 * day)
		restore := kms.SetRotationFault(func(s string) error {
			if s == "intent" {
				return errors.New("killed")
			}
			return nil
		})
		_, err := e.svc.RotateKeyOnDemand(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)})
		restore()
		if err == nil {
			t.Fatal("the on-demand rotation was not cut")
		}
		r := restart(t, e, e.store)
		if rep, err := r.svc.Reconcile(r.ctx); err != nil || rep.AbandonedCreates != 1 || rep.RescheduledRotations != 0 {
			t.Fatalf("report %+v, %v", rep, err)
		}
		if st, _ := r.svc.GetKeyRotationStatus(r.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)}); !st.NextRotationDate.Time().Equal(want) {
			t.Fatalf("next rotation %v, want %v unchanged", st.NextRotationDate.Time(), want)
		}
	})
}

// TestScheduledRotationCrashTwoProcesses: two kmsd start on the database a
// crashed one left; both reconcile and run their scheduler at once. The
// cut rotation is made due once and happens once.
func TestScheduledRotationCrashTwoProcesses(t *testing.T) {
	envs := twoProcesses(t)
	e := envs[0]
	var (
		mds   []*kms.KeyMetadata
		blobs [][]byte
	)
	for range 3 {
		md := e.createKey(t)
		enc, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("v1")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.EnableKeyRotation(e.ctx, &kms.EnableKeyRotationInput{KeyId: ptr(md.KeyId), RotationPeriodInDays: ptr(int32(90))}); err != nil {
			t.Fatal(err)
		}
		mds, blobs = append(mds, md), append(blobs, enc.CiphertextBlob)
	}
	e.clock.Advance(90 * day)
	crash := errors.New("killed")
	restore := kms.SetRotationFault(func(s string) error {
		if s == "intent" {
			return crash
		}
		return nil
	})
	_, err := e.svc.RotateDueKeys(e.ctx)
	restore()
	if !errors.Is(err, crash) {
		t.Fatalf("RotateDueKeys: %v; want the crash", err)
	}
	restarted := []*env{restart(t, e, envs[0].store), restart(t, e, envs[1].store)}
	var (
		wg                   sync.WaitGroup
		mu                   sync.Mutex
		rescheduled, rotated int
	)
	for _, r := range restarted {
		wg.Go(func() {
			rep, err := r.svc.Reconcile(r.ctx)
			if err != nil {
				t.Error(err)
			}
			n, err := r.svc.RotateDueKeys(r.ctx)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			rescheduled += rep.RescheduledRotations
			rotated += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if rescheduled != len(mds) || rotated != len(mds) {
		t.Fatalf("%d rescheduled, %d rotated; want %d each", rescheduled, rotated, len(mds))
	}
	for i, md := range mds {
		checkRotatedOnce(t, restarted[i%2], md.KeyId, blobs[i])
	}
}

package kms_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"hsmkms/hsm"
	"hsmkms/kms"
)

// These tests cover creations that outlive CreateIntentGrace (an HSM
// recovering a session, a slow RSA-4096 generation): a settlement pass, in
// this kmsd or another on the same database and token, then acts on a
// version its creator is still making, and the creator must never destroy
// or overwrite what the settler decided.

// holdGenerate holds the next GenerateAESKey once armed, until release:
// make says whether the object is made before the hold (a reply slow to
// come back) or after it (a slow generation); lost makes the call fail
// after making the object (the reply was lost).
type holdGenerate struct {
	hsm.Device
	armed            atomic.Bool
	make, lost       bool
	entered, release chan struct{}
}

func newHold(dev hsm.Device, makeFirst, lost bool) *holdGenerate {
	return &holdGenerate{Device: dev, make: makeFirst, lost: lost, entered: make(chan struct{}), release: make(chan struct{})}
}

func (d *holdGenerate) GenerateAESKey(ctx context.Context, id []byte, label string) error {
	if !d.armed.CompareAndSwap(true, false) {
		return d.Device.GenerateAESKey(ctx, id, label)
	}
	var err error
	if d.make {
		err = d.Device.GenerateAESKey(ctx, id, label)
	}
	close(d.entered)
	<-d.release
	if !d.make {
		err = d.Device.GenerateAESKey(ctx, id, label)
	}
	if err == nil && d.lost {
		err = fmt.Errorf("%w: reply lost after a session fault", hsm.ErrUnavailable)
	}
	return err
}

func tokenObjects(t *testing.T, dev hsm.Device) int {
	t.Helper()
	ids, err := dev.ObjectIDs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return len(ids)
}

// Two kmsd, A and B, share the database and the token. A's rotation takes
// longer than the grace; B's pass settles A's version meanwhile. Whatever
// B decided stands: a version B committed (and B encrypted under) is never
// destroyed by A, and a version B tombstoned is never reported by A as a
// rotation made.
func TestCreatorRespectsSettler(t *testing.T) {
	for devName, newDev := range deviceFactories {
		t.Run(devName, func(t *testing.T) {
			cases := []struct {
				name                   string
				makeFirst, lost, sched bool
			}{
				{name: "CommittedOnDemand", makeFirst: true},
				{name: "CommittedScheduled", makeFirst: true, sched: true},
				{name: "LostReplyOnDemand", makeFirst: true, lost: true},
				{name: "LostReplyScheduled", makeFirst: true, lost: true, sched: true},
				{name: "TombstonedOnDemand"},
				{name: "TombstonedScheduled", sched: true},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					dev := newDev(t)
					hold := newHold(dev, tc.makeFirst, tc.lost)
					open, c := raceStores(t), newClock()
					a, ctxA := svcOn(t, hold, open(), c)
					b, ctxB := svcOn(t, dev, open(), c)
					ck, err := a.CreateKey(ctxA, &kms.CreateKeyInput{})
					if err != nil {
						t.Fatal(err)
					}
					keyID := ck.KeyMetadata.KeyId
					old := encryptWith(t, a, ctxA, keyID, "v1")
					if tc.sched {
						if _, err := a.EnableKeyRotation(ctxA, &kms.EnableKeyRotationInput{KeyId: &keyID, RotationPeriodInDays: ptr(int32(90))}); err != nil {
							t.Fatal(err)
						}
						c.Advance(90 * day)
					}
					hold.armed.Store(true)
					done := make(chan error, 1)
					go func() {
						if tc.sched {
							n, err := a.RotateDueKeys(ctxA)
							if err == nil && n != 1 {
								err = fmt.Errorf("RotateDueKeys = %d, nil", n)
							}
							done <- err
							return
						}
						_, err := a.RotateKeyOnDemand(ctxA, &kms.KeyIdInput{KeyId: &keyID})
						done <- err
					}()
					<-hold.entered
					c.Advance(kms.CreateIntentGrace + time.Second)
					rep, err := b.SettleUnfinished(ctxB)
					if err != nil {
						t.Fatal(err)
					}
					var underV2 []byte
					if tc.makeFirst {
						wantReport(t, rep, kms.ReconcileReport{CompletedCreates: 1})
						underV2 = encryptWith(t, b, ctxB, keyID, "v2") // B uses the version it committed
					} else {
						want := kms.ReconcileReport{AbandonedCreates: 1}
						if tc.sched {
							want.RescheduledRotations = 1
						}
						wantReport(t, rep, want)
					}
					close(hold.release)
					aerr := <-done

					st := open()
					v2, err := st.GetVersion(t.Context(), keyID, 2)
					if err != nil {
						t.Fatal(err)
					}
					k, err := st.GetKey(t.Context(), keyID)
					if err != nil {
						t.Fatal(err)
					}
					if tc.makeFirst {
						// The rotation happened: A reports it, and v2 and
						// its object are kept.
						if aerr != nil {
							t.Fatalf("A's rotation, committed by B's pass: %v", aerr)
						}
						if v2.State != kms.VersionActive || k.CurrentVersion != 2 {
							t.Fatalf("v2 %s, current %d; want Active, 2", v2.State, k.CurrentVersion)
						}
						wantDecrypts(t, a, ctxA, underV2, "v2")
						wantDecrypts(t, b, ctxB, underV2, "v2")
						wantDecrypts(t, a, ctxA, encryptWith(t, a, ctxA, keyID, "more"), "more")
						if n := tokenObjects(t, dev); n != 2 {
							t.Fatalf("%d token objects, want 2", n)
						}
					} else {
						// No rotation happened: A must not say it did, and
						// leaves no orphan object behind.
						if aerr == nil {
							t.Fatal("A reported a rotation whose version B's pass had tombstoned")
						}
						if !tc.sched {
							wantCode(t, aerr, kms.CodeConflict)
						}
						if v2.State != kms.VersionDestroyed || k.CurrentVersion != 1 {
							t.Fatalf("v2 %s, current %d; want Destroyed, 1", v2.State, k.CurrentVersion)
						}
						if n := tokenObjects(t, dev); n != 1 {
							t.Fatalf("%d token objects, want v1's only", n)
						}
						// Trying again rotates (a scheduled one is due again
						// at once).
						if tc.sched {
							if n, err := a.RotateDueKeys(ctxA); n != 1 || err != nil {
								t.Fatalf("RotateDueKeys after the abandoned rotation = %d, %v; want 1", n, err)
							}
						} else if _, err := a.RotateKeyOnDemand(ctxA, &kms.KeyIdInput{KeyId: &keyID}); err != nil {
							t.Fatal(err)
						}
					}
					wantDecrypts(t, a, ctxA, old, "v1")
					if rep, err := b.SettleUnfinished(ctxB); err != nil || rep.CompletedCreates+rep.AbandonedCreates+rep.CompletedDestroys != 0 {
						t.Fatalf("a later pass found work: %+v %v", rep, err)
					}
				})
			}
		})
	}
}

// A CreateKey of this process slower than the grace is neither tombstoned
// nor enabled under it by this process's pass: the pass skips the key while
// the creator holds its lock, and CreateKey returns the key, Enabled.
func TestSettleSkipsCreateKeyInFlight(t *testing.T) {
	for _, makeFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("objectMade=%v", makeFirst), func(t *testing.T) {
			dev := hsm.NewFake()
			hold := newHold(dev, makeFirst, false)
			e := newEnv(t, func(testing.TB) hsm.Device { return hold })
			hold.armed.Store(true)
			type result struct {
				out *kms.CreateKeyOutput
				err error
			}
			done := make(chan result, 1)
			go func() {
				out, err := e.svc.CreateKey(e.ctx, &kms.CreateKeyInput{})
				done <- result{out, err}
			}()
			<-hold.entered
			e.clock.Advance(kms.CreateIntentGrace + time.Minute)
			wantReport(t, settle(t, e), kms.ReconcileReport{})
			close(hold.release)
			r := <-done
			if r.err != nil || r.out.KeyMetadata.KeyState != "Enabled" {
				t.Fatalf("CreateKey = %+v, %v; want the key, Enabled", r.out, r.err)
			}
			keyID := r.out.KeyMetadata.KeyId
			wantStates(t, e, keyID, kms.VersionActive)
			enc, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: &keyID, Plaintext: []byte("x")})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.svc.Decrypt(e.ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}); err != nil {
				t.Fatal(err)
			}
			if n := tokenObjects(t, dev); n != 1 {
				t.Fatalf("%d token objects, want 1", n)
			}
			wantReport(t, settle(t, e), kms.ReconcileReport{})
		})
	}
}

// A rotation hung in the HSM holds its key's lock for as long as it hangs.
// The scheduler's pass goes on without it: the settlement pass and the due
// rotations of other keys are done, the hung key is skipped (it is still
// due, and its intent unsettled) rather than waited for.
func TestSchedulerPassNotBlockedByHungCreation(t *testing.T) {
	dev := hsm.NewFake()
	hold := newHold(dev, false, false)
	e := newEnv(t, func(testing.TB) hsm.Device { return hold })
	hung := e.createKey(t)
	other, blob := dueKey(t, e)
	cutScheduledRotation(t, e, "intent")
	if _, err := e.svc.EnableKeyRotation(e.ctx, &kms.EnableKeyRotationInput{KeyId: ptr(hung.KeyId), RotationPeriodInDays: ptr(int32(90))}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(90 * day)
	hold.armed.Store(true)
	rotated := make(chan error, 1)
	go func() {
		_, err := e.svc.RotateKeyOnDemand(e.ctx, &kms.KeyIdInput{KeyId: ptr(hung.KeyId)})
		rotated <- err
	}()
	<-hold.entered
	e.clock.Advance(kms.CreateIntentGrace + time.Minute)

	type passResult struct {
		rep     kms.ReconcileReport
		n       int
		errs    [3]error
		elapsed time.Duration
	}
	passed := make(chan passResult, 1)
	go func() {
		var r passResult
		start := time.Now()
		r.rep, r.errs[0] = e.svc.SettleUnfinished(e.ctx)
		r.n, r.errs[1] = e.svc.RotateDueKeys(e.ctx)
		r.errs[2] = e.svc.ExpireImports(e.ctx)
		r.elapsed = time.Since(start)
		passed <- r
	}()
	var r passResult
	select {
	case r = <-passed:
	case <-time.After(10 * time.Second):
		close(hold.release)
		<-rotated
		t.Fatal("the scheduler's pass waited for a creation hung in the HSM")
	}
	if r.errs != [3]error{} {
		t.Fatalf("pass errors: %v", r.errs)
	}
	wantReport(t, r.rep, kms.ReconcileReport{AbandonedCreates: 1, RescheduledRotations: 1})
	if r.n != 1 {
		t.Fatalf("RotateDueKeys = %d, want 1 (the other key)", r.n)
	}
	checkRotatedOnce(t, e, other.KeyId, blob)
	wantStates(t, e, hung.KeyId, kms.VersionActive, kms.VersionCreating)

	close(hold.release)
	if err := <-rotated; err != nil {
		t.Fatal(err)
	}
	wantStates(t, e, hung.KeyId, kms.VersionActive, kms.VersionActive)
	// Still due: rotated by the next pass.
	if n, err := e.svc.RotateDueKeys(e.ctx); n != 1 || err != nil {
		t.Fatalf("RotateDueKeys after the hang = %d, %v; want 1", n, err)
	}
}

// hookDestroy runs hook, when set, instead of Destroy.
type hookDestroy struct {
	hsm.Device
	mu   sync.Mutex
	hook func(ctx context.Context, id []byte) error
}

func (d *hookDestroy) set(h func(ctx context.Context, id []byte) error) {
	d.mu.Lock()
	d.hook = h
	d.mu.Unlock()
}

func (d *hookDestroy) Destroy(ctx context.Context, id []byte) error {
	d.mu.Lock()
	h := d.hook
	d.mu.Unlock()
	if h != nil {
		return h(ctx, id)
	}
	return d.Device.Destroy(ctx, id)
}

// The pass tombstones a version in Destroying only if it is still that
// version in Destroying (compare-and-set on state and backing id): while A's
// pass destroys an imported key's deleted material, B finishes that
// deletion and the material is imported again, under the same version 1.
// A's late write must not mark the re-imported material Destroyed.
func TestSettleDestroyingIsCompareAndSet(t *testing.T) {
	dev := hsm.NewFake()
	hd := &hookDestroy{Device: dev}
	open, c := raceStores(t), newClock()
	a, ctxA := svcOn(t, hd, open(), c)
	b, ctxB := svcOn(t, dev, open(), c)
	keyID := newExternalKey(t, a, ctxA)
	material := newMaterial()
	mustImport(t, a, ctxA, keyID, material)
	st := open()
	old, err := st.GetVersion(t.Context(), keyID, 1)
	if err != nil {
		t.Fatal(err)
	}
	hd.set(func(context.Context, []byte) error { return fmt.Errorf("%w: token removed", hsm.ErrUnavailable) })
	if _, err := a.DeleteImportedKeyMaterial(ctxA, &kms.DeleteImportedKeyMaterialInput{KeyId: &keyID}); err == nil {
		t.Fatal("DeleteImportedKeyMaterial succeeded although Destroy fails")
	}
	if v, err := st.GetVersion(t.Context(), keyID, 1); err != nil || v.State != kms.VersionDestroying {
		t.Fatalf("version 1 = %+v, %v; want Destroying", v, err)
	}
	var after []byte
	hd.set(func(ctx context.Context, id []byte) error {
		hd.set(nil)
		if err := dev.Destroy(ctx, id); err != nil {
			return err
		}
		// Meanwhile in B: the deletion finished, the material imported again.
		if rep, err := b.SettleUnfinished(ctxB); err != nil || rep.CompletedDestroys != 1 {
			t.Errorf("B's pass = %+v, %v; want the destroy finished", rep, err)
		}
		mustImport(t, b, ctxB, keyID, material)
		after = encryptWith(t, b, ctxB, keyID, "after")
		return nil
	})
	wantReport(t, settle(t, &env{svc: a, ctx: ctxA}), kms.ReconcileReport{})
	cur, err := st.GetVersion(t.Context(), keyID, 1)
	if err != nil || cur.State != kms.VersionActive || string(cur.BackingID) == string(old.BackingID) {
		t.Fatalf("re-imported version 1 = %+v, %v; want Active under a new backing id", cur, err)
	}
	wantDecrypts(t, a, ctxA, after, "after")
	wantDecrypts(t, b, ctxB, after, "after")
}

// The pass re-reads each listed version under the key's lock and leaves
// alone one settled since it was listed: no token call, nothing counted.
func TestSettleRereadsListedVersion(t *testing.T) {
	t.Run("Creating", func(t *testing.T) {
		dev := &downDevice{Device: hsm.NewFake()}
		base := newEnv(t, func(testing.TB) hsm.Device { return dev })
		pause := &pauseListCreating{listed: make(chan struct{}), resume: make(chan struct{})}
		e := newEnvWith(t, dev, base.store, func(c *kms.Config) { pause.Store = c.Store; c.Store = pause })
		md, _ := dueKey(t, e)
		cutScheduledRotation(t, e, "object")
		e.clock.Advance(kms.CreateIntentGrace)
		passed := settleInBackground(t, e)
		<-pause.listed
		// Committed elsewhere after the listing.
		if err := e.store.ActivateVersion(t.Context(), md.KeyId, 2, 1); err != nil {
			t.Fatal(err)
		}
		dev.calls.Store(0)
		close(pause.resume)
		wantReport(t, <-passed, kms.ReconcileReport{})
		if n := dev.calls.Load(); n != 0 {
			t.Fatalf("the pass made %d token calls for a version settled since it was listed", n)
		}
		wantStates(t, e, md.KeyId, kms.VersionActive, kms.VersionActive)
	})
	t.Run("Destroying", func(t *testing.T) {
		flaky := &flakyGenerate{Device: hsm.NewFake()}
		dev := &downDevice{Device: flaky}
		base := newEnv(t, func(testing.TB) hsm.Device { return dev })
		pause := &pauseListDestroying{listed: make(chan struct{}), resume: make(chan struct{})}
		e := newEnvWith(t, dev, base.store, func(c *kms.Config) { pause.Store = c.Store; c.Store = pause })
		md := e.createKey(t)
		flaky.arm(1)
		flaky.failDestroy = true
		if _, err := e.svc.RotateKeyOnDemand(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)}); err == nil {
			t.Fatal("the rotation succeeded")
		}
		flaky.failDestroy = false
		wantStates(t, e, md.KeyId, kms.VersionActive, kms.VersionDestroying)
		v2, err := e.store.GetVersion(t.Context(), md.KeyId, 2)
		if err != nil {
			t.Fatal(err)
		}
		passed := settleInBackground(t, e)
		<-pause.listed
		// Finished elsewhere after the listing.
		if err := e.store.SetVersionStateIfID(t.Context(), md.KeyId, 2, v2.BackingID, kms.VersionDestroying, kms.VersionDestroyed); err != nil {
			t.Fatal(err)
		}
		dev.calls.Store(0)
		close(pause.resume)
		wantReport(t, <-passed, kms.ReconcileReport{})
		if n := dev.calls.Load(); n != 0 {
			t.Fatalf("the pass made %d token calls for a version settled since it was listed", n)
		}
	})
}

// failHas fails HasObject with an error that is not the HSM going away
// (one object's lookup failed), while fail is set.
type failHas struct {
	hsm.Device
	fail  atomic.Bool
	down  atomic.Bool
	calls atomic.Int32
}

func (d *failHas) HasObject(ctx context.Context, id []byte) (bool, error) {
	d.calls.Add(1)
	switch {
	case d.down.Load():
		return false, fmt.Errorf("%w: C_FindObjectsInit: CKR_DEVICE_REMOVED", hsm.ErrUnavailable)
	case d.fail.Load():
		return false, errors.New("hsm: C_FindObjectsInit: CKR_FUNCTION_FAILED")
	}
	return d.Device.HasObject(ctx, id)
}

// A key cut while being created, after its object was made: when looking
// for that object fails, the pass leaves the key alone too (settleStuckKey
// would tombstone a key whose first version exists), and settles both once
// the lookup works.
func TestSettleLeavesKeyWhoseIntentFailed(t *testing.T) {
	dev := &failHas{Device: hsm.NewFake()}
	e := newEnv(t, func(testing.TB) hsm.Device { return dev })
	backing := make([]byte, hsm.BackingIDSize)
	if _, err := rand.Read(backing); err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	keyID := uuid.NewString()
	if err := e.store.CreateKey(e.ctx, kms.KeyRecord{ID: keyID, AccountID: testAccount, KeyUsage: "ENCRYPT_DECRYPT",
		KeySpec: "SYMMETRIC_DEFAULT", Origin: "AWS_KMS", KeyManager: "CUSTOMER", State: kms.StateCreating, CreatedAt: now},
		kms.KeyVersion{KeyID: keyID, Version: 1, BackingID: backing, State: kms.VersionCreating, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := dev.GenerateAESKey(e.ctx, backing, "cut"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(kms.CreateIntentGrace)
	dev.fail.Store(true)
	if rep, err := e.svc.SettleUnfinished(e.ctx); err == nil || rep.CompletedCreates+rep.AbandonedCreates != 0 {
		t.Fatalf("pass with a failing lookup = %+v, %v; want the error and nothing settled", rep, err)
	}
	if k, err := e.store.GetKey(e.ctx, keyID); err != nil || k.State != kms.StateCreating {
		t.Fatalf("key = %+v, %v; want still Creating", k, err)
	}
	wantStates(t, e, keyID, kms.VersionCreating)
	dev.fail.Store(false)
	wantReport(t, settle(t, e), kms.ReconcileReport{CompletedCreates: 1})
	if k, err := e.store.GetKey(e.ctx, keyID); err != nil || k.State != kms.StateEnabled {
		t.Fatalf("key = %+v, %v; want Enabled", k, err)
	}
	wantStates(t, e, keyID, kms.VersionActive)
}

// An HSM that goes away during the pass (Health answered) stops it at the
// first failure: the rest would fail the same way.
func TestSettleStopsWhenHSMGoesAway(t *testing.T) {
	dev := &failHas{Device: hsm.NewFake()}
	e := newEnv(t, func(testing.TB) hsm.Device { return dev })
	for range 2 {
		md := e.createKey(t)
		if _, err := e.svc.EnableKeyRotation(e.ctx, &kms.EnableKeyRotationInput{KeyId: ptr(md.KeyId), RotationPeriodInDays: ptr(int32(90))}); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Advance(90 * day)
	cutScheduledRotation(t, e, "intent")
	e.clock.Advance(kms.CreateIntentGrace)
	dev.down.Store(true)
	rep, err := e.svc.SettleUnfinished(e.ctx)
	if !errors.Is(err, hsm.ErrUnavailable) || !strings.Contains(err.Error(), "stopped until the next pass") || dev.calls.Load() != 1 {
		t.Fatalf("pass = %+v, %v after %d lookups; want stopped after the first", rep, err, dev.calls.Load())
	}
	dev.down.Store(false)
	wantReport(t, settle(t, e), kms.ReconcileReport{AbandonedCreates: 2, RescheduledRotations: 2})
}

// settleInBackground runs one settlement pass in a goroutine and delivers
// its report (an error fails the test).
func settleInBackground(t *testing.T, e *env) <-chan kms.ReconcileReport {
	passed := make(chan kms.ReconcileReport, 1)
	go func() {
		rep, err := e.svc.SettleUnfinished(e.ctx)
		if err != nil {
			t.Error(err)
		}
		passed <- rep
	}()
	return passed
}

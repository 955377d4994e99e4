package kms_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hsmkms/hsm"
	"hsmkms/kms"
	"hsmkms/kms/sqlstore"
)

// These tests settle, with no restart, what a cut or failed creation or
// destroy left behind: SettleUnfinished, the pass RunRotationScheduler
// makes in a running kmsd.

// scanGuard fails the test if the token is listed: the settlement pass asks
// about one object at a time (HasObject), never ObjectIDs.
type scanGuard struct {
	hsm.Device
	t testing.TB
}

func (g scanGuard) ObjectIDs(ctx context.Context) ([][]byte, error) {
	g.t.Errorf("the token was listed (ObjectIDs)")
	return g.Device.ObjectIDs(ctx)
}

// searches returns the C_FindObjects count of a PKCS#11 device, and false
// for the Fake.
func searches(dev hsm.Device) (uint64, bool) {
	if d, ok := dev.(interface{ FindObjectsCalls() uint64 }); ok {
		return d.FindObjectsCalls(), true
	}
	return 0, false
}

// settle runs one pass that must succeed and returns its report.
func settle(t *testing.T, e *env) kms.ReconcileReport {
	t.Helper()
	rep, err := e.svc.SettleUnfinished(e.ctx)
	if err != nil {
		t.Fatalf("SettleUnfinished: %v", err)
	}
	return rep
}

func wantReport(t *testing.T, got, want kms.ReconcileReport) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("report %+v, want %+v", got, want)
	}
}

// onDemandConflicts checks that RotateKeyOnDemand answers ConflictException
// while an intent of the key is unsettled.
func onDemandConflicts(t *testing.T, e *env, keyID string) {
	t.Helper()
	_, err := e.svc.RotateKeyOnDemand(e.ctx, &kms.KeyIdInput{KeyId: ptr(keyID)})
	wantCode(t, err, kms.CodeConflict)
}

func TestSettleCutScheduledRotationWithoutRestart(t *testing.T) {
	for name, newDev := range map[string]deviceFactory{"Fake": fakeDevice, "SoftHSM": softHSMDevice} {
		t.Run(name, func(t *testing.T) {
			t.Run("BeforeObject", func(t *testing.T) {
				inner := newDev(t)
				e := newEnv(t, func(tb testing.TB) hsm.Device { return scanGuard{inner, tb} })
				md, blob := dueKey(t, e)
				cutScheduledRotation(t, e, "intent")
				onDemandConflicts(t, e, md.KeyId)

				// Within the grace the intent may be in flight in another
				// kmsd: left alone, and the token is not even asked.
				before, pkcs := searches(inner)
				wantReport(t, settle(t, e), kms.ReconcileReport{})
				wantStates(t, e, md.KeyId, kms.VersionActive, kms.VersionCreating)

				e.clock.Advance(kms.CreateIntentGrace)
				wantReport(t, settle(t, e), kms.ReconcileReport{AbandonedCreates: 1, RescheduledRotations: 1})
				if n, _ := searches(inner); pkcs && n-before != 1 {
					t.Fatalf("the pass made %d token searches, want 1 (one HasObject)", n-before)
				}
				wantStates(t, e, md.KeyId, kms.VersionActive, kms.VersionDestroyed)
				if next := nextRotation(t, e, md.KeyId); next.After(e.clock.Now()) {
					t.Fatalf("next rotation %v is not due at %v", next, e.clock.Now())
				}
				// The scheduler rotates it, once.
				if n, err := e.svc.RotateDueKeys(e.ctx); err != nil || n != 1 {
					t.Fatalf("RotateDueKeys = %d, %v; want 1", n, err)
				}
				if n, err := e.svc.RotateDueKeys(e.ctx); err != nil || n != 0 {
					t.Fatalf("second RotateDueKeys = %d, %v; want 0", n, err)
				}
				checkRotatedOnce(t, e, md.KeyId, blob)
				wantStates(t, e, md.KeyId, kms.VersionActive, kms.VersionDestroyed, kms.VersionActive)
				if _, err := e.svc.RotateKeyOnDemand(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)}); err != nil {
					t.Fatalf("RotateKeyOnDemand after the pass: %v", err)
				}

				// Nothing left: an idle pass does not touch the token.
				before, _ = searches(inner)
				wantReport(t, settle(t, e), kms.ReconcileReport{})
				if n, _ := searches(inner); n != before {
					t.Fatalf("an idle pass made %d token searches", n-before)
				}
			})
			t.Run("AfterObject", func(t *testing.T) {
				inner := newDev(t)
				e := newEnv(t, func(tb testing.TB) hsm.Device { return scanGuard{inner, tb} })
				md, blob := dueKey(t, e)
				cutScheduledRotation(t, e, "object")
				onDemandConflicts(t, e, md.KeyId)
				e.clock.Advance(kms.CreateIntentGrace)
				wantReport(t, settle(t, e), kms.ReconcileReport{CompletedCreates: 1})
				if n, err := e.svc.RotateDueKeys(e.ctx); err != nil || n != 0 {
					t.Fatalf("RotateDueKeys = %d, %v; want 0 (the pass completed the rotation)", n, err)
				}
				checkRotatedOnce(t, e, md.KeyId, blob)
				if _, err := e.svc.RotateKeyOnDemand(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)}); err != nil {
					t.Fatalf("RotateKeyOnDemand after the pass: %v", err)
				}
				wantStates(t, e, md.KeyId, kms.VersionActive, kms.VersionActive, kms.VersionActive)
			})
		})
	}
}

// The scheduler's own pass settles first and then rotates: a cut scheduled
// rotation is done on the first tick after the grace, not a tick later.
func TestRotationSchedulerSettlesThenRotates(t *testing.T) {
	e := newEnv(t, fakeDevice)
	md, blob := dueKey(t, e)
	cutScheduledRotation(t, e, "intent")
	e.clock.Advance(kms.CreateIntentGrace)

	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { e.svc.RunRotationScheduler(ctx, time.Hour); close(done) }() // one pass: the one at once
	deadline := time.Now().Add(10 * time.Second)
	for len(versionStates(t, e, md.KeyId)) < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	wantStates(t, e, md.KeyId, kms.VersionActive, kms.VersionDestroyed, kms.VersionActive)
	checkRotatedOnce(t, e, md.KeyId, blob)
}

// A version left Destroying because its token object could not be
// destroyed during an HSM fault is finished by the next pass once the
// device works: for a failed scheduled rotation, and for a key the
// deletion worker deleted (the worker never looks at that key again).
func TestSettleDestroying(t *testing.T) {
	for name, newDev := range map[string]deviceFactory{"Fake": fakeDevice, "SoftHSM": softHSMDevice} {
		t.Run(name, func(t *testing.T) {
			t.Run("FailedRotation", func(t *testing.T) {
				e, flaky := flakyEnv(t, newDev)
				md, _ := dueKey(t, e)
				flaky.arm(1)
				flaky.failDestroy = true
				if n, err := e.svc.RotateDueKeys(e.ctx); n != 0 || !errors.Is(err, errGenerate) {
					t.Fatalf("RotateDueKeys = %d, %v; want the device error", n, err)
				}
				wantStates(t, e, md.KeyId, kms.VersionActive, kms.VersionDestroying)
				v2, err := e.store.GetVersion(e.ctx, md.KeyId, 2)
				if err != nil {
					t.Fatal(err)
				}

				// Still failing: logged by the scheduler, left for later.
				if rep, err := e.svc.SettleUnfinished(e.ctx); err == nil || rep.CompletedDestroys != 0 {
					t.Fatalf("pass while Destroy fails = %+v, %v; want the error", rep, err)
				}
				wantStates(t, e, md.KeyId, kms.VersionActive, kms.VersionDestroying)

				flaky.failDestroy = false
				wantReport(t, settle(t, e), kms.ReconcileReport{CompletedDestroys: 1})
				wantStates(t, e, md.KeyId, kms.VersionActive, kms.VersionDestroyed)
				if ok, err := e.device.HasObject(e.ctx, v2.BackingID); err != nil || ok {
					t.Fatalf("HasObject(v2) = %v, %v; want gone", ok, err)
				}
			})
			t.Run("DeletedKey", func(t *testing.T) {
				e, flaky := flakyEnv(t, newDev)
				md := e.createKey(t)
				if _, err := e.svc.RotateKeyOnDemand(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)}); err != nil {
					t.Fatal(err)
				}
				if _, err := e.svc.ScheduleKeyDeletion(e.ctx, &kms.ScheduleKeyDeletionInput{KeyId: ptr(md.KeyId), PendingWindowInDays: ptr(int32(7))}); err != nil {
					t.Fatal(err)
				}
				e.clock.Advance(7*day + time.Minute)
				flaky.failDestroy = true
				if _, err := e.svc.DeleteDueKeys(e.ctx); err == nil {
					t.Fatal("DeleteDueKeys succeeded although Destroy fails")
				}
				wantStates(t, e, md.KeyId, kms.VersionDestroying, kms.VersionDestroying)
				flaky.failDestroy = false
				if n, err := e.svc.DeleteDueKeys(e.ctx); n != 0 || err != nil {
					t.Fatalf("DeleteDueKeys = %d, %v; the worker does not come back to a deleted key", n, err)
				}
				wantStates(t, e, md.KeyId, kms.VersionDestroying, kms.VersionDestroying)
				wantReport(t, settle(t, e), kms.ReconcileReport{CompletedDestroys: 2})
				wantStates(t, e, md.KeyId, kms.VersionDestroyed, kms.VersionDestroyed)
				if ids, err := e.device.ObjectIDs(e.ctx); err != nil || len(ids) != 0 {
					t.Fatalf("token holds %d objects (%v), want none", len(ids), err)
				}
			})
		})
	}
}

// destroyedWrites counts the writes that made a version Destroyed.
type destroyedWrites struct {
	kms.Store
	mu sync.Mutex
	n  map[string]int // versionKey -> writes
}

func (d *destroyedWrites) count(keyID string, version int, to kms.VersionState, err error) error {
	if err == nil && to == kms.VersionDestroyed {
		d.mu.Lock()
		d.n[fmt.Sprintf("%s/%d", keyID, version)]++
		d.mu.Unlock()
	}
	return err
}

func (d *destroyedWrites) SetVersionState(ctx context.Context, keyID string, version int, to kms.VersionState) error {
	return d.count(keyID, version, to, d.Store.SetVersionState(ctx, keyID, version, to))
}

func (d *destroyedWrites) SetVersionStateIf(ctx context.Context, keyID string, version int, from, to kms.VersionState) error {
	return d.count(keyID, version, to, d.Store.SetVersionStateIf(ctx, keyID, version, from, to))
}

func (d *destroyedWrites) SetVersionStateIfID(ctx context.Context, keyID string, version int, id []byte, from, to kms.VersionState) error {
	return d.count(keyID, version, to, d.Store.SetVersionStateIfID(ctx, keyID, version, id, from, to))
}

// The deletion worker and the pass destroying the same versions at once do
// not fight: both succeed, and each version is tombstoned once (one write
// makes it Destroyed, counted once in the pass's report at most).
func TestSettleAndDeletionWorkerAtOnce(t *testing.T) {
	base, flaky := flakyEnv(t, fakeDevice)
	writes := &destroyedWrites{n: map[string]int{}}
	e := newEnvWith(t, flaky, base.store, func(c *kms.Config) { writes.Store = c.Store; c.Store = writes })
	var keys []string
	for range 4 {
		md := e.createKey(t)
		keys = append(keys, md.KeyId)
		// A version left Destroying by a failed rotation...
		flaky.arm(1)
		flaky.failDestroy = true
		if _, err := e.svc.RotateKeyOnDemand(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)}); err == nil {
			t.Fatal("the rotation succeeded")
		}
		flaky.failDestroy = false
		if _, err := e.svc.RotateKeyOnDemand(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)}); err != nil {
			t.Fatal(err)
		}
		// ...of a key whose deletion window ends.
		if _, err := e.svc.ScheduleKeyDeletion(e.ctx, &kms.ScheduleKeyDeletionInput{KeyId: ptr(md.KeyId), PendingWindowInDays: ptr(int32(7))}); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Advance(7*day + time.Minute)
	writes.mu.Lock()
	clear(writes.n)
	writes.mu.Unlock()
	var (
		wg      sync.WaitGroup
		deleted int
		rep     kms.ReconcileReport
		errs    [2]error
	)
	wg.Go(func() { rep, errs[0] = e.svc.SettleUnfinished(e.ctx) })
	wg.Go(func() { deleted, errs[1] = e.svc.DeleteDueKeys(e.ctx) })
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || deleted != len(keys) {
		t.Fatalf("pass: %v; deletion worker: %d deleted, %v", errs[0], deleted, errs[1])
	}
	for _, k := range keys {
		wantStates(t, e, k, kms.VersionDestroyed, kms.VersionDestroyed, kms.VersionDestroyed)
		for v := 1; v <= 3; v++ {
			if n := writes.n[fmt.Sprintf("%s/%d", k, v)]; n != 1 {
				t.Errorf("%s/%d was made Destroyed %d times, want once", k, v, n)
			}
		}
	}
	if rep.CompletedDestroys > 3*len(keys) {
		t.Errorf("the pass reports %d destroys of %d versions", rep.CompletedDestroys, 3*len(keys))
	}
	if ids, err := e.device.ObjectIDs(e.ctx); err != nil || len(ids) != 0 {
		t.Fatalf("token holds %d objects (%v), want none", len(ids), err)
	}
}

// downDevice is a device whose Health fails while down, and which counts
// the calls the pass would make to settle.
type downDevice struct {
	hsm.Device
	down  atomic.Bool
	calls atomic.Int32
}

func (d *downDevice) Health(ctx context.Context) error {
	if d.down.Load() {
		return fmt.Errorf("%w: token removed", hsm.ErrUnavailable)
	}
	return d.Device.Health(ctx)
}

func (d *downDevice) HasObject(ctx context.Context, id []byte) (bool, error) {
	d.calls.Add(1)
	return d.Device.HasObject(ctx, id)
}

func (d *downDevice) Destroy(ctx context.Context, id []byte) error {
	d.calls.Add(1)
	return d.Device.Destroy(ctx, id)
}

// With the HSM down the pass does nothing, says so, and settles on a later
// pass once it is back.
func TestSettleSkipsWhileHSMDown(t *testing.T) {
	dev := &downDevice{Device: hsm.NewFake()}
	e := newEnv(t, func(testing.TB) hsm.Device { return dev })
	md, _ := dueKey(t, e)
	cutScheduledRotation(t, e, "intent")
	e.clock.Advance(kms.CreateIntentGrace)
	dev.down.Store(true)
	rep, err := e.svc.SettleUnfinished(e.ctx)
	if !errors.Is(err, hsm.ErrUnavailable) || !strings.Contains(err.Error(), "skipped") || dev.calls.Load() != 0 {
		t.Fatalf("pass with the HSM down = %+v, %v, %d device calls; want skipped", rep, err, dev.calls.Load())
	}
	wantStates(t, e, md.KeyId, kms.VersionActive, kms.VersionCreating)
	dev.down.Store(false)
	wantReport(t, settle(t, e), kms.ReconcileReport{AbandonedCreates: 1, RescheduledRotations: 1})
}

// slowGenerate holds GenerateAESKey while armed, as a slow or hung HSM
// would.
type slowGenerate struct {
	hsm.Device
	armed            atomic.Bool
	entered, release chan struct{}
}

func (d *slowGenerate) GenerateAESKey(ctx context.Context, id []byte, label string) error {
	if d.armed.CompareAndSwap(true, false) {
		close(d.entered)
		<-d.release
	}
	return d.Device.GenerateAESKey(ctx, id, label)
}

// A rotation this process has in flight is never settled under it, however
// long the HSM takes, and the pass does not wait for it either: it skips
// the key whose lock is held (a hung HSM call would otherwise stop the
// scheduler), and the rotation commits its own version. Settling it would
// tombstone the new version, and RotateKeyOnDemand would report a rotation
// that never happened.
func TestSettleSkipsRotationInFlight(t *testing.T) {
	dev := &slowGenerate{Device: hsm.NewFake(), entered: make(chan struct{}), release: make(chan struct{})}
	e := newEnv(t, func(testing.TB) hsm.Device { return dev })
	md := e.createKey(t)
	dev.armed.Store(true)
	rotated := make(chan error, 1)
	go func() {
		_, err := e.svc.RotateKeyOnDemand(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)})
		rotated <- err
	}()
	<-dev.entered // v2's intent is recorded, its object being made
	e.clock.Advance(kms.CreateIntentGrace + time.Minute)
	settled := make(chan kms.ReconcileReport, 1)
	go func() {
		rep, err := e.svc.SettleUnfinished(e.ctx)
		if err != nil {
			t.Error(err)
		}
		settled <- rep
	}()
	select {
	case rep := <-settled:
		wantReport(t, rep, kms.ReconcileReport{})
	case <-time.After(10 * time.Second):
		close(dev.release)
		t.Fatal("the pass waited for a rotation in flight")
	}
	wantStates(t, e, md.KeyId, kms.VersionActive, kms.VersionCreating)
	close(dev.release)
	if err := <-rotated; err != nil {
		t.Fatal(err)
	}
	wantReport(t, settle(t, e), kms.ReconcileReport{})
	wantStates(t, e, md.KeyId, kms.VersionActive, kms.VersionActive)
	rots, err := e.svc.ListKeyRotations(e.ctx, &kms.ListKeyRotationsInput{KeyId: ptr(md.KeyId)})
	if err != nil || len(rots.Rotations) != 1 || rots.Rotations[0].KeyMaterialState != "CURRENT" {
		t.Fatalf("rotations %+v, %v; want the on-demand one, current", rots, err)
	}
}

// A young intent of another kmsd, still in flight there, is left alone by
// this one's pass. Once it is older than the grace (the other kmsd's HSM is
// slow), the pass tombstones it; its creator, an Encrypt moving the key off
// an exhausted version, then does not commit or report that version: it
// destroys its object (nothing refers to it) and makes another version.
func TestSettleLeavesAnotherProcessIntent(t *testing.T) {
	open, dev, c := raceStores(t), hsm.NewFake(), newClock()
	stA := &pauseIntent{Store: open(), recorded: make(chan struct{}), resume: make(chan struct{})}
	service := func(st kms.Store) (*kms.Service, context.Context) {
		s, err := kms.New(kms.Config{Region: "us-east-1", Device: dev, Store: st, InvocationBound: 1, ReserveBlock: 1, Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		_, ctx := svcOn(t, dev, st, c) // the account and a principal
		return s, ctx
	}
	a, ctxA := service(stA)
	b, ctxB := service(open())
	ck, err := a.CreateKey(ctxA, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	keyID := ck.KeyMetadata.KeyId
	first := encryptWith(t, a, ctxA, keyID, "v1")
	enc := make(chan []byte, 1)
	go func() { // exhausts v1 (bound 1) and rotates; paused after the intent
		out, err := a.Encrypt(ctxA, &kms.EncryptInput{KeyId: &keyID, Plaintext: []byte("v2")})
		if err != nil {
			t.Errorf("A's Encrypt: %v", err)
			enc <- nil
			return
		}
		enc <- out.CiphertextBlob
	}()
	<-stA.recorded
	rep, err := b.SettleUnfinished(ctxB)
	if err != nil || fmt.Sprint(rep) != fmt.Sprint(kms.ReconcileReport{}) {
		t.Fatalf("B's pass within the grace = %+v, %v; want nothing settled", rep, err)
	}
	c.Advance(kms.CreateIntentGrace + time.Second)
	rep, err = b.SettleUnfinished(ctxB)
	if err != nil || fmt.Sprint(rep) != fmt.Sprint(kms.ReconcileReport{AbandonedCreates: 1}) {
		t.Fatalf("B's pass after the grace = %+v, %v; want A's intent tombstoned", rep, err)
	}
	close(stA.resume)
	blob := <-enc
	if blob == nil {
		t.FailNow()
	}
	st := open()
	k, err := st.GetKey(t.Context(), keyID)
	if err != nil || k.CurrentVersion != 3 {
		t.Fatalf("key = %+v, %v; want version 3 current", k, err)
	}
	v2, err := st.GetVersion(t.Context(), keyID, 2)
	if err != nil || v2.State != kms.VersionDestroyed {
		t.Fatalf("v2 = %+v, %v; want Destroyed", v2, err)
	}
	if ids, err := dev.ObjectIDs(t.Context()); err != nil || len(ids) != 2 {
		t.Fatalf("token holds %d objects (%v), want v1's and v3's", len(ids), err)
	}
	wantDecrypts(t, b, ctxB, first, "v1")
	wantDecrypts(t, b, ctxB, blob, "v2")
}

// Two kmsd on one database and token run the pass at once over intents
// without objects (scheduled rotations), intents with objects and versions
// left Destroying: each is settled exactly once, and each cut rotation is
// due again once and rotated once.
func TestSettleTwoProcessesAtOnce(t *testing.T) {
	path := t.TempDir() + "/kms.db"
	flaky := &flakyGenerate{Device: hsm.NewFake()}
	var envs []*env
	for range 2 {
		store, err := sqlstore.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		envs = append(envs, newEnvWith(t, flaky, store))
	}
	e := envs[0]
	advance := func(d time.Duration) {
		for _, x := range envs {
			x.clock.Advance(d)
		}
	}

	// Three scheduled rotations cut before their object.
	var scheduled []string
	var blobs [][]byte
	for range 3 {
		md := e.createKey(t)
		enc, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("v1")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.EnableKeyRotation(e.ctx, &kms.EnableKeyRotationInput{KeyId: ptr(md.KeyId), RotationPeriodInDays: ptr(int32(90))}); err != nil {
			t.Fatal(err)
		}
		scheduled, blobs = append(scheduled, md.KeyId), append(blobs, enc.CiphertextBlob)
	}
	advance(90 * day)
	cutScheduledRotation(t, e, "intent")

	// Two on-demand rotations cut after their object.
	var present []string
	restore := kms.SetRotationFault(func(s string) error {
		if s == "object" {
			return errors.New("killed")
		}
		return nil
	})
	for range 2 {
		md := e.createKey(t)
		if _, err := e.svc.RotateKeyOnDemand(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)}); err == nil {
			t.Fatal("the rotation was not cut")
		}
		present = append(present, md.KeyId)
	}
	restore()

	// Two versions left Destroying by failed rotations.
	var destroying []string
	for range 2 {
		md := e.createKey(t)
		flaky.arm(1)
		flaky.failDestroy = true
		if _, err := e.svc.RotateKeyOnDemand(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)}); err == nil {
			t.Fatal("the rotation succeeded")
		}
		flaky.failDestroy = false
		destroying = append(destroying, md.KeyId)
	}
	advance(kms.CreateIntentGrace)

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		total   kms.ReconcileReport
		rotated int
		start   = make(chan struct{})
	)
	for _, x := range envs {
		wg.Go(func() {
			<-start
			rep, err := x.svc.SettleUnfinished(x.ctx)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total.CompletedCreates += rep.CompletedCreates
			total.AbandonedCreates += rep.AbandonedCreates
			total.RescheduledRotations += rep.RescheduledRotations
			total.CompletedDestroys += rep.CompletedDestroys
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	wantReport(t, total, kms.ReconcileReport{
		CompletedCreates: len(present), AbandonedCreates: len(scheduled),
		RescheduledRotations: len(scheduled), CompletedDestroys: len(destroying),
	})
	for _, x := range envs {
		wg.Go(func() {
			n, err := x.svc.RotateDueKeys(x.ctx)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			rotated += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if rotated != len(scheduled) {
		t.Fatalf("%d rotations, want %d", rotated, len(scheduled))
	}
	for i, k := range scheduled {
		checkRotatedOnce(t, envs[i%2], k, blobs[i])
		wantStates(t, e, k, kms.VersionActive, kms.VersionDestroyed, kms.VersionActive)
	}
	for _, k := range present {
		wantStates(t, e, k, kms.VersionActive, kms.VersionActive)
	}
	for _, k := range destroying {
		wantStates(t, e, k, kms.VersionActive, kms.VersionDestroyed)
	}
	if ids, err := flaky.ObjectIDs(e.ctx); err != nil || len(ids) != len(scheduled)*2+len(present)*2+len(destroying) {
		t.Fatalf("token holds %d objects (%v), want %d", len(ids), err, len(scheduled)*2+len(present)*2+len(destroying))
	}
}

// failRetryAt fails the transaction that settles a failed scheduled
// rotation (abandonClaim), as a database error would.
type failRetryAt struct{ kms.Store }

func (failRetryAt) TombstoneIntentRetryAt(context.Context, string, int, kms.VersionState, time.Time) (bool, error) {
	return false, errors.New("database is locked")
}

// A scheduled rotation fails on the HSM and recording that fails too: the
// version stays Creating, and the pass settles it once the grace is over,
// without a restart; the key is due again at once and rotates.
func TestSettleFailedRotationUnsettled(t *testing.T) {
	e, flaky := flakyEnv(t, fakeDevice)
	e = newEnvWith(t, flaky, e.store, func(c *kms.Config) { c.Store = failRetryAt{c.Store} })
	md, blob := dueKey(t, e)
	flaky.arm(1)
	n, err := e.svc.RotateDueKeys(e.ctx)
	if n != 0 || !errors.Is(err, errGenerate) || !strings.Contains(err.Error(), "the settlement pass settles it") {
		t.Fatalf("RotateDueKeys = %d, %v; want the failure, left to the settlement pass", n, err)
	}
	wantStates(t, e, md.KeyId, kms.VersionActive, kms.VersionCreating)
	onDemandConflicts(t, e, md.KeyId)
	wantReport(t, settle(t, e), kms.ReconcileReport{})
	e.clock.Advance(kms.CreateIntentGrace)
	wantReport(t, settle(t, e), kms.ReconcileReport{AbandonedCreates: 1, RescheduledRotations: 1})
	if n, err := e.svc.RotateDueKeys(e.ctx); err != nil || n != 1 {
		t.Fatalf("RotateDueKeys after the pass = %d, %v; want 1", n, err)
	}
	checkRotatedOnce(t, e, md.KeyId, blob)
	wantStates(t, e, md.KeyId, kms.VersionActive, kms.VersionDestroyed, kms.VersionActive)
}

package kms_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"hsmkms/hsm"
	"hsmkms/kms"
)

// These tests make GenerateAESKey fail (no crash) in a scheduled rotation:
// the key must be due again after kms.RotationRetryBackoff, not a period
// later.

var errGenerate = errors.New("hsm: C_GenerateKey: CKR_DEVICE_ERROR")

// flakyGenerate fails GenerateAESKey (and, with failDestroy, Destroy)
// while armed, and counts the calls that reach GenerateAESKey.
type flakyGenerate struct {
	hsm.Device
	mu          sync.Mutex
	failures    int // calls still to fail; < 0: every call
	failDestroy bool
	generates   int
	onGenerate  func() // called before a failing GenerateAESKey returns
	err         error  // what a failing GenerateAESKey returns (nil: errGenerate)
}

func (d *flakyGenerate) GenerateAESKey(ctx context.Context, id []byte, label string) error {
	d.mu.Lock()
	d.generates++
	fail := d.failures != 0
	if d.failures > 0 {
		d.failures--
	}
	hook, err := d.onGenerate, d.err
	d.mu.Unlock()
	if err == nil {
		err = errGenerate
	}
	if !fail {
		return d.Device.GenerateAESKey(ctx, id, label)
	}
	if hook != nil {
		hook()
	}
	return err
}

func (d *flakyGenerate) Destroy(ctx context.Context, id []byte) error {
	d.mu.Lock()
	fail := d.failDestroy
	d.mu.Unlock()
	if fail {
		return errors.New("hsm: C_FindObjectsInit: CKR_DEVICE_REMOVED")
	}
	return d.Device.Destroy(ctx, id)
}

func (d *flakyGenerate) arm(failures int) {
	d.mu.Lock()
	d.failures, d.generates = failures, 0
	d.mu.Unlock()
}

func (d *flakyGenerate) generateCalls() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.generates
}

func flakyEnv(t *testing.T, dev deviceFactory) (*env, *flakyGenerate) {
	t.Helper()
	var flaky *flakyGenerate
	e := newEnv(t, func(tb testing.TB) hsm.Device {
		flaky = &flakyGenerate{Device: dev(tb)}
		return flaky
	})
	return e, flaky
}

func nextRotation(t *testing.T, e *env, keyID string) time.Time {
	t.Helper()
	st, err := e.svc.GetKeyRotationStatus(e.ctx, &kms.KeyIdInput{KeyId: ptr(keyID)})
	if err != nil || !st.KeyRotationEnabled {
		t.Fatalf("status %+v, %v; want rotation enabled", st, err)
	}
	return st.NextRotationDate.Time()
}

func versionStates(t *testing.T, e *env, keyID string) []kms.VersionState {
	t.Helper()
	vs, err := e.store.ListVersions(e.ctx, keyID)
	if err != nil {
		t.Fatal(err)
	}
	var states []kms.VersionState
	for _, v := range vs {
		states = append(states, v.State)
	}
	return states
}

func wantStates(t *testing.T, e *env, keyID string, want ...kms.VersionState) {
	t.Helper()
	got := versionStates(t, e, keyID)
	if len(got) != len(want) {
		t.Fatalf("versions %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("versions %v, want %v", got, want)
		}
	}
}

// failedPass runs a scheduler pass that must fail with errGenerate and say
// in its error (what RunRotationScheduler logs) that it retries at retry.
func failedPass(t *testing.T, e *env, retry time.Time) {
	t.Helper()
	n, err := e.svc.RotateDueKeys(e.ctx)
	if n != 0 || !errors.Is(err, errGenerate) {
		t.Fatalf("RotateDueKeys = %d, %v; want the device error", n, err)
	}
	if want := "retrying at " + retry.Format(time.RFC3339); !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
}

func TestScheduledRotationRetry(t *testing.T) {
	for name, dev := range map[string]deviceFactory{"Fake": fakeDevice, "SoftHSM": softHSMDevice} {
		t.Run(name, func(t *testing.T) {
			e, flaky := flakyEnv(t, dev)
			md, blob := dueKey(t, e)
			flaky.arm(1)
			retry := e.clock.Now().Add(kms.RotationRetryBackoff)
			failedPass(t, e, retry)
			if got := nextRotation(t, e, md.KeyId); !got.Equal(retry) {
				t.Fatalf("next rotation %v, want %v (the back-off)", got, retry)
			}
			wantStates(t, e, md.KeyId, kms.VersionActive, kms.VersionDestroyed)

			// Not due within the back-off.
			e.clock.Advance(kms.RotationRetryBackoff - time.Minute)
			if n, err := e.svc.RotateDueKeys(e.ctx); err != nil || n != 0 {
				t.Fatalf("RotateDueKeys within the back-off = %d, %v; want 0", n, err)
			}
			// Due after it: rotated, once.
			e.clock.Advance(time.Minute)
			if n, err := e.svc.RotateDueKeys(e.ctx); err != nil || n != 1 {
				t.Fatalf("RotateDueKeys after the back-off = %d, %v; want 1", n, err)
			}
			if n, err := e.svc.RotateDueKeys(e.ctx); err != nil || n != 0 {
				t.Fatalf("second RotateDueKeys = %d, %v; want 0", n, err)
			}
			checkRotatedOnce(t, e, md.KeyId, blob)
			wantStates(t, e, md.KeyId, kms.VersionActive, kms.VersionDestroyed, kms.VersionActive)
			if got, want := nextRotation(t, e, md.KeyId), e.clock.Now().Add(90*day); !got.Equal(want) {
				t.Fatalf("next rotation %v, want a period from the retry, %v", got, want)
			}
		})
	}
}

// The failed creation made the object before failing (a lost reply): it is
// destroyed, and the retry rotates.
func TestScheduledRotationRetryLostReply(t *testing.T) {
	dev := &lostReplyDevice{Device: hsm.NewFake()}
	e := newEnv(t, func(testing.TB) hsm.Device { return dev })
	md, blob := dueKey(t, e)
	dev.fail = true
	retry := e.clock.Now().Add(kms.RotationRetryBackoff)
	if n, err := e.svc.RotateDueKeys(e.ctx); n != 0 || err == nil || !strings.Contains(err.Error(), "retrying at "+retry.Format(time.RFC3339)) {
		t.Fatalf("RotateDueKeys = %d, %v; want the failure and its retry time", n, err)
	}
	dev.fail = false
	if ids, err := dev.ObjectIDs(e.ctx); err != nil || len(ids) != 1 {
		t.Fatalf("token holds %d objects (%v), want 1: the failed version's object must be destroyed", len(ids), err)
	}
	e.clock.Advance(kms.RotationRetryBackoff)
	if n, err := e.svc.RotateDueKeys(e.ctx); err != nil || n != 1 {
		t.Fatalf("RotateDueKeys after the back-off = %d, %v; want 1", n, err)
	}
	checkRotatedOnce(t, e, md.KeyId, blob)
}

// An HSM down for hours: one attempt, hence one tombstoned version, per
// back-off, however often the scheduler runs.
func TestScheduledRotationRetryOutage(t *testing.T) {
	e, flaky := flakyEnv(t, fakeDevice)
	md, blob := dueKey(t, e)
	flaky.arm(-1)
	start := e.clock.Now()
	const passes = 3
	for attempt := range passes {
		failedPass(t, e, e.clock.Now().Add(kms.RotationRetryBackoff))
		rows := len(versionStates(t, e, md.KeyId))
		// The scheduler's default interval is a minute.
		for range 59 {
			e.clock.Advance(time.Minute)
			if n, err := e.svc.RotateDueKeys(e.ctx); err != nil || n != 0 {
				t.Fatalf("pass within the back-off = %d, %v; want 0", n, err)
			}
		}
		if got := len(versionStates(t, e, md.KeyId)); got != rows {
			t.Fatalf("attempt %d: %d version rows after passes within the back-off, want %d", attempt, got, rows)
		}
		e.clock.Advance(time.Minute)
	}
	if got := flaky.generateCalls(); got != passes {
		t.Fatalf("%d GenerateAESKey calls in %v, want %d", got, e.clock.Now().Sub(start), passes)
	}
	wantStates(t, e, md.KeyId, kms.VersionActive, kms.VersionDestroyed, kms.VersionDestroyed, kms.VersionDestroyed)

	// The HSM is back: the next pass rotates.
	flaky.arm(0)
	if n, err := e.svc.RotateDueKeys(e.ctx); err != nil || n != 1 {
		t.Fatalf("RotateDueKeys once the HSM is back = %d, %v; want 1", n, err)
	}
	checkRotatedOnce(t, e, md.KeyId, blob)
}

// What the schedule became during the failed attempt decides whether the
// key is due again, as for a crash (TestScheduledRotationCrashSettings).
func TestScheduledRotationRetrySettings(t *testing.T) {
	t.Run("RotationDisabled", func(t *testing.T) {
		e, flaky := flakyEnv(t, fakeDevice)
		md, _ := dueKey(t, e)
		flaky.onGenerate = func() {
			if _, err := e.svc.DisableKeyRotation(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)}); err != nil {
				t.Error(err)
			}
		}
		flaky.arm(1)
		n, err := e.svc.RotateDueKeys(e.ctx)
		if n != 0 || !errors.Is(err, errGenerate) || !strings.Contains(err.Error(), "not retried") {
			t.Fatalf("RotateDueKeys = %d, %v; want the failure, not retried", n, err)
		}
		if st, _ := e.svc.GetKeyRotationStatus(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)}); st.KeyRotationEnabled {
			t.Fatal("the retry enabled rotation again")
		}
		wantStates(t, e, md.KeyId, kms.VersionActive, kms.VersionDestroyed)
	})
	t.Run("RotationEnabledAgain", func(t *testing.T) {
		// Disabled and enabled again a minute later: a new schedule, kept.
		e, flaky := flakyEnv(t, fakeDevice)
		md, _ := dueKey(t, e)
		flaky.onGenerate = func() {
			if _, err := e.svc.DisableKeyRotation(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)}); err != nil {
				t.Error(err)
			}
			e.clock.Advance(time.Minute)
			if _, err := e.svc.EnableKeyRotation(e.ctx, &kms.EnableKeyRotationInput{KeyId: ptr(md.KeyId), RotationPeriodInDays: ptr(int32(90))}); err != nil {
				t.Error(err)
			}
		}
		flaky.arm(1)
		want := e.clock.Now().Add(time.Minute + 90*day)
		if n, err := e.svc.RotateDueKeys(e.ctx); n != 0 || !errors.Is(err, errGenerate) || !strings.Contains(err.Error(), "not retried") {
			t.Fatalf("RotateDueKeys = %d, %v; want the failure, not retried", n, err)
		}
		if got := nextRotation(t, e, md.KeyId); !got.Equal(want) {
			t.Fatalf("next rotation %v, want the new schedule's %v", got, want)
		}
	})
	t.Run("PeriodChanged", func(t *testing.T) {
		// A new period moves the claimed date by the difference: the
		// claim is still recognised, the due rotation is retried and the
		// new period counts from it.
		e, flaky := flakyEnv(t, fakeDevice)
		md, blob := dueKey(t, e)
		flaky.onGenerate = func() {
			if _, err := e.svc.EnableKeyRotation(e.ctx, &kms.EnableKeyRotationInput{KeyId: ptr(md.KeyId), RotationPeriodInDays: ptr(int32(180))}); err != nil {
				t.Error(err)
			}
		}
		flaky.arm(1)
		retry := e.clock.Now().Add(kms.RotationRetryBackoff)
		failedPass(t, e, retry)
		if got := nextRotation(t, e, md.KeyId); !got.Equal(retry) {
			t.Fatalf("next rotation %v, want %v", got, retry)
		}
		e.clock.Advance(kms.RotationRetryBackoff)
		if n, err := e.svc.RotateDueKeys(e.ctx); err != nil || n != 1 {
			t.Fatalf("RotateDueKeys = %d, %v; want 1", n, err)
		}
		checkRotatedOnce(t, e, md.KeyId, blob)
		st, _ := e.svc.GetKeyRotationStatus(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)})
		if *st.RotationPeriodInDays != 180 || !st.NextRotationDate.Time().Equal(e.clock.Now().Add(180*day)) {
			t.Fatalf("status %+v, want period 180 from the retry", st)
		}
	})
}

// An on-demand rotation and one at the invocation bound claim no date: a
// failure leaves the schedule as it was.
func TestFailedUnscheduledRotationLeavesSchedule(t *testing.T) {
	t.Run("OnDemand", func(t *testing.T) {
		e, flaky := flakyEnv(t, fakeDevice)
		md := e.createKey(t)
		if _, err := e.svc.EnableKeyRotation(e.ctx, &kms.EnableKeyRotationInput{KeyId: ptr(md.KeyId), RotationPeriodInDays: ptr(int32(90))}); err != nil {
			t.Fatal(err)
		}
		want := e.clock.Now().Add(90 * day)
		flaky.arm(1)
		if _, err := e.svc.RotateKeyOnDemand(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)}); err == nil {
			t.Fatal("the on-demand rotation succeeded")
		}
		if got := nextRotation(t, e, md.KeyId); !got.Equal(want) {
			t.Fatalf("next rotation %v, want %v unchanged", got, want)
		}
		wantStates(t, e, md.KeyId, kms.VersionActive, kms.VersionDestroyed)
	})
	t.Run("InvocationBound", func(t *testing.T) {
		var flaky *flakyGenerate
		e := newEnv(t, func(tb testing.TB) hsm.Device {
			flaky = &flakyGenerate{Device: hsm.NewFake()}
			return flaky
		}, func(c *kms.Config) { c.InvocationBound, c.ReserveBlock = 1, 1 })
		md := e.createKey(t)
		if _, err := e.svc.EnableKeyRotation(e.ctx, &kms.EnableKeyRotationInput{KeyId: ptr(md.KeyId), RotationPeriodInDays: ptr(int32(90))}); err != nil {
			t.Fatal(err)
		}
		want := e.clock.Now().Add(90 * day)
		if _, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("v1")}); err != nil {
			t.Fatal(err)
		}
		// The second Encrypt exhausts v1 and rotates.
		flaky.arm(1)
		if _, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("v2")}); err == nil {
			t.Fatal("Encrypt succeeded without a new version")
		}
		if flaky.generateCalls() != 1 {
			t.Fatalf("%d GenerateAESKey calls, want the bound's rotation", flaky.generateCalls())
		}
		if got := nextRotation(t, e, md.KeyId); !got.Equal(want) {
			t.Fatalf("next rotation %v, want %v unchanged", got, want)
		}
	})
}

// TestScheduledRotationRetryDestroyFails: in an outage the destroy of
// what the failed creation may have left fails too; the version is left
// Destroying for Reconcile, and the rotation is still retried after the
// back-off rather than skipped for a period.
func TestScheduledRotationRetryDestroyFails(t *testing.T) {
	e, flaky := flakyEnv(t, fakeDevice)
	md, _ := dueKey(t, e)
	flaky.arm(1)
	flaky.failDestroy = true
	retryAt := e.clock.Now().Add(time.Hour).Truncate(time.Millisecond)
	n, err := e.svc.RotateDueKeys(e.ctx)
	if n != 0 || !errors.Is(err, errGenerate) || !strings.Contains(err.Error(), "left Destroying for the reconciler; retrying at "+retryAt.Format(time.RFC3339)) {
		t.Fatalf("RotateDueKeys = %d, %v; want the failure, retried after the back-off", n, err)
	}
	wantStates(t, e, md.KeyId, kms.VersionActive, kms.VersionDestroying)
	if got := nextRotation(t, e, md.KeyId); !got.Equal(retryAt) {
		t.Fatalf("next rotation %v, want the retry at %v", got, retryAt)
	}
	flaky.failDestroy = false
	rep, err := e.svc.Reconcile(e.ctx)
	if err != nil || rep.CompletedDestroys != 1 || rep.RescheduledRotations != 0 {
		t.Fatalf("Reconcile %+v, %v", rep, err)
	}
	wantStates(t, e, md.KeyId, kms.VersionActive, kms.VersionDestroyed)
	e.clock.Advance(time.Hour)
	if n, err := e.svc.RotateDueKeys(e.ctx); n != 1 || err != nil {
		t.Fatalf("RotateDueKeys after the back-off = %d, %v; want one rotation", n, err)
	}
	wantStates(t, e, md.KeyId, kms.VersionActive, kms.VersionDestroyed, kms.VersionActive)
}

// TestScheduledRotationCutByShutdown: a rotation whose HSM call ends because
// kmsd is shutting down (its context cancelled) is no HSM fault: the key is
// due again at once, as after a crash at that point, not an hour later.
func TestScheduledRotationCutByShutdown(t *testing.T) {
	e, flaky := flakyEnv(t, fakeDevice)
	md, _ := dueKey(t, e)
	flaky.err = fmt.Errorf("hsm: waiting for a session: %w", context.Canceled)
	flaky.arm(1)
	now := e.clock.Now().Truncate(time.Millisecond)
	n, err := e.svc.RotateDueKeys(e.ctx)
	if n != 0 || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "due again at once") {
		t.Fatalf("RotateDueKeys = %d, %v; want the cancellation, due again at once", n, err)
	}
	if got := nextRotation(t, e, md.KeyId); !got.Equal(now) {
		t.Fatalf("next rotation %v, want %v (due at once)", got, now)
	}
	if n, err := e.svc.RotateDueKeys(e.ctx); n != 1 || err != nil {
		t.Fatalf("RotateDueKeys after the restart = %d, %v; want one rotation", n, err)
	}
	wantStates(t, e, md.KeyId, kms.VersionActive, kms.VersionDestroyed, kms.VersionActive)
}

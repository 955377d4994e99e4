package kms_test

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"hsmkms/hsm"
	"hsmkms/kms"
	"hsmkms/kms/sqlstore"
)

func TestRotation(t *testing.T) {
	for name, dev := range map[string]deviceFactory{"Fake": fakeDevice, "SoftHSM": softHSMDevice} {
		t.Run(name, func(t *testing.T) {
			t.Run("OnDemandVersions", func(t *testing.T) { testOnDemandVersions(t, dev) })
			t.Run("Rules", func(t *testing.T) { testRotationRules(t, dev) })
		})
	}
}

// testOnDemandVersions encrypts under versions 1..4 with on-demand
// rotations between, then decrypts everything.
func testOnDemandVersions(t *testing.T, newDevice deviceFactory) {
	e := newEnv(t, newDevice)
	md := e.createKey(t)
	var blobs [][]byte
	materials := map[string]bool{}
	current := md.CurrentKeyMaterialId
	for i := range 4 {
		if i > 0 {
			out, err := e.svc.RotateKeyOnDemand(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)})
			if err != nil || out.KeyId != md.Arn {
				t.Fatalf("RotateKeyOnDemand: %+v, %v", out, err)
			}
			desc, _ := e.svc.DescribeKey(e.ctx, &kms.DescribeKeyInput{KeyId: ptr(md.KeyId)})
			if desc.KeyMetadata.CurrentKeyMaterialId == current || desc.KeyMetadata.KeyId != md.KeyId || desc.KeyMetadata.Arn != md.Arn {
				t.Fatalf("after rotation %d: %+v", i, desc.KeyMetadata)
			}
			current = desc.KeyMetadata.CurrentKeyMaterialId
		}
		enc, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte{byte(i)}})
		if err != nil {
			t.Fatal(err)
		}
		blobs = append(blobs, enc.CiphertextBlob)
	}
	for i, b := range blobs {
		dec, err := e.svc.Decrypt(e.ctx, &kms.DecryptInput{CiphertextBlob: b})
		if err != nil || dec.Plaintext[0] != byte(i) {
			t.Fatalf("blob of version %d: %v", i+1, err)
		}
		materials[dec.KeyMaterialId] = true
	}
	if len(materials) != 4 {
		t.Fatalf("%d distinct key materials, want 4", len(materials))
	}
	// ListKeyRotations: three ON_DEMAND rotations, in pages of 2.
	p1, err := e.svc.ListKeyRotations(e.ctx, &kms.ListKeyRotationsInput{KeyId: ptr(md.KeyId), Limit: ptr(int32(2))})
	if err != nil || len(p1.Rotations) != 2 || !p1.Truncated || p1.NextMarker == "" {
		t.Fatalf("page 1: %+v, %v", p1, err)
	}
	p2, err := e.svc.ListKeyRotations(e.ctx, &kms.ListKeyRotationsInput{KeyId: ptr(md.KeyId), Limit: ptr(int32(2)), Marker: ptr(p1.NextMarker)})
	if err != nil || len(p2.Rotations) != 1 || p2.Truncated {
		t.Fatalf("page 2: %+v, %v", p2, err)
	}
	all := append(p1.Rotations, p2.Rotations...)
	for i, r := range all {
		if r.RotationType != "ON_DEMAND" || r.KeyId != md.KeyId || r.RotationDate == nil || !materials[r.KeyMaterialId] {
			t.Fatalf("rotation %d: %+v", i, r)
		}
		if want := map[bool]string{true: "CURRENT", false: "NON_CURRENT"}[i == 2]; r.KeyMaterialState != want {
			t.Fatalf("rotation %d state %s, want %s", i, r.KeyMaterialState, want)
		}
	}
	if all[2].KeyMaterialId != current {
		t.Fatal("the last rotation is not the current material")
	}
	wantCode(t, errOf(e.svc.ListKeyRotations(e.ctx, &kms.ListKeyRotationsInput{KeyId: ptr(md.KeyId), Marker: ptr("bogus")})), kms.CodeInvalidMarker)
}

func testRotationRules(t *testing.T, newDevice deviceFactory) {
	e := newEnv(t, newDevice)
	md := e.createKey(t)
	id := ptr(md.KeyId)
	st, err := e.svc.GetKeyRotationStatus(e.ctx, &kms.KeyIdInput{KeyId: id})
	if err != nil || st.KeyRotationEnabled || st.KeyId != md.Arn || st.NextRotationDate != nil {
		t.Fatalf("initial status %+v, %v", st, err)
	}
	for _, days := range []int32{89, 2561} {
		wantCode(t, errOf(e.svc.EnableKeyRotation(e.ctx, &kms.EnableKeyRotationInput{KeyId: id, RotationPeriodInDays: ptr(days)})), kms.CodeValidation)
	}
	if _, err := e.svc.EnableKeyRotation(e.ctx, &kms.EnableKeyRotationInput{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	st, _ = e.svc.GetKeyRotationStatus(e.ctx, &kms.KeyIdInput{KeyId: id})
	if !st.KeyRotationEnabled || *st.RotationPeriodInDays != 365 || !st.NextRotationDate.Time().Equal(e.clock.Now().Add(365*24*time.Hour)) {
		t.Fatalf("enabled status %+v", st)
	}
	// Changing the period moves the next date by the difference.
	if _, err := e.svc.EnableKeyRotation(e.ctx, &kms.EnableKeyRotationInput{KeyId: id, RotationPeriodInDays: ptr(int32(90))}); err != nil {
		t.Fatal(err)
	}
	st, _ = e.svc.GetKeyRotationStatus(e.ctx, &kms.KeyIdInput{KeyId: id})
	if *st.RotationPeriodInDays != 90 || !st.NextRotationDate.Time().Equal(e.clock.Now().Add(90*24*time.Hour)) {
		t.Fatalf("status after period change %+v", st)
	}
	// Disabled keys: DisabledException, status still readable.
	if _, err := e.svc.DisableKey(e.ctx, &kms.KeyIdInput{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, errOf(e.svc.EnableKeyRotation(e.ctx, &kms.EnableKeyRotationInput{KeyId: id})), kms.CodeDisabled)
	wantCode(t, errOf(e.svc.DisableKeyRotation(e.ctx, &kms.KeyIdInput{KeyId: id})), kms.CodeDisabled)
	wantCode(t, errOf(e.svc.RotateKeyOnDemand(e.ctx, &kms.KeyIdInput{KeyId: id})), kms.CodeDisabled)
	if _, err := e.svc.GetKeyRotationStatus(e.ctx, &kms.KeyIdInput{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.EnableKey(e.ctx, &kms.KeyIdInput{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.DisableKeyRotation(e.ctx, &kms.KeyIdInput{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.svc.GetKeyRotationStatus(e.ctx, &kms.KeyIdInput{KeyId: id}); st.KeyRotationEnabled {
		t.Fatal("still enabled after DisableKeyRotation")
	}
	// EXTERNAL keys cannot rotate.
	ext, err := e.svc.CreateKey(e.ctx, &kms.CreateKeyInput{Origin: ptr("EXTERNAL")})
	if err != nil {
		t.Fatal(err)
	}
	xid := ptr(ext.KeyMetadata.KeyId)
	for _, err := range []error{
		errOf(e.svc.EnableKeyRotation(e.ctx, &kms.EnableKeyRotationInput{KeyId: xid})),
		errOf(e.svc.GetKeyRotationStatus(e.ctx, &kms.KeyIdInput{KeyId: xid})),
		errOf(e.svc.RotateKeyOnDemand(e.ctx, &kms.KeyIdInput{KeyId: xid})),
		errOf(e.svc.ListKeyRotations(e.ctx, &kms.ListKeyRotationsInput{KeyId: xid})),
	} {
		if kerr := wantCode(t, err, kms.CodeUnsupportedOperation); kerr.Message != ext.KeyMetadata.Arn+" origin is EXTERNAL which is not valid for this operation." {
			t.Fatalf("message %q", kerr.Message)
		}
	}
}

func TestOnDemandRotationLimit(t *testing.T) {
	e := newEnv(t, fakeDevice)
	md := e.createKey(t)
	for i := range 25 {
		if _, err := e.svc.RotateKeyOnDemand(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)}); err != nil {
			t.Fatalf("rotation %d: %v", i+1, err)
		}
	}
	kerr := wantCode(t, errOf(e.svc.RotateKeyOnDemand(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)})), kms.CodeLimitExceeded)
	if want := "The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: " + md.Arn; kerr.Message != want {
		t.Fatalf("message %q", kerr.Message)
	}
	// The limit does not stop automatic rotation.
	if _, err := e.svc.EnableKeyRotation(e.ctx, &kms.EnableKeyRotationInput{KeyId: ptr(md.KeyId), RotationPeriodInDays: ptr(int32(90))}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(91 * 24 * time.Hour)
	if n, err := e.svc.RotateDueKeys(e.ctx); err != nil || n != 1 {
		t.Fatalf("RotateDueKeys = %d, %v", n, err)
	}
}

// TestAutomaticRotation drives the scheduler with a clock the test controls.
func TestAutomaticRotation(t *testing.T) {
	e := newEnv(t, fakeDevice)
	md := e.createKey(t)
	off := e.createKey(t) // rotation enabled, but the key gets disabled
	old, _ := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("v1")})
	for _, k := range []string{md.KeyId, off.KeyId} {
		if _, err := e.svc.EnableKeyRotation(e.ctx, &kms.EnableKeyRotationInput{KeyId: ptr(k), RotationPeriodInDays: ptr(int32(90))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.DisableKey(e.ctx, &kms.KeyIdInput{KeyId: ptr(off.KeyId)}); err != nil {
		t.Fatal(err)
	}
	if n, err := e.svc.RotateDueKeys(e.ctx); err != nil || n != 0 {
		t.Fatalf("nothing due: %d, %v", n, err)
	}
	e.clock.Advance(90*24*time.Hour - time.Second)
	if n, _ := e.svc.RotateDueKeys(e.ctx); n != 0 {
		t.Fatalf("rotated %d keys a second early", n)
	}
	e.clock.Advance(time.Second)
	if n, err := e.svc.RotateDueKeys(e.ctx); err != nil || n != 1 {
		t.Fatalf("due: %d, %v", n, err)
	}
	if n, _ := e.svc.RotateDueKeys(e.ctx); n != 0 {
		t.Fatalf("rotated again for the same due date: %d", n)
	}
	st, _ := e.svc.GetKeyRotationStatus(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)})
	if !st.NextRotationDate.Time().Equal(e.clock.Now().Add(90 * 24 * time.Hour)) {
		t.Fatalf("next rotation %v", st.NextRotationDate.Time())
	}
	list, _ := e.svc.ListKeyRotations(e.ctx, &kms.ListKeyRotationsInput{KeyId: ptr(md.KeyId)})
	if len(list.Rotations) != 1 || list.Rotations[0].RotationType != "AUTOMATIC" || !list.Rotations[0].RotationDate.Time().Equal(e.clock.Now()) {
		t.Fatalf("rotations %+v", list.Rotations)
	}
	if dec, err := e.svc.Decrypt(e.ctx, &kms.DecryptInput{CiphertextBlob: old.CiphertextBlob}); err != nil || string(dec.Plaintext) != "v1" {
		t.Fatalf("old ciphertext: %v", err)
	}
	// The disabled key stayed due; enabled again, it rotates at the next run.
	if _, err := e.svc.EnableKey(e.ctx, &kms.KeyIdInput{KeyId: ptr(off.KeyId)}); err != nil {
		t.Fatal(err)
	}
	if n, err := e.svc.RotateDueKeys(e.ctx); err != nil || n != 1 {
		t.Fatalf("re-enabled key: %d, %v", n, err)
	}
}

// TestTwoSchedulersRotateOnce runs two services, as two kmsd processes, on
// one database: for one due date each key is rotated exactly once.
func TestTwoSchedulersRotateOnce(t *testing.T) {
	envs := twoProcesses(t)
	const keys = 5
	for range keys {
		md := envs[0].createKey(t)
		if _, err := envs[0].svc.EnableKeyRotation(envs[0].ctx, &kms.EnableKeyRotationInput{KeyId: ptr(md.KeyId), RotationPeriodInDays: ptr(int32(90))}); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range envs {
		e.clock.Advance(100 * 24 * time.Hour)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
	)
	for range 3 {
		for _, e := range envs {
			wg.Go(func() {
				n, err := e.svc.RotateDueKeys(e.ctx)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				total += n
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	if total != keys {
		t.Fatalf("%d rotations for %d due keys", total, keys)
	}
	list, _ := envs[0].svc.ListKeys(envs[0].ctx, &kms.ListKeysInput{})
	for _, k := range list.Keys {
		vs, _ := envs[0].store.ListVersions(envs[0].ctx, k.KeyId)
		if len(vs) != 2 {
			t.Fatalf("key %s has %d versions, want 2", k.KeyId, len(vs))
		}
	}
}

// TestRotationCrash kills a rotation at each step (the fault hook returns
// without any clean-up, as a crash would), restarts the service on the same
// database and token, and reconciles.
func TestRotationCrash(t *testing.T) {
	for _, tc := range []struct {
		stage      string
		newCurrent bool
	}{{"intent", false}, {"object", true}, {"activated", true}} {
		t.Run(tc.stage, func(t *testing.T) {
			e := newEnv(t, softHSMDevice)
			md := e.createKey(t)
			var blobs [][]byte
			for range 2 {
				if _, err := e.svc.RotateKeyOnDemand(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)}); err != nil {
					t.Fatal(err)
				}
				enc, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("before")})
				if err != nil {
					t.Fatal(err)
				}
				blobs = append(blobs, enc.CiphertextBlob)
			}
			crash := errors.New("killed")
			restore := kms.SetRotationFault(func(stage string) error {
				if stage == tc.stage {
					return crash
				}
				return nil
			})
			_, err := e.svc.RotateKeyOnDemand(e.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)})
			restore()
			if !errors.Is(err, crash) {
				t.Fatalf("rotation: %v", err)
			}
			// Restart: a new service on the same database and token,
			// late enough for the intent to be settled.
			r := newEnvWith(t, e.device, e.store)
			r.clock.Advance(kms.CreateIntentGrace)
			rep, err := r.svc.Reconcile(r.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.OrphanObjects) != 0 || len(rep.MissingObjects) != 0 {
				t.Fatalf("report %+v", rep)
			}
			key, _ := r.store.GetKey(r.ctx, md.KeyId)
			if want := map[bool]int{false: 3, true: 4}[tc.newCurrent]; key.CurrentVersion != want {
				t.Fatalf("current version %d, want %d", key.CurrentVersion, want)
			}
			vs, _ := r.store.ListVersions(r.ctx, md.KeyId)
			for _, v := range vs {
				if v.State == kms.VersionCreating || v.State == kms.VersionDestroying {
					t.Fatalf("version %d left %s", v.Version, v.State)
				}
			}
			for _, b := range blobs {
				if _, err := r.svc.Decrypt(r.ctx, &kms.DecryptInput{CiphertextBlob: b}); err != nil {
					t.Fatalf("old ciphertext after restart: %v", err)
				}
			}
			if _, err := r.svc.RotateKeyOnDemand(r.ctx, &kms.KeyIdInput{KeyId: ptr(md.KeyId)}); err != nil {
				t.Fatalf("rotation after restart: %v", err)
			}
			if _, err := r.svc.Encrypt(r.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("after")}); err != nil {
				t.Fatal(err)
			}
			rots, _ := r.svc.ListKeyRotations(r.ctx, &kms.ListKeyRotationsInput{KeyId: ptr(md.KeyId)})
			if want := map[bool]int{false: 3, true: 4}[tc.newCurrent]; len(rots.Rotations) != want {
				t.Fatalf("%d rotations listed, want %d", len(rots.Rotations), want)
			}
		})
	}
}

// twoProcesses returns two services on one database file and one device,
// as two kmsd processes would be.
func twoProcesses(t *testing.T) []*env {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kms.db")
	device := hsm.NewFake()
	var envs []*env
	for range 2 {
		store, err := sqlstore.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		envs = append(envs, newEnvWith(t, device, store))
	}
	return envs
}

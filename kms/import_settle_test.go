package kms_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"hsmkms/hsm"
	"hsmkms/kms"
)

// These tests cover the settlement of imported key material and of
// CreateKey's first version: import attempts in flight in another kmsd, a
// late destroy of earlier material, a crash mid-import, and an activation
// that fails after the token object was made. Several run two services
// (two kmsd processes) on one database and one token.

var deviceFactories = map[string]deviceFactory{"Fake": fakeDevice, "SoftHSM": softHSMDevice}

// svcOn is a service on a shared device and store, with the test's clock.
func svcOn(t *testing.T, dev hsm.Device, st kms.Store, c *clock) (*kms.Service, context.Context) {
	t.Helper()
	s, err := kms.New(kms.Config{Region: "us-east-1", Device: dev, Store: st, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetAccount(t.Context(), testAccount); err != nil {
		if err := st.CreateAccount(t.Context(), kms.AccountRecord{ID: testAccount, CreatedAt: c.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := kms.WithPrincipal(t.Context(), kms.Principal{AccountID: testAccount, ARN: "arn:aws:iam::" + testAccount + ":root", Type: kms.PrincipalAccount, AccessKeyID: "AKIATEST"})
	return s, ctx
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)} }

func newExternalKey(t *testing.T, s *kms.Service, ctx context.Context) string {
	t.Helper()
	out, err := s.CreateKey(ctx, &kms.CreateKeyInput{Origin: ptr("EXTERNAL")})
	if err != nil {
		t.Fatal(err)
	}
	return out.KeyMetadata.KeyId
}

func newMaterial() []byte {
	m := make([]byte, 32)
	rand.Read(m)
	return m
}

// importParams returns fresh import parameters for a key.
func importParams(t *testing.T, s *kms.Service, ctx context.Context, keyID string) *kms.GetParametersForImportOutput {
	t.Helper()
	p, err := s.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: ptr(keyID),
		WrappingAlgorithm: ptr("RSAES_OAEP_SHA_1"), WrappingKeySpec: ptr("RSA_2048")})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// importMaterial imports material into the key through s, as a client does.
func importMaterial(t *testing.T, s *kms.Service, ctx context.Context, keyID string, material []byte) (*kms.ImportKeyMaterialOutput, error) {
	t.Helper()
	p := importParams(t, s, ctx, keyID)
	return s.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: ptr(keyID), ImportToken: p.ImportToken,
		EncryptedKeyMaterial: oaepSHA1(t, p.PublicKey, material), ExpirationModel: ptr("KEY_MATERIAL_DOES_NOT_EXPIRE")})
}

func mustImport(t *testing.T, s *kms.Service, ctx context.Context, keyID string, material []byte) *kms.ImportKeyMaterialOutput {
	t.Helper()
	out, err := importMaterial(t, s, ctx, keyID, material)
	if err != nil {
		t.Fatalf("ImportKeyMaterial: %v", err)
	}
	return out
}

func encryptWith(t *testing.T, s *kms.Service, ctx context.Context, keyID, text string) []byte {
	t.Helper()
	out, err := s.Encrypt(ctx, &kms.EncryptInput{KeyId: ptr(keyID), Plaintext: []byte(text)})
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	return out.CiphertextBlob
}

func wantDecrypts(t *testing.T, s *kms.Service, ctx context.Context, blob []byte, text string) {
	t.Helper()
	out, err := s.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob})
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if string(out.Plaintext) != text {
		t.Fatalf("Decrypt: plaintext %q, want %q", out.Plaintext, text)
	}
}

// pauseBeginImport pauses an ImportKeyMaterial right after its intent is
// recorded, before its token object exists, while armed.
type pauseBeginImport struct {
	kms.Store
	armed         bool
	began, resume chan struct{}
}

func (p *pauseBeginImport) BeginImport(ctx context.Context, keyID string, backingID []byte, createdAt time.Time, model string, validTo time.Time) (kms.KeyVersion, error) {
	v, err := p.Store.BeginImport(ctx, keyID, backingID, createdAt, model, validTo)
	if p.armed {
		p.armed = false
		close(p.began)
		<-p.resume
	}
	return v, err
}

// A second kmsd's start-up Reconcile, and a settlement pass, while the
// first is importing: the attempt is young and left alone. Reconcile used to
// settle imported versions in Creating with no grace at all, and a
// re-import's intent kept the first import's CreatedAt (and backing id), so
// even a grace check could not have seen it was young: the intent was
// tombstoned, and the import answered IncorrectKeyMaterialException for the
// right material.
func TestImportInFlightIsLeftToItsProcess(t *testing.T) {
	for _, reimport := range []bool{false, true} {
		name := "FirstImport"
		if reimport {
			name = "ReImportAfterDeletion"
		}
		t.Run(name, func(t *testing.T) {
			c, dev, open := newClock(), hsm.NewFake(), raceStores(t)
			stA := &pauseBeginImport{Store: open(), began: make(chan struct{}), resume: make(chan struct{})}
			a, ctxA := svcOn(t, dev, stA, c)
			b, ctxB := svcOn(t, dev, open(), c)
			keyID := newExternalKey(t, a, ctxA)
			material := newMaterial()
			var blob []byte
			if reimport {
				mustImport(t, a, ctxA, keyID, material)
				blob = encryptWith(t, a, ctxA, keyID, "before deletion")
				if _, err := a.DeleteImportedKeyMaterial(ctxA, &kms.DeleteImportedKeyMaterialInput{KeyId: ptr(keyID)}); err != nil {
					t.Fatal(err)
				}
				c.Advance(10 * time.Minute) // the first import's intent is long past the grace
			}

			p := importParams(t, a, ctxA, keyID)
			stA.armed = true
			done := make(chan error)
			go func() {
				_, err := a.ImportKeyMaterial(ctxA, &kms.ImportKeyMaterialInput{KeyId: ptr(keyID), ImportToken: p.ImportToken,
					EncryptedKeyMaterial: oaepSHA1(t, p.PublicKey, material), ExpirationModel: ptr("KEY_MATERIAL_DOES_NOT_EXPIRE")})
				done <- err
			}()
			<-stA.began
			c.Advance(time.Minute) // young: within CreateIntentGrace
			rep, err := b.Reconcile(ctxB)
			if err != nil || rep.AbandonedCreates+rep.CompletedCreates != 0 {
				t.Fatalf("B's Reconcile settled A's import in flight: %+v %v", rep, err)
			}
			rep, err = b.SettleUnfinished(ctxB)
			if err != nil || rep.AbandonedCreates+rep.CompletedCreates != 0 {
				t.Fatalf("B's settlement pass settled A's import in flight: %+v %v", rep, err)
			}
			close(stA.resume)
			if err := <-done; err != nil {
				t.Fatalf("A's import after B settled: %v", err)
			}
			if reimport {
				wantDecrypts(t, b, ctxB, blob, "before deletion")
			}
			wantDecrypts(t, b, ctxB, encryptWith(t, a, ctxA, keyID, "after"), "after")
		})
	}
}

// cutImport leaves an import attempt as a crash after BeginImport would:
// version 1 in Creating and, if material is not nil, its token object made
// from that material (with a wrapping key from real import parameters).
func cutImport(t *testing.T, s *kms.Service, ctx context.Context, st kms.Store, dev hsm.Device, c *clock, keyID string, material []byte) kms.KeyVersion {
	t.Helper()
	backing := make([]byte, hsm.BackingIDSize)
	rand.Read(backing)
	v, err := st.BeginImport(t.Context(), keyID, backing, c.Now(), "KEY_MATERIAL_DOES_NOT_EXPIRE", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if material != nil {
		p := importParams(t, s, ctx, keyID)
		wrapping := p.ImportToken[1 : 1+hsm.BackingIDSize]
		if _, err := dev.UnwrapAESKey(t.Context(), wrapping, hsm.WrapOAEPSHA1, oaepSHA1(t, p.PublicKey, material), backing, "kms:cut"); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

// An import cut by a crash is settled by the running kmsd's settlement
// pass once CreateIntentGrace old, with the check value compared: its
// object is committed if it holds the key's material, and destroyed and
// the attempt tombstoned if it holds other material or is missing. Until
// then ImportKeyMaterial answers KMSInvalidStateException.
func TestCutImportIsSettledByTheSettlementPass(t *testing.T) {
	for devName, newDev := range deviceFactories {
		t.Run(devName, func(t *testing.T) {
			for _, tc := range []struct {
				name               string
				object, other      bool
				completed, abandon int
			}{
				{name: "ObjectWithTheMaterial", object: true, completed: 1},
				{name: "ObjectWithOtherMaterial", object: true, other: true, abandon: 1},
				{name: "NoObject", abandon: 1},
			} {
				t.Run(tc.name, func(t *testing.T) {
					e := newEnv(t, newDev)
					keyID := newExternalKey(t, e.svc, e.ctx)
					material := newMaterial()
					first := mustImport(t, e.svc, e.ctx, keyID, material)
					blob := encryptWith(t, e.svc, e.ctx, keyID, "imported")
					if _, err := e.svc.DeleteImportedKeyMaterial(e.ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: ptr(keyID)}); err != nil {
						t.Fatal(err)
					}
					var cutWith []byte
					if tc.object {
						cutWith = material
						if tc.other {
							cutWith = newMaterial()
						}
					}
					v := cutImport(t, e.svc, e.ctx, e.store, e.device, e.clock, keyID, cutWith)

					// Young: left alone, and the key takes no other import.
					wantReport(t, settle(t, e), kms.ReconcileReport{})
					wantCode(t, errOf(importMaterial(t, e.svc, e.ctx, keyID, material)), kms.CodeInvalidState)

					e.clock.Advance(kms.CreateIntentGrace + time.Second)
					wantReport(t, settle(t, e), kms.ReconcileReport{CompletedCreates: tc.completed, AbandonedCreates: tc.abandon})
					got, err := e.store.GetVersion(e.ctx, keyID, 1)
					if err != nil {
						t.Fatal(err)
					}
					present, err := e.device.HasObject(e.ctx, v.BackingID)
					if err != nil {
						t.Fatal(err)
					}
					if tc.completed == 1 {
						if got.State != kms.VersionActive || !present {
							t.Fatalf("cut import of the key's material: version %s, object present %v; want Active with its object", got.State, present)
						}
					} else {
						if got.State != kms.VersionDestroyed || present {
							t.Fatalf("cut import refused: version %s, object present %v; want Destroyed without object", got.State, present)
						}
						again := mustImport(t, e.svc, e.ctx, keyID, material)
						if again.KeyMaterialId != first.KeyMaterialId {
							t.Errorf("KeyMaterialId %s after re-import, was %s", again.KeyMaterialId, first.KeyMaterialId)
						}
					}
					wantDecrypts(t, e.svc, e.ctx, blob, "imported")
					wantReport(t, settle(t, e), kms.ReconcileReport{})
					if rep, err := e.svc.Reconcile(e.ctx); err != nil || len(rep.OrphanObjects)+len(rep.MissingObjects) != 0 {
						t.Fatalf("Reconcile afterwards: %+v %v", rep, err)
					}
				})
			}
		})
	}
}

// pauseBeginDelete pauses DeleteImportedKeyMaterial after version 1 is
// marked Destroying, before its token object is destroyed, while armed.
type pauseBeginDelete struct {
	kms.Store
	armed          bool
	marked, resume chan struct{}
}

func (p *pauseBeginDelete) BeginDeleteMaterial(ctx context.Context, keyID string, expiredBy time.Time) (kms.KeyVersion, error) {
	v, err := p.Store.BeginDeleteMaterial(ctx, keyID, expiredBy)
	if p.armed {
		p.armed = false
		close(p.marked)
		<-p.resume
	}
	return v, err
}

// pauseListDestroying pauses a Reconcile right after it listed the versions
// in Destroying, before it destroys their objects.
type pauseListDestroying struct {
	kms.Store
	listed, resume chan struct{}
	once           sync.Once
}

func (p *pauseListDestroying) VersionsByState(ctx context.Context, st kms.VersionState) ([]kms.KeyVersion, error) {
	vs, err := p.Store.VersionsByState(ctx, st)
	if st == kms.VersionDestroying && len(vs) > 0 {
		p.once.Do(func() {
			close(p.listed)
			<-p.resume
		})
	}
	return vs, err
}

// A second kmsd's Reconcile sees the imported material's deletion
// unfinished and destroys that version's object late, after the deletion
// completed in the first kmsd and the same material was imported again.
// The re-import used to reuse version 1's backing id (CKA_ID), so the late
// destroy took the new token object: the key was Enabled with no material
// and no ciphertext decrypted. Each import attempt now has an object id of
// its own.
func TestLateDestroyDoesNotTakeReimportedMaterial(t *testing.T) {
	for devName, newDev := range deviceFactories {
		t.Run(devName, func(t *testing.T) {
			c, dev, open := newClock(), newDev(t), raceStores(t)
			stA := &pauseBeginDelete{Store: open(), marked: make(chan struct{}), resume: make(chan struct{})}
			stB := &pauseListDestroying{Store: open(), listed: make(chan struct{}), resume: make(chan struct{})}
			a, ctxA := svcOn(t, dev, stA, c)
			b, ctxB := svcOn(t, dev, stB, c)
			keyID := newExternalKey(t, a, ctxA)
			material := newMaterial()
			first := mustImport(t, a, ctxA, keyID, material)
			before := encryptWith(t, a, ctxA, keyID, "before")
			old, err := stA.GetVersion(t.Context(), keyID, 1)
			if err != nil {
				t.Fatal(err)
			}

			stA.armed = true
			deleted := make(chan error)
			go func() {
				_, err := a.DeleteImportedKeyMaterial(ctxA, &kms.DeleteImportedKeyMaterialInput{KeyId: ptr(keyID)})
				deleted <- err
			}()
			<-stA.marked // version 1 Destroying, its object still there
			reconciled := make(chan error)
			go func() { _, err := b.Reconcile(context.Background()); reconciled <- err }()
			select {
			case <-stB.listed: // B will destroy version 1's object by id
			case err := <-reconciled:
				t.Fatalf("B's Reconcile did not list version 1 as Destroying: %v", err)
			}
			close(stA.resume)
			if err := <-deleted; err != nil {
				t.Fatal(err)
			}
			again := mustImport(t, a, ctxA, keyID, material)
			after := encryptWith(t, a, ctxA, keyID, "after")
			close(stB.resume)
			if err := <-reconciled; err != nil {
				t.Fatal(err)
			}

			cur, err := stA.GetVersion(t.Context(), keyID, 1)
			if err != nil || cur.State != kms.VersionActive {
				t.Fatalf("version 1 after B's late destroy: %+v %v", cur, err)
			}
			if bytes.Equal(cur.BackingID, old.BackingID) {
				t.Error("the re-import reused the deleted material's backing id")
			}
			if again.KeyMaterialId != first.KeyMaterialId {
				t.Errorf("KeyMaterialId %s after re-import, was %s (AWS keeps it for the same material)", again.KeyMaterialId, first.KeyMaterialId)
			}
			// A kmsd started afterwards: both ciphertexts decrypt, nothing
			// is missing.
			st := open()
			c2, ctxC := svcOn(t, dev, st, c)
			rep, err := c2.Reconcile(ctxC)
			if err != nil || len(rep.MissingObjects) != 0 {
				t.Fatalf("Reconcile: %+v %v", rep, err)
			}
			wantDecrypts(t, c2, ctxC, before, "before")
			wantDecrypts(t, c2, ctxC, after, "after")
			wantDecrypts(t, b, ctxB, after, "after")
		})
	}
}

// failDestroy makes Destroy of one backing id fail, as during an HSM fault.
type failDestroy struct {
	hsm.Device
	mu sync.Mutex
	id []byte
}

func (f *failDestroy) set(id []byte) { f.mu.Lock(); f.id = id; f.mu.Unlock() }

func (f *failDestroy) Destroy(ctx context.Context, id []byte) error {
	f.mu.Lock()
	fail := f.id != nil && bytes.Equal(id, f.id)
	f.mu.Unlock()
	if fail {
		return errors.New("CKR_DEVICE_ERROR")
	}
	return f.Device.Destroy(ctx, id)
}

// The reviewer's first case, a deletion whose destroy failed: version 1 is
// left Destroying, and a re-import is refused (KMSInvalidStateException)
// until the settlement pass has destroyed the old object; then the same
// material imports again under a new backing id, with the same
// KeyMaterialId, and the old ciphertexts decrypt.
func TestReimportWaitsForAnUnfinishedDestroy(t *testing.T) {
	inner := hsm.NewFake()
	dev := &failDestroy{Device: inner}
	e := newEnv(t, func(testing.TB) hsm.Device { return dev })
	keyID := newExternalKey(t, e.svc, e.ctx)
	material := newMaterial()
	first := mustImport(t, e.svc, e.ctx, keyID, material)
	blob := encryptWith(t, e.svc, e.ctx, keyID, "kept")
	old, _ := e.store.GetVersion(e.ctx, keyID, 1)
	dev.set(old.BackingID)
	if _, err := e.svc.DeleteImportedKeyMaterial(e.ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: ptr(keyID)}); err == nil {
		t.Fatal("DeleteImportedKeyMaterial succeeded with the HSM failing")
	}
	if v, _ := e.store.GetVersion(e.ctx, keyID, 1); v.State != kms.VersionDestroying {
		t.Fatalf("version 1 is %s after a failed destroy, want Destroying", v.State)
	}
	wantCode(t, errOf(importMaterial(t, e.svc, e.ctx, keyID, material)), kms.CodeInvalidState)

	dev.set(nil)
	wantReport(t, settle(t, e), kms.ReconcileReport{CompletedDestroys: 1})
	if ok, _ := inner.HasObject(e.ctx, old.BackingID); ok {
		t.Fatal("the old material's object survived the settlement pass")
	}
	again := mustImport(t, e.svc, e.ctx, keyID, material)
	cur, _ := e.store.GetVersion(e.ctx, keyID, 1)
	if bytes.Equal(cur.BackingID, old.BackingID) || cur.State != kms.VersionActive {
		t.Fatalf("re-import: version %+v, old backing id %x", cur, old.BackingID)
	}
	if again.KeyMaterialId != first.KeyMaterialId {
		t.Fatalf("KeyMaterialId %s after re-import, was %s", again.KeyMaterialId, first.KeyMaterialId)
	}
	wantDecrypts(t, e.svc, e.ctx, blob, "kept")
	md, err := e.svc.DescribeKey(e.ctx, &kms.DescribeKeyInput{KeyId: ptr(keyID)})
	if err != nil || md.KeyMetadata.CurrentKeyMaterialId != first.KeyMaterialId {
		t.Fatalf("DescribeKey: %+v %v", md, err)
	}
	// Other material is still refused, as AWS does.
	wantCode(t, errOf(importMaterial(t, e.svc, e.ctx, keyID, newMaterial())), kms.CodeIncorrectKeyMaterial)
}

// Another kmsd that had the imported version cached keeps serving the key
// after the material was deleted and imported again elsewhere (its cache
// named the old backing id, whose object is gone).
func TestReimportElsewhereRefreshesCachedVersion(t *testing.T) {
	c, dev, open := newClock(), hsm.NewFake(), raceStores(t)
	a, ctxA := svcOn(t, dev, open(), c)
	b, ctxB := svcOn(t, dev, open(), c)
	keyID := newExternalKey(t, a, ctxA)
	material := newMaterial()
	mustImport(t, a, ctxA, keyID, material)
	blob := encryptWith(t, b, ctxB, keyID, "via B") // B caches version 1
	if _, err := a.DeleteImportedKeyMaterial(ctxA, &kms.DeleteImportedKeyMaterialInput{KeyId: ptr(keyID)}); err != nil {
		t.Fatal(err)
	}
	out := mustImport(t, a, ctxA, keyID, material)
	wantDecrypts(t, b, ctxB, blob, "via B")
	enc, err := b.Encrypt(ctxB, &kms.EncryptInput{KeyId: ptr(keyID), Plaintext: []byte("again via B")})
	if err != nil {
		t.Fatalf("B's Encrypt after the re-import in A: %v", err)
	}
	if md, err := b.DescribeKey(ctxB, &kms.DescribeKeyInput{KeyId: ptr(keyID)}); err != nil || md.KeyMetadata.CurrentKeyMaterialId != out.KeyMaterialId {
		t.Errorf("B's DescribeKey: %+v %v; the import's KeyMaterialId is %s", md, err, out.KeyMaterialId)
	}
	wantDecrypts(t, a, ctxA, enc.CiphertextBlob, "again via B")
}

// failActivate makes CreateKey's ActivateVersion fail: before its
// transaction, after it committed, or after a settler tombstoned the
// intent.
type failActivate struct {
	kms.Store
	mode string
}

var errDBLocked = errors.New("database is locked")

func (f *failActivate) ActivateVersion(ctx context.Context, keyID string, version, prevCurrent int) error {
	switch f.mode {
	case "after":
		if err := f.Store.ActivateVersion(ctx, keyID, version, prevCurrent); err != nil {
			return err
		}
	case "settled":
		if _, err := f.Store.TombstoneIntent(ctx, keyID, version); err != nil {
			return err
		}
		return f.Store.ActivateVersion(ctx, keyID, version, prevCurrent)
	}
	return errDBLocked
}

// CreateKey whose activation fails after the token object was generated:
// the object is destroyed and the key tombstoned, as a losing rotation's
// version is, unless the activation did commit (then the key is created).
// The object used to be left in the token as an orphan.
func TestCreateKeyActivationFailure(t *testing.T) {
	for devName, newDev := range deviceFactories {
		t.Run(devName, func(t *testing.T) {
			for _, mode := range []string{"before", "after", "settled"} {
				t.Run(mode, func(t *testing.T) {
					dev := newDev(t)
					st := raceStores(t)()
					c := newClock()
					s, ctx := svcOn(t, dev, &failActivate{Store: st, mode: mode}, c)
					objects := func() int {
						ids, err := dev.ObjectIDs(t.Context())
						if err != nil {
							t.Fatal(err)
						}
						return len(ids)
					}
					out, err := s.CreateKey(ctx, &kms.CreateKeyInput{})
					if mode == "after" {
						if err != nil || out.KeyMetadata.KeyState != "Enabled" {
							t.Fatalf("CreateKey whose activation committed: %+v %v", out, err)
						}
						blob := encryptWith(t, s, ctx, out.KeyMetadata.KeyId, "x")
						wantDecrypts(t, s, ctx, blob, "x")
						if n := objects(); n != 1 {
							t.Fatalf("%d token objects, want the key's one", n)
						}
						return
					}
					wantCode(t, err, kms.CodeInternal)
					if n := objects(); n != 0 {
						t.Fatalf("%d token objects left by a failed CreateKey", n)
					}
					keys, err := st.KeysByState(t.Context(), kms.StateDeleted)
					if err != nil || len(keys) != 1 {
						t.Fatalf("tombstoned keys: %d %v", len(keys), err)
					}
					v, err := st.GetVersion(t.Context(), keys[0].ID, 1)
					if err != nil || v.State != kms.VersionDestroyed {
						t.Fatalf("version: %+v %v", v, err)
					}
					c.Advance(kms.CreateIntentGrace + time.Second)
					if rep, err := s.Reconcile(ctx); err != nil || len(rep.OrphanObjects)+len(rep.MissingObjects) != 0 {
						t.Fatalf("Reconcile: %+v %v", rep, err)
					}
				})
			}
		})
	}
}

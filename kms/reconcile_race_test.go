package kms_test

import (
	"context"
	"path/filepath"
	"testing"

	"hsmkms/hsm"
	"hsmkms/kms"
	"hsmkms/kms/sqlstore"
)

// These tests run two services on one database and one token: a live kmsd
// (A) and a second one starting up (B), whose Reconcile must not settle
// what A is still creating.

// pauseIntent pauses A's rotation right after its intent for version 2 is
// recorded, before the token object exists.
type pauseIntent struct {
	kms.Store
	recorded, resume chan struct{}
}

func (p *pauseIntent) RecordRotationIntent(ctx context.Context, in kms.RotationIntent) (kms.KeyVersion, error) {
	v, err := p.Store.RecordRotationIntent(ctx, in)
	if err == nil && v.Version == 2 {
		close(p.recorded)
		<-p.resume
	}
	return v, err
}

// pauseListCreating pauses B's Reconcile right after it listed the versions
// in Creating.
type pauseListCreating struct {
	kms.Store
	listed, resume chan struct{}
	calls          int
}

func (p *pauseListCreating) VersionsByState(ctx context.Context, st kms.VersionState) ([]kms.KeyVersion, error) {
	vs, err := p.Store.VersionsByState(ctx, st)
	if st == kms.VersionCreating {
		// Reconcile lists Creating versions once, for every intent
		// (imports included: settleIntent).
		p.calls++
		if p.calls == 1 {
			close(p.listed)
			<-p.resume
		}
	}
	return vs, err
}

func raceStores(t *testing.T) func() *sqlstore.Store {
	path := filepath.Join(t.TempDir(), "kms.db")
	return func() *sqlstore.Store {
		s, err := sqlstore.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}

func raceService(t *testing.T, dev hsm.Device, st kms.Store, bound uint64) (*kms.Service, context.Context) {
	s, err := kms.New(kms.Config{Region: "us-east-1", Device: dev, Store: st, InvocationBound: bound, ReserveBlock: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetAccount(t.Context(), testAccount); err != nil {
		if err := st.CreateAccount(t.Context(), kms.AccountRecord{ID: testAccount}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := kms.WithPrincipal(t.Context(), kms.Principal{AccountID: testAccount, ARN: "arn:aws:iam::" + testAccount + ":root", Type: kms.PrincipalAccount, AccessKeyID: "AKIATEST"})
	return s, ctx
}

// A rotates a key at the invocation bound while B's start-up Reconcile sees
// version 2 in Creating with no token object yet. B used to tombstone v2
// unconditionally after A had activated it and encrypted under it: the
// ciphertext A returned became undecryptable and the key could not encrypt.
func TestReconcileDoesNotRaceLiveRotation(t *testing.T) {
	open := raceStores(t)
	dev := hsm.NewFake()
	stA := &pauseIntent{Store: open(), recorded: make(chan struct{}), resume: make(chan struct{})}
	stB := &pauseListCreating{Store: open(), listed: make(chan struct{}), resume: make(chan struct{})}
	a, ctxA := raceService(t, dev, stA, 1)
	b, _ := raceService(t, dev, stB, 1)

	ck, err := a.CreateKey(ctxA, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	keyID := ck.KeyMetadata.KeyId
	if _, err := a.Encrypt(ctxA, &kms.EncryptInput{KeyId: &keyID, Plaintext: []byte("v1")}); err != nil {
		t.Fatal(err)
	}
	// The second Encrypt exhausts v1 (bound 1) and rotates.
	encDone := make(chan []byte)
	go func() {
		out, err := a.Encrypt(ctxA, &kms.EncryptInput{KeyId: &keyID, Plaintext: []byte("secret under v2")})
		if err != nil {
			t.Errorf("A encrypt: %v", err)
			encDone <- nil
			return
		}
		encDone <- out.CiphertextBlob
	}()
	<-stA.recorded
	recDone := make(chan error)
	go func() { _, err := b.Reconcile(context.Background()); recDone <- err }()
	select {
	case <-stB.listed: // B saw v2 in Creating, with no token object yet
	case err := <-recDone:
		t.Fatalf("Reconcile listed Creating versions fewer times than this test expects: %v", err)
	}
	close(stA.resume)
	blob := <-encDone // A made v2's object, activated it, encrypted under it
	if blob == nil {
		t.FailNow()
	}
	close(stB.resume)
	if err := <-recDone; err != nil {
		t.Fatal(err)
	}
	v2, err := stA.Store.GetVersion(t.Context(), keyID, 2)
	if err != nil || v2.State != kms.VersionActive {
		t.Fatalf("v2 after B's Reconcile: %+v %v, want Active", v2, err)
	}

	// A restarts (fresh caches) on the same database and token.
	c, ctxC := raceService(t, dev, open(), 1<<32)
	if _, err := c.Decrypt(ctxC, &kms.DecryptInput{CiphertextBlob: blob}); err != nil {
		t.Errorf("ciphertext A returned under v2 no longer decrypts: %v", err)
	}
	if _, err := c.Encrypt(ctxC, &kms.EncryptInput{KeyId: &keyID, Plaintext: []byte("x")}); err != nil {
		t.Errorf("Encrypt after restart: %v", err)
	}
}

type aGate struct {
	kms.Store
	waitB, intent, after chan struct{}
}

func (a *aGate) CreateKey(ctx context.Context, k kms.KeyRecord, v kms.KeyVersion) error {
	<-a.waitB
	err := a.Store.CreateKey(ctx, k, v)
	close(a.intent)
	<-a.after
	return err
}

type bGate struct {
	kms.Store
	listedVersions, intent, stuckListed, resume chan struct{}
}

func (b *bGate) VersionsByState(ctx context.Context, st kms.VersionState) ([]kms.KeyVersion, error) {
	vs, err := b.Store.VersionsByState(ctx, st)
	if st == kms.VersionCreating && b.listedVersions != nil {
		close(b.listedVersions)
		b.listedVersions = nil
	}
	return vs, err
}

func (b *bGate) KeysByState(ctx context.Context, st kms.KeyState) ([]kms.KeyRecord, error) {
	if st != kms.StateCreating || b.intent == nil {
		return b.Store.KeysByState(ctx, st)
	}
	<-b.intent
	b.intent = nil
	ks, err := b.Store.KeysByState(ctx, st)
	close(b.stuckListed)
	<-b.resume
	return ks, err
}

// A second kmsd starting up while the first creates a key used to tombstone
// the new, in-use key (seen in Creating with no current version), and the
// next restart's Reconcile then destroyed its material.
func TestReconcileDoesNotTombstoneKeyBeingCreated(t *testing.T) {
	open := raceStores(t)
	dev := hsm.NewFake()
	listed, intent := make(chan struct{}), make(chan struct{})
	stuck := make(chan struct{})
	stA := &aGate{Store: open(), waitB: listed, intent: intent, after: stuck}
	stB := &bGate{Store: open(), listedVersions: listed, intent: intent, stuckListed: stuck, resume: make(chan struct{})}
	a, ctxA := raceService(t, dev, stA, 1<<32)
	b, _ := raceService(t, dev, stB, 1<<32)

	recDone := make(chan error)
	go func() { _, err := b.Reconcile(context.Background()); recDone <- err }()
	ck, err := a.CreateKey(ctxA, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	keyID := ck.KeyMetadata.KeyId
	<-stB.stuckListed
	enc, err := a.Encrypt(ctxA, &kms.EncryptInput{KeyId: &keyID, Plaintext: []byte("customer data key")})
	if err != nil {
		t.Fatal(err)
	}
	close(stB.resume)
	if err := <-recDone; err != nil {
		t.Fatal(err)
	}
	k, err := stA.Store.GetKey(t.Context(), keyID)
	if err != nil || k.State != kms.StateEnabled {
		t.Fatalf("key after B's Reconcile: state %s (%v), want Enabled", k.State, err)
	}

	c, ctxC := raceService(t, dev, open(), 1<<32)
	if _, err := c.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decrypt(ctxC, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}); err != nil {
		t.Errorf("live key tombstoned by a concurrent Reconcile: %v", err)
	}
}

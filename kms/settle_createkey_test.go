package kms_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"hsmkms/hsm"
	"hsmkms/kms"
)

// A CreateKey slower than CreateIntentGrace in one kmsd (A) meets another
// kmsd's settlement pass (B). Found in review; both failed before the fix.

// gateActivate pauses the first ActivateVersion once armed.
type gateActivate struct {
	kms.Store
	armed       atomic.Bool
	at, proceed chan struct{}
}

func (g *gateActivate) ActivateVersion(ctx context.Context, keyID string, version, prev int) error {
	if g.armed.CompareAndSwap(true, false) {
		close(g.at)
		<-g.proceed
	}
	return g.Store.ActivateVersion(ctx, keyID, version, prev)
}

// gateUpdate pauses the first UpdateKey once armed.
type gateUpdate struct {
	kms.Store
	armed       atomic.Bool
	at, proceed chan struct{}
}

func (g *gateUpdate) UpdateKey(ctx context.Context, keyID string, fn func(*kms.KeyRecord) error) (kms.KeyRecord, error) {
	if g.armed.CompareAndSwap(true, false) {
		close(g.at)
		<-g.proceed
	}
	return g.Store.UpdateKey(ctx, keyID, fn)
}

// TestSettlerLosingToCreatorLeavesNoEmptyEnabledKey: B finds A's object and
// is about to activate it when A (its generation reply lost) discards the
// version and is about to tombstone the key. B's activation loses; it must
// not enable the key anyway, which would leave an Enabled key with no
// current version that nothing settles again and no request can use, while
// A's client was told CreateKey failed.
func TestSettlerLosingToCreatorLeavesNoEmptyEnabledKey(t *testing.T) {
	dev := hsm.NewFake()
	hold := newHold(dev, true, true) // object made, reply lost
	open, c := raceStores(t), newClock()
	ga := &gateUpdate{Store: open(), at: make(chan struct{}), proceed: make(chan struct{})}
	gb := &gateActivate{Store: open(), at: make(chan struct{}), proceed: make(chan struct{})}
	a, ctxA := svcOn(t, hold, ga, c)
	b, ctxB := svcOn(t, dev, gb, c)
	hold.armed.Store(true)
	done := make(chan error, 1)
	go func() { _, err := a.CreateKey(ctxA, &kms.CreateKeyInput{}); done <- err }()
	<-hold.entered
	c.Advance(kms.CreateIntentGrace + time.Second)
	gb.armed.Store(true)
	bdone := make(chan error, 1)
	go func() { _, err := b.SettleUnfinished(ctxB); bdone <- err }()
	<-gb.at // B found the object and is about to activate it
	ga.armed.Store(true)
	close(hold.release) // A: lost reply -> claim the version, destroy the object, then tombstone the key
	<-ga.at             // A discarded the version; before it tombstones the key
	close(gb.proceed)
	if err := <-bdone; err != nil {
		t.Fatal(err)
	}
	close(ga.proceed)
	if err := <-done; err == nil {
		t.Fatal("CreateKey succeeded although its version was discarded")
	}
	keys, err := open().KeysByState(t.Context(), kms.StateEnabled)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.CurrentVersion == 0 {
			t.Errorf("key %s is Enabled with no current version", k.ID)
		}
	}
}

// advanceOnList moves the clock forward during a pass, between its
// young-intent filter and its stuck-key step, as a long pass would.
type advanceOnList struct {
	kms.Store
	armed atomic.Bool
	c     *clock
}

func (s *advanceOnList) VersionsByState(ctx context.Context, st kms.VersionState) ([]kms.KeyVersion, error) {
	if st == kms.VersionDestroying && s.armed.CompareAndSwap(true, false) {
		s.c.Advance(2 * time.Second)
	}
	return s.Store.VersionsByState(ctx, st)
}

// TestSettlePassStraddlingTheGrace: B's pass starts one second before A's
// intent is old enough and reaches the key record after the grace. It must
// not tombstone the key while its first version is still Creating; A's
// CreateKey then completes with an Enabled key (before: the key was marked
// Deleted and CreateKey still answered success with KeyState Deleted).
func TestSettlePassStraddlingTheGrace(t *testing.T) {
	dev := hsm.NewFake()
	hold := newHold(dev, false, false) // a slow generation in A
	open, c := raceStores(t), newClock()
	bs := &advanceOnList{Store: open(), c: c}
	a, ctxA := svcOn(t, hold, open(), c)
	b, ctxB := svcOn(t, dev, bs, c)
	hold.armed.Store(true)
	type res struct {
		out *kms.CreateKeyOutput
		err error
	}
	done := make(chan res, 1)
	go func() { out, err := a.CreateKey(ctxA, &kms.CreateKeyInput{}); done <- res{out, err} }()
	<-hold.entered
	c.Advance(kms.CreateIntentGrace - time.Second)
	bs.armed.Store(true)
	if _, err := b.SettleUnfinished(ctxB); err != nil {
		t.Fatal(err)
	}
	close(hold.release)
	r := <-done
	if r.err != nil {
		t.Fatalf("CreateKey: %v", r.err)
	}
	k, err := open().GetKey(t.Context(), r.out.KeyMetadata.KeyId)
	if err != nil {
		t.Fatal(err)
	}
	if r.out.KeyMetadata.KeyState != string(kms.StateEnabled) || k.State != kms.StateEnabled || k.CurrentVersion != 1 {
		t.Fatalf("CreateKey answered %s; stored %s with current version %d", r.out.KeyMetadata.KeyState, k.State, k.CurrentVersion)
	}
	id := r.out.KeyMetadata.KeyId
	if _, err := a.Encrypt(ctxA, &kms.EncryptInput{KeyId: &id, Plaintext: []byte("x")}); err != nil {
		t.Fatalf("Encrypt with the new key: %v", err)
	}
}

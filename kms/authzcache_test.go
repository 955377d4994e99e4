package kms_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"hsmkms/hsm"
	"hsmkms/kms"
)

// gateIdentity pauses the first IdentityPolicies read, once armed, after
// it has read.
type gateIdentity struct {
	kms.Store
	armed       atomic.Bool
	at, proceed chan struct{}
}

func (g *gateIdentity) IdentityPolicies(ctx context.Context, arn string) ([]kms.NamedPolicy, error) {
	pols, err := g.Store.IdentityPolicies(ctx, arn)
	if g.armed.CompareAndSwap(true, false) {
		close(g.at)
		<-g.proceed
	}
	return pols, err
}

// TestDetachedPolicyNotCachedByRacingRead: a request that read a user's
// identity policies just before they were detached must not put what it
// read in the cache: the next request is decided on what is stored now.
// Before, the stale Allow stayed in force for the cache's lifetime (30 s).
func TestDetachedPolicyNotCachedByRacingRead(t *testing.T) {
	store := raceStores(t)()
	gate := &gateIdentity{Store: store, at: make(chan struct{}), proceed: make(chan struct{})}
	svc, root := svcOn(t, hsm.NewFake(), gate, newClock())
	e := &env{svc: svc, store: store, clock: newClock(), ctx: root}
	bobARN := "arn:aws:iam::" + testAccount + ":user/bob"
	bob := e.identity(t, testAccount, "bob", allowPolicy(`"kms:ListKeys"`))
	policies, err := store.IdentityPolicies(t.Context(), bobARN)
	if err != nil || len(policies) != 1 {
		t.Fatalf("bob's policies: %v, %v", policies, err)
	}

	gate.armed.Store(true)
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = svc.ListKeys(bob, &kms.ListKeysInput{}) }) // reads the Allow, then waits
	<-gate.at
	if err := store.DeleteIdentityPolicy(t.Context(), bobARN, policies[0].Name); err != nil {
		t.Fatal(err)
	}
	svc.InvalidateIdentity(bobARN) // what AdminDetachIdentityPolicy does after the store
	close(gate.proceed)
	wg.Wait()

	_, err = svc.ListKeys(bob, &kms.ListKeysInput{})
	wantDenied(t, err, "because no identity-based policy allows the kms:ListKeys action")
}

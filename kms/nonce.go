package kms

// Nonce safety.
//
// AES-GCM with random 96-bit IVs stays within NIST SP 800-38D's collision
// bound (probability <= 2^-32) only for at most 2^32 encryptions under one
// key. The service makes overrunning that impossible:
//
//   - Every key version has a counter in the database, Reserved, that only
//     grows. Before a process encrypts with a version it reserves a block of
//     invocations (ReserveBlock, default 2^16) with one atomic conditional
//     update that never lets Reserved pass the bound (InvocationBound,
//     default 2^32). The process then spends the block from memory.
//   - So the number of encryptions ever made with a version is at most its
//     Reserved counter, whatever happens: a crash forfeits the rest of a
//     block (it is never handed out again), and several kmsd processes on one
//     database get disjoint blocks.
//   - When a version's counter reaches the bound, the next Encrypt creates a
//     new version: a new AES key generated inside the HSM, recorded with the
//     same intent/commit rule as CreateKey, and made current with a
//     conditional update so that concurrent processes agree on one winner.
//     Older versions stay decryptable; the key id and ARN do not change.
//
// Decryption does not consume invocations: only encryption can repeat an IV.

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// nonceGuard holds the in-memory remainders of reserved blocks.
type nonceGuard struct {
	bound, block uint64
	counters     sync.Map // versionKey -> *invocationBlock
}

type invocationBlock struct {
	mu        sync.Mutex
	next, end uint64 // invocations [next, end) are reserved and unused
	exhausted bool   // the version reached the bound
}

// takeInvocation returns the version of key to encrypt with after counting
// one invocation against it, moving the key to a new version first when the
// current one has reached the bound. It returns the key as it was used (its
// CurrentVersion may be newer than the one passed in).
func (s *Service) takeInvocation(ctx context.Context, key KeyRecord) (KeyRecord, KeyVersion, error) {
	// Each round that fails to take an invocation means others took the
	// rest of the version, so every round is global progress; the cap only
	// guards against a store that misbehaves.
	for range 100 {
		if err := ctx.Err(); err != nil {
			return key, KeyVersion{}, err
		}
		ok, err := s.takeFromBlock(ctx, key.ID, key.CurrentVersion)
		if err != nil {
			return key, KeyVersion{}, err
		}
		if ok {
			v, err := s.activeVersion(ctx, key.ID, key.CurrentVersion)
			if err != nil {
				return key, KeyVersion{}, fmt.Errorf("current version %d of key %s: %w", key.CurrentVersion, key.ID, err)
			}
			return key, v, nil
		}
		if key, err = s.rotateExhausted(ctx, key); err != nil {
			if errors.Is(err, errRotationAbandoned) {
				continue // a settlement pass tombstoned the new version: make another
			}
			return key, KeyVersion{}, err
		}
	}
	return key, KeyVersion{}, fmt.Errorf("key %s: could not settle on a key version with invocations left", key.ID)
}

// takeFromBlock counts one invocation of a version; false means the version
// has reached the bound.
func (s *Service) takeFromBlock(ctx context.Context, keyID string, version int) (bool, error) {
	b, _ := s.nonce.counters.LoadOrStore(versionKey(keyID, version), &invocationBlock{})
	blk := b.(*invocationBlock)
	blk.mu.Lock()
	defer blk.mu.Unlock()
	if blk.next < blk.end {
		blk.next++
		return true, nil
	}
	if blk.exhausted {
		return false, nil
	}
	n := s.nonce.block
	start, err := s.store.ReserveInvocations(ctx, keyID, version, n, s.nonce.bound)
	if errors.Is(err, ErrStoreExhausted) {
		// Less than a block is left below the bound: take exactly what is
		// left, so the bound is reached, never passed.
		v, gerr := s.store.GetVersion(ctx, keyID, version)
		if gerr != nil {
			return false, gerr
		}
		if v.Reserved >= s.nonce.bound {
			blk.exhausted = true
			return false, nil
		}
		n = s.nonce.bound - v.Reserved
		start, err = s.store.ReserveInvocations(ctx, keyID, version, n, s.nonce.bound)
		if errors.Is(err, ErrStoreExhausted) {
			// Another process took the rest first; look again next round.
			return false, nil
		}
	}
	if err != nil {
		return false, err
	}
	blk.next, blk.end = start+1, start+n
	return true, nil
}

// rotateExhausted makes a new version current for a key whose current
// version reached the bound, unless another goroutine or process already
// did; it returns the key as now stored.
func (s *Service) rotateExhausted(ctx context.Context, key KeyRecord) (KeyRecord, error) {
	unlock := s.lockKey(key.ID)
	defer unlock()
	fresh, err := s.store.GetKey(ctx, key.ID)
	if err != nil {
		return key, err
	}
	if fresh.CurrentVersion != key.CurrentVersion {
		return fresh, nil
	}
	s.log.InfoContext(ctx, "key version reached its invocation bound; moving to a new version",
		"key_id", key.ID, "version", key.CurrentVersion, "bound", s.nonce.bound)
	return s.addVersion(ctx, fresh)
}

// addVersion creates the next version of a key inside the HSM and makes it
// current: intent, token object, conditional commit. It is rotateKey
// (rotation.go) with an AUTOMATIC rotation record, so the versions made at
// the bound show in ListKeyRotations like any other rotation.
func (s *Service) addVersion(ctx context.Context, key KeyRecord) (KeyRecord, error) {
	return s.rotateKey(ctx, key, RotationIntent{Type: RotationAutomatic})
}

// Prewarm reserves a block of invocations for the current version of every
// usable key in one durable write, and caches those versions, so that after
// a start the first Encrypt of each key does not wait for a write of its
// own. Each start forfeits the unused rest of those blocks (1/65,536 of a
// version's life per start with the default block), which only moves the
// rotation at the bound earlier. kmsd runs it once after Reconcile, in the
// background.
func (s *Service) Prewarm(ctx context.Context) (int, error) {
	rs, err := s.store.ReserveForCurrentVersions(ctx, s.nonce.block, s.nonce.bound)
	if err != nil {
		return 0, err
	}
	for _, r := range rs {
		vk := versionKey(r.Version.KeyID, r.Version.Version)
		blk := &invocationBlock{next: r.Start, end: r.Start + s.nonce.block}
		// A request that raced ahead keeps its own block; this one is
		// then simply forfeited.
		s.nonce.counters.LoadOrStore(vk, blk)
		s.versions.LoadOrStore(vk, r.Version)
	}
	// The same for what authorization reads per key (policy, grants, tags,
	// aliases): one key at a time, but before the requests need it.
	for _, r := range rs {
		if ctx.Err() != nil {
			break
		}
		if k, err := s.store.GetKey(ctx, r.Version.KeyID); err == nil {
			_, _ = s.keyAuthz(ctx, k)
		}
	}
	return len(rs), nil
}

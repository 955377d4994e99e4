package kms

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"hsmkms/hsm"
)

// discardIntent settles a version in Creating that its creator gives up:
// its token object could not be made or imported, or another version won,
// or its activation failed. Other processes may be settling the same
// version (settle.go: after CreateIntentGrace, a settler commits a version
// whose object it finds), so every step is a compare-and-set on the state
// and the backing id, and nothing is destroyed before the version is
// claimed for destruction:
//
//  1. Creating -> Destroying; then the object is destroyed (one never made
//     is fine) and the version tombstoned (tombstoneDestroying). If that
//     destroy fails, the version stays Destroying and the settlement pass
//     finishes it.
//  2. If the version is no longer this attempt in Creating, see
//     afterLostClaim.
//
// A database error leaves the version in Creating for the settlement pass,
// which commits it if its object exists: the same outcome as a crash here.
// committed reports that a settler committed the version (nothing was
// destroyed); discard says more.
func (s *Service) discardIntent(ctx context.Context, v KeyVersion) (committed bool) {
	return s.discard(ctx, v) == discardCommitted
}

// discardOutcome is what became of a version its creator gave up.
type discardOutcome int

const (
	// discardDone: this creator claimed it and destroyed its object (or
	// left it Destroying for the settlement pass).
	discardDone discardOutcome = iota
	// discardCommitted: a settler found its object and committed it first;
	// it is kept, and in use.
	discardCommitted
	// discardSettled: a settler tombstoned it (or is destroying it) first.
	discardSettled
	// discardUndecided: a database error; it is left to the settlement
	// pass.
	discardUndecided
)

// discard is discardIntent with the outcome.
func (s *Service) discard(ctx context.Context, v KeyVersion) discardOutcome {
	ctx = context.WithoutCancel(ctx)
	err := s.store.SetVersionStateIfID(ctx, v.KeyID, v.Version, v.BackingID, VersionCreating, VersionDestroying)
	if err == nil {
		if _, err := s.tombstoneDestroying(ctx, v); err != nil { // settle.go
			s.log.WarnContext(ctx, "discarding version: destroying the token object failed; the version is left Destroying for the settlement pass",
				"key_id", v.KeyID, "version", v.Version, "err", err)
		}
		return discardDone
	}
	return s.afterLostClaim(ctx, v, err)
}

// afterLostClaim is what a creator does when its claim of version v
// (Creating -> Destroying, or TombstoneIntentRetryAt) failed with err:
//
//   - not a conflict (a database error): nothing, the settlement pass
//     settles the version (undecided);
//   - Active: a settler committed it, and it is kept (committed);
//   - Destroying: someone else is destroying it (settled);
//   - Destroyed, or version 1 of an imported key now backed by another
//     attempt: a settler tombstoned it without finding its object, which
//     this creator may have made since. Nothing refers to that backing id
//     any more and nothing ever will again (backing ids are never reused,
//     not even by a re-import), so the object is destroyed here rather than
//     left as an orphan (settled).
func (s *Service) afterLostClaim(ctx context.Context, v KeyVersion, err error) discardOutcome {
	ctx = context.WithoutCancel(ctx)
	warn := func(msg string, err error) {
		s.log.WarnContext(ctx, "discarding version: "+msg, "key_id", v.KeyID, "version", v.Version, "err", err)
	}
	if !errors.Is(err, ErrStoreConflict) {
		warn("marking it Destroying failed; the settlement pass will settle it", err)
		return discardUndecided
	}
	cur, err := s.store.GetVersion(ctx, v.KeyID, v.Version)
	if err != nil {
		warn("reading it back failed; the settlement pass will settle it", err)
		return discardUndecided
	}
	if bytes.Equal(cur.BackingID, v.BackingID) && cur.State != VersionDestroyed {
		switch cur.State {
		case VersionActive:
			return discardCommitted
		case VersionDestroying:
			return discardSettled
		}
		return discardUndecided // still Creating: the claim raced nothing we know of
	}
	if err := s.device.Destroy(ctx, v.BackingID); err != nil && !errors.Is(err, hsm.ErrKeyNotFound) {
		warn("destroying the token object of a version settled elsewhere failed; Reconcile reports it as an orphan", err)
	}
	return discardSettled
}

// materialID is the KeyMaterialId of version v of key k. AWS derives the
// id of imported key material from the key id and the material, so
// re-importing the same material gives the same id. An EXTERNAL key here
// only ever takes one material (the check value pins it: import.go), so the
// key id and version name it; its backing id, new at every import attempt
// (ImportStore.BeginImport), must not. Other keys' ids come from the
// backing id (keyMaterialID).
func materialID(k KeyRecord, v KeyVersion) string {
	if k.Origin != originExternal {
		return keyMaterialID(v.BackingID)
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "hsmkms imported key material\x00%s\x00%d", k.ID, v.Version))
	return hex.EncodeToString(sum[:])
}

// refreshVersion is for a device call that found no token object for
// version v, which may come from this process's cache (activeVersion):
// version 1 of an imported key gets a new backing id when its material is
// re-imported, possibly by another kmsd sharing the database, and the
// cached one then names a destroyed object. It drops the cache entry and
// returns the stored version, and true if that is Active with another
// backing id, to retry with. Any other error, or the same backing id (the
// object really is missing), gives false.
func (s *Service) refreshVersion(ctx context.Context, v KeyVersion, err error) (KeyVersion, bool) {
	if !errors.Is(err, hsm.ErrKeyNotFound) {
		return v, false
	}
	s.versions.Delete(versionKey(v.KeyID, v.Version))
	cur, err := s.activeVersion(ctx, v.KeyID, v.Version)
	if err != nil || bytes.Equal(cur.BackingID, v.BackingID) {
		return v, false
	}
	return cur, true
}

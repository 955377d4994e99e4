package kms

import (
	"errors"
	"time"
)

// CreateIntentGrace is how old a Creating intent (a key or version whose
// token object may still be in the making) must be before Reconcile or the
// settlement pass (settle.go) settles it. Either may run in one kmsd while
// another serves on the same database and token: an intent younger than
// this may belong to a creation in flight there (GenerateAESKey of RSA-4096
// pairs can take seconds; nothing takes minutes), and settling it would
// tombstone a key that is being returned to a client, or destroy a version
// that is about to encrypt.
const CreateIntentGrace = 2 * time.Minute

// errSettled makes a conditional UpdateKey a no-op: the record changed since
// Reconcile listed it, so someone else settled it.
var errSettled = errors.New("settled concurrently")

// youngIntent reports whether an intent created at t is within the grace
// period.
func (s *Service) youngIntent(t time.Time) bool {
	return s.now().Sub(t) < CreateIntentGrace
}

// tombstoneCreating marks a key Deleted only if it is still Creating with no
// current version; concurrent settlement is not an error.
func tombstoneCreating(k *KeyRecord) error {
	if k.State != StateCreating || k.CurrentVersion != 0 {
		return errSettled
	}
	k.State = StateDeleted
	return nil
}

// settleStuck moves a key still in Creating to Enabled (its first version
// was activated) or Deleted; concurrent settlement is not an error.
func settleStuck(k *KeyRecord) error {
	if k.State != StateCreating {
		return errSettled
	}
	if k.CurrentVersion > 0 {
		k.State = StateEnabled
	} else {
		k.State = StateDeleted
	}
	return nil
}

// enableCreating marks a key Enabled only if it is still Creating and its
// first version was made current: a settler whose activation lost to the
// creator's discard must not enable a key that has no material.
func enableCreating(k *KeyRecord) error {
	if k.State != StateCreating || k.CurrentVersion == 0 {
		return errSettled
	}
	k.State = StateEnabled
	return nil
}

// ignoreSettled drops the errors that mean another process got there
// first.
func ignoreSettled(err error) error {
	if errors.Is(err, errSettled) || errors.Is(err, ErrStoreConflict) {
		return nil
	}
	return err
}

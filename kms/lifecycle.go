package kms

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Settings kept in the store.
const (
	settingAccountID   = "default_account_id"
	settingAdminKeyID  = "bootstrap_admin_access_key_id"
	bootstrapAdminName = "admin"
)

// BootstrapResult says what Bootstrap did.
type BootstrapResult struct {
	AccountID   string
	AccessKeyID string
	// Secret is the new admin secret access key; empty when the admin already
	// existed (secrets are shown once, at creation).
	Secret  string
	Created bool
}

// Bootstrap makes sure the default account and its admin access key exist.
// On first start it creates them and returns the secret once.
func (s *Service) Bootstrap(ctx context.Context) (BootstrapResult, error) {
	// No plain-text secret stays on disk past start-up (secrets.go).
	if _, err := s.sealPlainSecrets(ctx); err != nil {
		return BootstrapResult{}, err
	}
	account, err := s.store.GetSetting(ctx, settingAccountID)
	if err == nil {
		keyID, err := s.store.GetSetting(ctx, settingAdminKeyID)
		if err != nil {
			return BootstrapResult{}, fmt.Errorf("bootstrap admin access key id: %w", err)
		}
		// Databases from before identities existed: give the admin its
		// account, user and policy records (identity_bootstrap.go).
		if err := s.ensureBootstrapIdentity(ctx, account); err != nil {
			return BootstrapResult{}, err
		}
		return BootstrapResult{AccountID: account, AccessKeyID: keyID}, nil
	}
	if !errors.Is(err, ErrStoreNotFound) {
		return BootstrapResult{}, err
	}
	if account, err = newAccountID(); err != nil {
		return BootstrapResult{}, err
	}
	// The account, user, policy and access key are stored before the
	// settings that point at them, so a crash in between leaves an unused
	// account, never a dangling setting.
	if err := s.ensureBootstrapIdentity(ctx, account); err != nil {
		return BootstrapResult{}, err
	}
	key, err := s.createAccessKey(ctx, account, userARN(account, bootstrapAdminName))
	if err != nil {
		return BootstrapResult{}, err
	}
	if err := s.store.PutSetting(ctx, settingAdminKeyID, key.ID); err != nil {
		return BootstrapResult{}, err
	}
	if err := s.store.PutSetting(ctx, settingAccountID, account); err != nil {
		return BootstrapResult{}, err
	}
	s.log.InfoContext(ctx, "bootstrap admin created", "account", account, "access_key_id", key.ID)
	return BootstrapResult{AccountID: account, AccessKeyID: key.ID, Secret: key.Secret, Created: true}, nil
}

// ResetBootstrapAdminKey replaces every access key of the bootstrap admin
// by a new one and returns it with its secret: the way back in when the
// admin's secret is lost (kmsd -reset-admin-key, run by whoever holds the
// HSM PIN and the database). The old keys are deleted first, so that the
// per-user key limit never stands in the way; if creating the new key
// then fails, running it again finishes the job. Another running kmsd may
// accept a deleted key for up to credentialTTL (15 s), from its cache.
func (s *Service) ResetBootstrapAdminKey(ctx context.Context) (BootstrapResult, error) {
	account, err := s.store.GetSetting(ctx, settingAccountID)
	if errors.Is(err, ErrStoreNotFound) {
		return BootstrapResult{}, errors.New("this database has no bootstrap admin yet: start kmsd once to create it")
	}
	if err != nil {
		return BootstrapResult{}, err
	}
	if err := s.ensureBootstrapIdentity(ctx, account); err != nil {
		return BootstrapResult{}, err
	}
	arn := userARN(account, bootstrapAdminName)
	old, err := s.store.ListAccessKeys(ctx, arn)
	if err != nil {
		return BootstrapResult{}, err
	}
	for _, k := range old {
		if err := s.store.DeleteAccessKey(ctx, k.ID); err != nil && !errors.Is(err, ErrStoreNotFound) {
			return BootstrapResult{}, fmt.Errorf("delete the admin's access key %s: %w", k.ID, err)
		}
	}
	s.invalidateCredentials()
	key, err := s.createAccessKey(ctx, account, arn)
	if err != nil {
		return BootstrapResult{}, err
	}
	if err := s.store.PutSetting(ctx, settingAdminKeyID, key.ID); err != nil {
		return BootstrapResult{}, err
	}
	s.log.WarnContext(ctx, "bootstrap admin access key reset", "account", account, "access_key_id", key.ID, "deleted_keys", len(old))
	return BootstrapResult{AccountID: account, AccessKeyID: key.ID, Secret: key.Secret, Created: true}, nil
}

// newAccountID returns a random 12-digit account id without a leading zero.
func newAccountID() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(9e11))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%012d", n.Int64()+1e11), nil
}

// newAccessKey makes an AWS-shaped credential: an id "AKIA" + 16 base32
// characters and a 40-character secret.
func newAccessKey(account, principalARN string, now time.Time) (AccessKey, error) {
	idBytes := make([]byte, 10)
	secret := make([]byte, 30)
	if _, err := rand.Read(idBytes); err != nil {
		return AccessKey{}, err
	}
	if _, err := rand.Read(secret); err != nil {
		return AccessKey{}, err
	}
	return AccessKey{
		ID:           "AKIA" + base32.StdEncoding.EncodeToString(idBytes),
		Secret:       base64.StdEncoding.EncodeToString(secret),
		AccountID:    account,
		PrincipalARN: principalARN,
		Active:       true,
		CreatedAt:    now.UTC(),
	}, nil
}

// ReconcileReport says what the start-up reconciler found and settled.
type ReconcileReport struct {
	CompletedCreates  int      // intents whose token object existed: committed
	AbandonedCreates  int      // intents without a token object: tombstoned
	CompletedDestroys int      // versions marked Destroying, now destroyed
	MissingObjects    []string // "keyID/version" of Active versions whose object is missing (never served)
	OrphanObjects     []string // hex backing ids of token objects no version references (reported, not destroyed)

	// RescheduledRotations counts the abandoned intents that were scheduled
	// rotations: their keys are due again.
	RescheduledRotations int
}

// Reconcile settles what a crash left between the HSM and the database,
// which share no transaction. Run it at start-up, before serving. A running
// kmsd repeats its steps for versions in Creating and Destroying on every
// scheduler pass (SettleUnfinished, settle.go), without the token scan.
//
//   - A version in Creating whose token object exists is committed (the key
//     becomes Enabled if it was being created; an import only if its object
//     has the key's check value); one without an object is tombstoned, and
//     so is its key if it was being created. One younger than
//     CreateIntentGrace is left alone.
//   - A version in Destroying has its object destroyed and is tombstoned.
//   - An Active version whose object is missing is reported: the service
//     answers KeyUnavailableException for it and never serves other
//     material in its place.
//   - Token objects that no version references are reported, never
//     destroyed: they might belong to another service on the same token.
func (s *Service) Reconcile(ctx context.Context) (ReconcileReport, error) {
	var rep ReconcileReport
	ids, err := s.device.ObjectIDs(ctx)
	if err != nil {
		return rep, fmt.Errorf("list token objects: %w", err)
	}
	inToken := make(map[string]bool, len(ids))
	for _, id := range ids {
		inToken[hex.EncodeToString(id)] = true
	}
	referenced, err := s.store.AllBackingIDs(ctx)
	if err != nil {
		return rep, fmt.Errorf("list referenced objects: %w", err)
	}
	wrapping, err := s.reconcileImports(ctx, &rep) // import.go
	if err != nil {
		return rep, fmt.Errorf("reconcile imports: %w", err)
	}

	creating, err := s.store.VersionsByState(ctx, VersionCreating)
	if err != nil {
		return rep, err
	}
	inTokenNow := func(v KeyVersion) (bool, error) { return inToken[hex.EncodeToString(v.BackingID)], nil }
	for _, v := range creating {
		// The steps the settlement pass of a running kmsd takes too (settle.go).
		if err := s.settleIntent(ctx, v, inTokenNow, &rep); err != nil {
			return rep, err
		}
	}

	// A key whose first version was activated but whose state was not yet
	// committed.
	stuck, err := s.store.KeysByState(ctx, StateCreating)
	if err != nil {
		return rep, err
	}
	for _, k := range stuck {
		if err := s.settleStuckKey(ctx, k, &rep); err != nil {
			return rep, err
		}
	}

	// A key tombstoned by the deletion worker whose versions were not yet
	// all destroyed. One query for the tombstones, not one per version: at
	// start-up with 10,000 keys that difference is most of the reconcile.
	deletedKeys, err := s.store.KeysByState(ctx, StateDeleted)
	if err != nil {
		return rep, err
	}
	deleted := make(map[string]bool, len(deletedKeys))
	for _, k := range deletedKeys {
		deleted[k.ID] = true
	}
	for _, v := range referenced {
		if v.State == VersionActive && deleted[v.KeyID] {
			if err := s.store.SetVersionStateIf(ctx, v.KeyID, v.Version, VersionActive, VersionDestroying); ignoreSettled(err) != nil {
				return rep, err
			}
		}
	}

	destroying, err := s.store.VersionsByState(ctx, VersionDestroying)
	if err != nil {
		return rep, err
	}
	destroyedNow := map[string]bool{}
	for _, v := range destroying {
		done, err := s.tombstoneDestroying(ctx, v)
		if err != nil {
			return rep, err
		}
		destroyedNow[versionKey(v.KeyID, v.Version)] = true
		if done {
			rep.CompletedDestroys++
		}
	}

	for idHex, v := range referenced {
		if v.State == VersionActive && !inToken[idHex] && !destroyedNow[versionKey(v.KeyID, v.Version)] {
			rep.MissingObjects = append(rep.MissingObjects, versionKey(v.KeyID, v.Version))
		}
	}
	for idHex := range inToken {
		if _, ok := referenced[idHex]; !ok && !wrapping[idHex] {
			rep.OrphanObjects = append(rep.OrphanObjects, idHex)
		}
	}
	if len(rep.MissingObjects) > 0 {
		s.log.ErrorContext(ctx, "key versions whose token object is missing; they will not be served", "versions", rep.MissingObjects)
	}
	if len(rep.OrphanObjects) > 0 {
		s.log.WarnContext(ctx, "token objects that no key version references (left in place)", "backing_ids", rep.OrphanObjects)
	}
	return rep, nil
}

// completeCreate commits a version whose token object exists; done reports
// whether this call committed it (false: another process did first).
func (s *Service) completeCreate(ctx context.Context, key KeyRecord, v KeyVersion) (done bool, err error) {
	if v.Version > key.CurrentVersion {
		err = s.store.ActivateVersion(ctx, key.ID, v.Version, key.CurrentVersion)
	} else {
		err = s.store.SetVersionStateIf(ctx, key.ID, v.Version, VersionCreating, VersionActive)
	}
	if err := ignoreSettled(err); err != nil {
		return false, err
	}
	done = err == nil
	if key.State == StateCreating {
		_, err := s.store.UpdateKey(ctx, key.ID, enableCreating)
		return done, ignoreSettled(err)
	}
	return done, nil
}

// destroyVersion destroys a version in Destroying: its token object (if it
// is still there), then the version is tombstoned (tombstoneDestroying,
// settle.go).
func (s *Service) destroyVersion(ctx context.Context, v KeyVersion) error {
	_, err := s.tombstoneDestroying(ctx, v)
	return err
}

// RunDeletionWorker destroys keys whose deletion window has ended, checking
// every interval, until ctx is done.
func (s *Service) RunDeletionWorker(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := s.DeleteDueKeys(ctx); err != nil {
			s.log.ErrorContext(ctx, "deleting keys whose window ended", "err", err, "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// DeleteDueKeys deletes every key whose deletion date has passed and returns
// how many it deleted. Deleting follows the HSM-and-database rule: the
// versions are marked Destroying and the key tombstoned first, then the
// token objects are destroyed, then the versions are tombstoned. A crash in
// between is finished by Reconcile.
func (s *Service) DeleteDueKeys(ctx context.Context) (int, error) {
	pending, err := s.store.KeysByState(ctx, StatePendingDeletion)
	if err != nil {
		return 0, err
	}
	now := s.now()
	deleted := 0
	for _, k := range pending {
		if k.DeletionDate.After(now) {
			continue
		}
		if err := s.deleteKey(ctx, k.ID, now); err != nil {
			return deleted, fmt.Errorf("key %s: %w", k.ID, err)
		}
		deleted++
	}
	return deleted, nil
}

var errNotDue = errors.New("key is no longer due for deletion")

func (s *Service) deleteKey(ctx context.Context, keyID string, now time.Time) error {
	// Tombstone first, conditionally in one transaction: CancelKeyDeletion
	// may have won since the key was listed. From here on the key answers
	// NotFoundException, so no request uses the material being destroyed.
	_, err := s.store.UpdateKey(ctx, keyID, func(k *KeyRecord) error {
		if k.State != StatePendingDeletion || k.DeletionDate.After(now) {
			return errNotDue
		}
		k.State = StateDeleted
		return nil
	})
	if errors.Is(err, errNotDue) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.store.DeleteAliasesForKey(ctx, keyID); err != nil {
		return err
	}
	n, err := s.destroyVersionsOf(ctx, keyID)
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "key deleted", "key_id", keyID, "versions_destroyed", n)
	return nil
}

// destroyVersionsOf marks every live version of a deleted key Destroying,
// then destroys each one's token object and tombstones it.
func (s *Service) destroyVersionsOf(ctx context.Context, keyID string) (int, error) {
	versions, err := s.store.ListVersions(ctx, keyID)
	if err != nil {
		return 0, err
	}
	var live []KeyVersion
	for _, v := range versions {
		if v.State == VersionDestroyed {
			continue
		}
		if v.State != VersionDestroying {
			if err := s.store.SetVersionState(ctx, keyID, v.Version, VersionDestroying); err != nil {
				return 0, err
			}
		}
		live = append(live, v)
	}
	for _, v := range live {
		if err := s.destroyVersion(ctx, v); err != nil {
			return 0, err
		}
	}
	return len(live), nil
}

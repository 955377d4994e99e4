package kms

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"hsmkms/hsm"
	"hsmkms/kms/policy"
)

// Enum values of the AWS model.
var (
	keySpecs = []string{"RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521",
		"ECC_SECG_P256K1", "SYMMETRIC_DEFAULT", "HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512", "SM2",
		"ECC_NIST_EDWARDS25519", "ML_DSA_44", "ML_DSA_65", "ML_DSA_87"}
	customerMasterKeySpecs = []string{"RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384",
		"ECC_NIST_P521", "ECC_SECG_P256K1", "SYMMETRIC_DEFAULT", "HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512", "SM2"}
	keyUsages = []string{"SIGN_VERIFY", "ENCRYPT_DECRYPT", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT"}
	origins   = []string{"AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"}
)

const (
	specSymmetric   = "SYMMETRIC_DEFAULT"
	usageEncrypt    = "ENCRYPT_DECRYPT"
	originKMS       = "AWS_KMS"
	managerCustomer = "CUSTOMER"
	algSymmetric    = "SYMMETRIC_DEFAULT"
)

// CreateKey creates a key inside the HSM (see createKeyInHSM for the
// order of steps that makes it crash-safe).
func (s *Service) CreateKey(ctx context.Context, in *CreateKeyInput) (*CreateKeyOutput, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	spec, err := optionalEnum("keySpec", in.KeySpec, "", keySpecs)
	if err != nil {
		return nil, err
	}
	cmkSpec, err := optionalEnum("customerMasterKeySpec", in.CustomerMasterKeySpec, "", customerMasterKeySpecs)
	if err != nil {
		return nil, err
	}
	switch {
	case spec != "" && cmkSpec != "" && spec != cmkSpec:
		return nil, Errorf(CodeValidation, "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec is deprecated.")
	case spec == "" && cmkSpec != "":
		spec = cmkSpec
	case spec == "":
		spec = specSymmetric
	}
	usage, err := optionalEnum("keyUsage", in.KeyUsage, "", keyUsages)
	if err != nil {
		return nil, err
	}
	if usage == "" {
		if spec != specSymmetric {
			return nil, Errorf(CodeValidation, "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.")
		}
		usage = usageEncrypt
	}
	origin, err := optionalEnum("origin", in.Origin, originKMS, origins)
	if err != nil {
		return nil, err
	}
	description, _, err := optionalString("description", in.Description, 0, 8192)
	if err != nil {
		return nil, err
	}
	tags, err := validateTags(in.Tags)
	if err != nil {
		return nil, err
	}
	if in.XksKeyId != nil {
		if err := checkLength("xksKeyId", *in.XksKeyId, 1, 128); err != nil {
			return nil, err
		}
	}
	keyID := uuid.NewString()
	keyPolicy, err := s.authorizeCreateKey(ctx, p, in, keyID, spec, usage, origin, tags)
	if err != nil {
		return nil, err
	}
	if err := s.checkKeyQuota(ctx, p.AccountID); err != nil {
		return nil, err
	}
	// What is valid AWS input but not built yet gets a clear refusal rather
	// than a key that silently lacks what was asked for.
	switch specErr := checkSpecUsage(spec, usage); { // keyspecs.go
	case specErr != nil:
		return nil, specErr
	case spec != specSymmetric && origin != originKMS:
		return nil, Errorf(CodeUnsupportedOperation, "Origin %s is supported only for SYMMETRIC_DEFAULT keys by this key service.", origin)
	case origin != originKMS && origin != originExternal:
		return nil, Errorf(CodeUnsupportedOperation, "Origin %s is not supported by this key service; only AWS_KMS and EXTERNAL.", origin)
	case in.CustomKeyStoreId != nil || in.XksKeyId != nil:
		return nil, Errorf(CodeUnsupportedOperation, "Custom key stores are not supported by this key service.")
	case isTrue(in.MultiRegion):
		return nil, Errorf(CodeUnsupportedOperation, "Multi-Region keys are not supported by this key service.")
	case origin == originExternal:
		return s.createExternalKey(ctx, keyID, p.AccountID, description, keyPolicy, tags) // import.go
	}

	key, err := s.createKeyInHSM(ctx, KeyRecord{
		ID:            keyID,
		InitialPolicy: keyPolicy,
		AccountID:     p.AccountID,
		Description:   description,
		KeyUsage:      usage,
		KeySpec:       spec,
		Origin:        origin,
		KeyManager:    managerCustomer,
	}, tags)
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "key created", "key_id", key.ID, "account", key.AccountID)
	md, err := s.metadata(ctx, key)
	if err != nil {
		return nil, err
	}
	return &CreateKeyOutput{KeyMetadata: md}, nil
}

// maxKeysPerAccount is AWS's quota of KMS keys per account and Region
// (resource quotas: 100,000), every key state counting. Each key is a token
// object, and a deleted one waits 7 days or more: without the bound, one
// account could fill the HSM at 5 CreateKey calls a second.
var maxKeysPerAccount = 100_000

// checkKeyQuota refuses a new key once the account holds the quota's worth
// (a check, not a lock: concurrent creations may pass it together, as AWS's
// own quota is not exact either).
func (s *Service) checkKeyQuota(ctx context.Context, account string) error {
	n, err := s.store.CountAccountKeys(ctx, account)
	if err != nil {
		return Internal(err)
	}
	if n >= maxKeysPerAccount {
		return Errorf(CodeLimitExceeded, "The request was rejected because the account already has the maximum number of KMS keys (%d).", maxKeysPerAccount)
	}
	return nil
}

// createKeyInHSM creates a key's first version inside the HSM for a key
// record (ID, account, description, usage, spec, origin and manager filled
// in; the material follows KeySpec: generateMaterial in keyspecs.go),
// following the HSM-and-database rule: the intent is recorded first (key
// and version Creating), then the token object is made, then the key is
// committed as Enabled. A crash anywhere in between is settled by Reconcile.
//
// The key's lock is held from the intent to the commit or abandonment, as
// rotations hold it: the settlement pass of this process skips a key whose
// lock is held (settle.go), so a creation slower than CreateIntentGrace is
// never settled under it here. Nobody else waits on a new key's lock.
func (s *Service) createKeyInHSM(ctx context.Context, key KeyRecord, tags []TagRecord) (KeyRecord, error) {
	unlock := s.lockKey(key.ID)
	defer unlock()
	now := s.now().UTC()
	key.State = StateCreating
	key.CreatedAt = now
	backing, err := newBackingID()
	if err != nil {
		return KeyRecord{}, Internal(err)
	}
	version := KeyVersion{KeyID: key.ID, Version: 1, BackingID: backing, State: VersionCreating, CreatedAt: now}
	if err := s.store.CreateKey(ctx, key, version); err != nil {
		return KeyRecord{}, Internal(fmt.Errorf("record key intent: %w", err))
	}
	if len(tags) > 0 {
		if err := s.store.PutTags(ctx, key.ID, tags, maxTagsPerKey); err != nil {
			s.abandonCreate(ctx, key.ID, version)
			return KeyRecord{}, Internal(fmt.Errorf("tag new key: %w", err))
		}
	}
	if err := s.generateMaterial(ctx, key, backing, versionLabel(key.ID, 1)); err != nil { // keyspecs.go
		// A committed version here means the reply was lost after the
		// object was made and a settlement pass in another kmsd found it:
		// the key exists, and is reported as created.
		if !s.abandonCreate(ctx, key.ID, version) {
			return KeyRecord{}, deviceError(err)
		}
	} else if err := s.store.ActivateVersion(ctx, key.ID, 1, 0); err != nil {
		// The token object exists: discard it as a losing rotation's
		// (discardIntent), unless the activation did happen (an error
		// after the commit, or a settler's commit): then go on.
		if !s.abandonCreate(ctx, key.ID, version) {
			return KeyRecord{}, Internal(fmt.Errorf("activate first version: %w", err))
		}
	}
	// Only while still Creating: a settlement pass in another kmsd may have
	// enabled it already, and a client may have changed it since.
	committed, err := s.store.UpdateKey(ctx, key.ID, enableCreating)
	if errors.Is(err, errSettled) {
		committed, err = s.store.GetKey(ctx, key.ID)
		if err == nil && (committed.CurrentVersion == 0 || committed.State == StateDeleted) {
			err = fmt.Errorf("key %s was settled as %s", key.ID, committed.State)
		}
	}
	if err != nil {
		return KeyRecord{}, Internal(fmt.Errorf("commit key: %w", err))
	}
	return committed, nil
}

// abandonCreate settles a key whose creation failed before its first
// version was committed: the version is discarded (discardIntent: its
// token object destroyed, compare-and-set against a concurrent settler),
// then the key is tombstoned if it is still Creating with no current
// version. committed reports that the version had been committed after all
// (nothing is destroyed or tombstoned then). What fails here is settled by
// the settlement pass, as after a crash.
func (s *Service) abandonCreate(ctx context.Context, keyID string, v KeyVersion) (committed bool) {
	ctx = context.WithoutCancel(ctx)
	if s.discardIntent(ctx, v) { // discard.go
		return true
	}
	if _, err := s.store.UpdateKey(ctx, keyID, tombstoneCreating); ignoreSettled(err) != nil {
		s.log.WarnContext(ctx, "abandoned key: tombstoning failed", "key_id", keyID, "err", err)
	}
	return false
}

func newBackingID() ([]byte, error) {
	id := make([]byte, hsm.BackingIDSize)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	return id, nil
}

// versionLabel is the CKA_LABEL of a version's token object, for humans
// looking at the token.
func versionLabel(keyID string, version int) string {
	return fmt.Sprintf("kms:%s:v%d", keyID, version)
}

// deviceError turns an HSM failure into the error a client sees.
func deviceError(err error) error {
	switch {
	case errors.Is(err, hsm.ErrUnavailable), errors.Is(err, hsm.ErrClosed):
		return &Error{Code: CodeDependencyTimeout, Message: "The HSM is not available. Try again later.", Cause: err}
	case errors.Is(err, hsm.ErrKeyNotFound):
		return &Error{Code: CodeKeyUnavailable, Message: "The key material is not available in the HSM.", Cause: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: CodeDependencyTimeout, Message: "The request to the HSM did not complete in time.", Cause: err}
	}
	return Internal(err)
}

// metadata builds the KeyMetadata AWS returns for a key.
func (s *Service) metadata(ctx context.Context, k KeyRecord) (*KeyMetadata, error) {
	md := &KeyMetadata{
		AWSAccountId:          k.AccountID,
		KeyId:                 k.ID,
		Arn:                   s.keyARN(k.AccountID, k.ID),
		CreationDate:          NewTimestamp(k.CreatedAt),
		Enabled:               k.State == StateEnabled,
		Description:           k.Description,
		KeyUsage:              k.KeyUsage,
		KeyState:              string(k.State),
		Origin:                k.Origin,
		KeyManager:            k.KeyManager,
		CustomerMasterKeySpec: k.KeySpec,
		KeySpec:               k.KeySpec,
		MultiRegion:           false,
	}
	setAlgorithms(md, k.KeySpec, k.KeyUsage) // keyspecs.go
	if k.State == StatePendingDeletion {
		md.DeletionDate = NewTimestamp(k.DeletionDate)
	}
	if err := s.importMetadata(ctx, k, md); err != nil { // import.go
		return nil, err
	}
	if k.CurrentVersion > 0 && k.KeySpec == specSymmetric { // AWS reports key material ids for symmetric keys only
		v, err := s.activeVersion(ctx, k.ID, k.CurrentVersion)
		switch {
		case err == nil:
			md.CurrentKeyMaterialId = materialID(k, v) // discard.go
		case !errors.Is(err, errVersionNotActive) && !errors.Is(err, ErrStoreNotFound):
			return nil, Internal(err)
		}
	}
	return md, nil
}

// DescribeKey returns a key's metadata, in every key state.
func (s *Service) DescribeKey(ctx context.Context, in *DescribeKeyInput) (*DescribeKeyOutput, error) {
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	r, err := s.resolveKey(ctx, "keyId", in.KeyId, keyOrAlias, "DescribeKey")
	if err != nil {
		return nil, err
	}
	md, err := s.metadata(ctx, r.key)
	if err != nil {
		return nil, err
	}
	return &DescribeKeyOutput{KeyMetadata: md}, nil
}

// ListKeys lists the caller's keys in every state, in key id order.
func (s *Service) ListKeys(ctx context.Context, in *ListKeysInput) (*ListKeysOutput, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	limit, after, err := pageParams(in.Limit, in.Marker, 1000, 100)
	if err != nil {
		return nil, err
	}
	if err := s.authorizeIAM(ctx, p, "ListKeys", nil); err != nil {
		return nil, err
	}
	keys, err := s.store.ListKeys(ctx, p.AccountID, after, limit+1)
	if err != nil {
		return nil, Internal(err)
	}
	out := &ListKeysOutput{Keys: []KeyListEntry{}}
	for i, k := range keys {
		if i == limit {
			out.Truncated = true
			out.NextMarker = encodeMarker(keys[i-1].ID)
			break
		}
		out.Keys = append(out.Keys, KeyListEntry{KeyId: k.ID, KeyArn: s.keyARN(k.AccountID, k.ID)})
	}
	return out, nil
}

// UpdateKeyDescription replaces a key's description.
func (s *Service) UpdateKeyDescription(ctx context.Context, in *UpdateKeyDescriptionInput) (*Empty, error) {
	r, err := s.resolveKey(ctx, "keyId", in.KeyId, keyOnly, "UpdateKeyDescription")
	if err != nil {
		return nil, err
	}
	description, err := requireString("description", in.Description, 0, 8192)
	if err != nil {
		return nil, err
	}
	_, err = s.updateKey(ctx, r, func(k *KeyRecord) error {
		if err := checkNotPendingDeletion(resolved{key: *k, arn: r.arn}); err != nil {
			return err
		}
		k.Description = description
		return nil
	})
	return &Empty{}, err
}

// EnableKey moves a Disabled key to Enabled; enabling an Enabled key is a
// no-op, as in AWS.
func (s *Service) EnableKey(ctx context.Context, in *KeyIdInput) (*Empty, error) {
	return s.setEnabled(ctx, in, true)
}

// DisableKey moves an Enabled key to Disabled.
func (s *Service) DisableKey(ctx context.Context, in *KeyIdInput) (*Empty, error) {
	return s.setEnabled(ctx, in, false)
}

func (s *Service) setEnabled(ctx context.Context, in *KeyIdInput, enable bool) (*Empty, error) {
	action := "DisableKey"
	if enable {
		action = "EnableKey"
	}
	r, err := s.resolveKey(ctx, "keyId", in.KeyId, keyOnly, action)
	if err != nil {
		return nil, err
	}
	_, err = s.updateKeyWithMaterial(ctx, r, func(k *KeyRecord, hasMaterial bool) error {
		switch k.State {
		case StateEnabled, StateDisabled:
		case StatePendingDeletion:
			return Errorf(CodeInvalidState, "%s is pending deletion.", r.arn)
		case StatePendingImport:
			return Errorf(CodeInvalidState, "%s is pending import.", r.arn)
		default:
			return Errorf(CodeInvalidState, "%s is in state %s.", r.arn, k.State)
		}
		if enable && !hasMaterial {
			// Never an Enabled key that cannot encrypt: a key whose
			// material is gone waits for an import.
			return Errorf(CodeInvalidState, "%s is pending import.", r.arn)
		}
		if enable {
			k.State = StateEnabled
		} else {
			k.State = StateDisabled
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "key state changed", "key_id", r.key.ID, "enabled", enable)
	return &Empty{}, nil
}

// ScheduleKeyDeletion puts a key in PendingDeletion for 7..30 days (default
// 30). When the window ends the deletion worker destroys its token objects.
func (s *Service) ScheduleKeyDeletion(ctx context.Context, in *ScheduleKeyDeletionInput) (*ScheduleKeyDeletionOutput, error) {
	days := int32(30)
	if in.PendingWindowInDays != nil {
		days = *in.PendingWindowInDays
		if err := checkRange("pendingWindowInDays", days, 7, 30); err != nil {
			return nil, err
		}
	}
	a := forAction("ScheduleKeyDeletion")
	a.conds = map[string][]string{policy.KeyPendingWindowInDays: {strconv.Itoa(int(days))}}
	r, err := s.resolveKeyFor(ctx, "keyId", in.KeyId, keyOnly, a)
	if err != nil {
		return nil, err
	}
	k, err := s.updateKey(ctx, r, func(k *KeyRecord) error {
		if k.State == StatePendingDeletion {
			return Errorf(CodeInvalidState, "%s is pending deletion.", r.arn)
		}
		if k.State != StateEnabled && k.State != StateDisabled && k.State != StatePendingImport {
			return Errorf(CodeInvalidState, "%s is in state %s.", r.arn, k.State)
		}
		k.State = StatePendingDeletion
		k.PendingWindowInDays = int(days)
		k.DeletionDate = s.now().UTC().Add(time.Duration(days) * 24 * time.Hour)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "key deletion scheduled", "key_id", k.ID, "deletion_date", k.DeletionDate)
	return &ScheduleKeyDeletionOutput{
		KeyId:               r.arn,
		DeletionDate:        NewTimestamp(k.DeletionDate),
		KeyState:            string(k.State),
		PendingWindowInDays: days,
	}, nil
}

// CancelKeyDeletion takes a key out of PendingDeletion; it comes back
// Disabled, as in AWS, or PendingImport if it has no material (an
// EXTERNAL key never imported into, or whose material was deleted while
// deletion was pending): AWS never shows a key without material as
// Enabled or Disabled, and EnableKey on it would give an Enabled key that
// cannot encrypt.
func (s *Service) CancelKeyDeletion(ctx context.Context, in *KeyIdInput) (*CancelKeyDeletionOutput, error) {
	r, err := s.resolveKey(ctx, "keyId", in.KeyId, keyOnly, "CancelKeyDeletion")
	if err != nil {
		return nil, err
	}
	_, err = s.updateKeyWithMaterial(ctx, r, func(k *KeyRecord, hasMaterial bool) error {
		if k.State != StatePendingDeletion {
			return Errorf(CodeInvalidState, "%s is not pending deletion.", r.arn)
		}
		k.State = StateDisabled
		if !hasMaterial {
			k.State = StatePendingImport
		}
		k.DeletionDate = time.Time{}
		k.PendingWindowInDays = 0
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "key deletion cancelled", "key_id", r.key.ID)
	return &CancelKeyDeletionOutput{KeyId: r.arn}, nil
}

// updateKey applies fn to the stored key in one transaction. A key deleted
// meanwhile is NotFoundException; errors from fn reach the caller as is.
func (s *Service) updateKey(ctx context.Context, r resolved, fn func(*KeyRecord) error) (KeyRecord, error) {
	return s.updateKeyWithMaterial(ctx, r, func(k *KeyRecord, _ bool) error { return fn(k) })
}

// updateKeyWithMaterial is updateKey for changes that depend on whether the
// key has material to use (Store.UpdateKeyWithMaterial). Control-plane
// calls only: the extra version lookup stays off the request path.
func (s *Service) updateKeyWithMaterial(ctx context.Context, r resolved, fn func(*KeyRecord, bool) error) (KeyRecord, error) {
	k, err := s.store.UpdateKeyWithMaterial(ctx, r.key.ID, func(k *KeyRecord, hasMaterial bool) error {
		if k.State == StateDeleted || k.State == StateCreating {
			return Errorf(CodeNotFound, "Key '%s' does not exist", r.arn)
		}
		return fn(k, hasMaterial)
	})
	if err != nil {
		var kerr *Error
		if errors.As(err, &kerr) {
			return KeyRecord{}, kerr
		}
		if errors.Is(err, ErrStoreNotFound) {
			return KeyRecord{}, Errorf(CodeNotFound, "Key '%s' does not exist", r.arn)
		}
		return KeyRecord{}, Internal(err)
	}
	return k, nil
}

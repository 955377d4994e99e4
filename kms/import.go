package kms

// Imported key material (Origin EXTERNAL).
//
// GetParametersForImport makes an RSA wrapping key pair inside the HSM and
// returns its public key and an import token. ImportKeyMaterial hands the
// customer's wrapped key to C_UnwrapKey, which creates the AES-256 key as a
// non-extractable token object: the plaintext key material never exists in
// this process. An imported key has one version (1); its invocation counter
// and KeyMaterialId (materialID, discard.go) survive
// DeleteImportedKeyMaterial, so re-importing the same material brings back
// the same version and every ciphertext made before decrypts again. "The
// same material" is checked without exporting it: the token computes a
// check value (AES-CMAC of a fixed message, see hsm.CheckValueMessage for
// why CMAC) that is stored at the first import.
//
// Each import attempt makes its token object under a backing id (CKA_ID) of
// its own, recorded with the attempt's time (ImportStore.BeginImport). The
// old material's object is destroyed by id, possibly by another kmsd or a
// settlement pass that saw that destroy unfinished and acts late; under a
// reused id that late destroy would take the new material. Attempts are
// settled like other intents (settleImportIntent), past CreateIntentGrace
// and by compare-and-set on state and backing id.
//
// The import token is 1 format byte, the wrapping key's 16-byte backing id
// and a 32-byte random secret. The database keeps only SHA-256 of the
// secret, next to the key id, wrapping algorithm, key spec and expiry it is
// bound to; the service authenticates a token by looking it up and comparing
// hashes in constant time. That binds everything AWS's opaque token binds
// without a service sealing key, and lets expiry be enforced by destroying
// the wrapping key.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"regexp"
	"time"

	"hsmkms/hsm"
	"hsmkms/kms/policy"
)

const (
	originExternal          = "EXTERNAL"
	expiresModel            = "KEY_MATERIAL_EXPIRES"
	doesNotExpireModel      = "KEY_MATERIAL_DOES_NOT_EXPIRE"
	importTokenFormat       = 1
	importTokenSecretSize   = 32
	importParametersLife    = 24 * time.Hour
	maxImportValidity       = 365 * 24 * time.Hour
	msgInvalidImportToken   = "The import token that you supplied is not valid."
	msgExpiredImportToken   = "The import token that you supplied has expired."
	msgIncorrectKeyMaterial = "The key material that you imported does not match the key material previously imported into this KMS key."
)

// Import error codes, as AWS names them.
const (
	CodeExpiredImportToken   Code = "ExpiredImportTokenException"
	CodeInvalidImportToken   Code = "InvalidImportTokenException"
	CodeIncorrectKeyMaterial Code = "IncorrectKeyMaterialException"
)

var (
	wrappingAlgorithms = []string{"RSAES_PKCS1_V1_5", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256",
		"RSA_AES_KEY_WRAP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256", "SM2PKE"}
	wrappingKeySpecs = []string{"RSA_2048", "RSA_3072", "RSA_4096", "SM2"}
	expirationModels = []string{expiresModel, doesNotExpireModel}
	importTypes      = []string{"NEW_KEY_MATERIAL", "EXISTING_KEY_MATERIAL"}
	hexMaterialID    = regexp.MustCompile(`^[a-f0-9]{64}$`)
	materialDescRE   = regexp.MustCompile(`^[a-zA-Z0-9:/_\s.-]*$`)
)

func hsmWrapAlgorithm(name string) (hsm.WrapAlgorithm, bool) {
	switch name {
	case "RSAES_OAEP_SHA_1":
		return hsm.WrapOAEPSHA1, true
	case "RSAES_OAEP_SHA_256":
		return hsm.WrapOAEPSHA256, true
	case "RSA_AES_KEY_WRAP_SHA_1":
		return hsm.WrapRSAAESSHA1, true
	case "RSA_AES_KEY_WRAP_SHA_256":
		return hsm.WrapRSAAESSHA256, true
	}
	return 0, false
}

var wrappingKeyBits = map[string]int{"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}

// createExternalKey creates a key that waits for imported material
// (CreateKey with Origin EXTERNAL). No token object exists yet, so no
// intent is needed: the key is recorded directly as PendingImport.
func (s *Service) createExternalKey(ctx context.Context, keyID, account, description, keyPolicy string, tags []TagRecord) (*CreateKeyOutput, error) {
	key := KeyRecord{
		ID:            keyID,
		InitialPolicy: keyPolicy,
		AccountID:     account,
		Description:   description,
		KeyUsage:      usageEncrypt,
		KeySpec:       specSymmetric,
		Origin:        originExternal,
		KeyManager:    managerCustomer,
		State:         StatePendingImport,
		CreatedAt:     s.now().UTC(),
	}
	if err := s.store.CreateExternalKey(ctx, key); err != nil {
		return nil, Internal(fmt.Errorf("record external key: %w", err))
	}
	if len(tags) > 0 {
		if err := s.store.PutTags(ctx, key.ID, tags, maxTagsPerKey); err != nil {
			return nil, Internal(fmt.Errorf("tag new key: %w", err))
		}
	}
	stored, err := s.store.GetKey(ctx, key.ID)
	if err != nil {
		return nil, Internal(err)
	}
	s.log.InfoContext(ctx, "external key created", "key_id", key.ID, "account", account)
	md, err := s.metadata(ctx, stored)
	if err != nil {
		return nil, err
	}
	return &CreateKeyOutput{KeyMetadata: md}, nil
}

// importMetadata adds ExpirationModel and ValidTo to an EXTERNAL key's
// metadata while it has material.
func (s *Service) importMetadata(ctx context.Context, k KeyRecord, md *KeyMetadata) error {
	if k.Origin != originExternal || k.State == StatePendingImport {
		return nil
	}
	rec, err := s.store.GetImport(ctx, k.ID)
	if errors.Is(err, ErrStoreNotFound) {
		return nil
	}
	if err != nil {
		return Internal(err)
	}
	md.ExpirationModel = rec.ExpirationModel
	if rec.ExpirationModel == expiresModel {
		md.ValidTo = NewTimestamp(rec.ValidTo)
	}
	return nil
}

func (s *Service) checkExternal(r resolved) error {
	if r.key.Origin != originExternal {
		return Errorf(CodeUnsupportedOperation, "%s origin is %s which is not valid for this operation.", r.arn, r.key.Origin)
	}
	if r.key.State == StatePendingDeletion {
		return Errorf(CodeInvalidState, "%s is pending deletion.", r.arn)
	}
	return nil
}

// GetParametersForImport creates a wrapping key pair in the HSM for one
// import into the key and returns its public key and import token, valid
// for 24 hours.
func (s *Service) GetParametersForImport(ctx context.Context, in *GetParametersForImportInput) (*GetParametersForImportOutput, error) {
	a := forAction("GetParametersForImport")
	a.conds = map[string][]string{}
	if in.WrappingAlgorithm != nil {
		a.conds[policy.KeyWrappingAlgorithm] = []string{*in.WrappingAlgorithm}
	}
	if in.WrappingKeySpec != nil {
		a.conds[policy.KeyWrappingKeySpec] = []string{*in.WrappingKeySpec}
	}
	r, err := s.resolveKeyFor(ctx, "keyId", in.KeyId, keyOnly, a)
	if err != nil {
		return nil, err
	}
	if in.WrappingAlgorithm == nil {
		return nil, validationf("Value null at 'wrappingAlgorithm' failed to satisfy constraint: Member must not be null")
	}
	algName, err := optionalEnum("wrappingAlgorithm", in.WrappingAlgorithm, "", wrappingAlgorithms)
	if err != nil {
		return nil, err
	}
	if in.WrappingKeySpec == nil {
		return nil, validationf("Value null at 'wrappingKeySpec' failed to satisfy constraint: Member must not be null")
	}
	spec, err := optionalEnum("wrappingKeySpec", in.WrappingKeySpec, "", wrappingKeySpecs)
	if err != nil {
		return nil, err
	}
	if err := s.checkExternal(r); err != nil {
		return nil, err
	}
	alg, ok := hsmWrapAlgorithm(algName)
	switch {
	case algName == "RSAES_PKCS1_V1_5":
		return nil, Errorf(CodeValidation, "The RSAES_PKCS1_V1_5 wrapping algorithm is no longer supported; use RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1, RSA_AES_KEY_WRAP_SHA_256 or RSA_AES_KEY_WRAP_SHA_1.")
	case !ok || spec == "SM2":
		return nil, Errorf(CodeUnsupportedOperation, "SM2 wrapping is only available in China Regions.")
	}
	supported, err := s.device.SupportsWrapAlgorithm(ctx, alg)
	if err != nil {
		return nil, deviceError(err)
	}
	if !supported {
		return nil, unsupportedWrap(algName)
	}
	id, err := newBackingID()
	if err != nil {
		return nil, Internal(err)
	}
	secret := make([]byte, importTokenSecretSize)
	if _, err := rand.Read(secret); err != nil {
		return nil, Internal(err)
	}
	hash := sha256.Sum256(secret)
	now := s.now().UTC().Truncate(time.Millisecond)
	w := WrappingKey{BackingID: id, KeyID: r.key.ID, Algorithm: algName, Spec: spec, TokenHash: hash[:],
		State: WrappingCreating, CreatedAt: now, ExpiresAt: now.Add(importParametersLife)}
	if err := s.store.PutWrappingKey(ctx, w); err != nil {
		return nil, Internal(err)
	}
	spki, err := s.device.GenerateWrappingKey(ctx, id, "kms:"+r.key.ID+":wrapping", wrappingKeyBits[spec])
	if err != nil {
		_ = s.store.SetWrappingKeyState(context.WithoutCancel(ctx), id, WrappingDestroyed)
		return nil, deviceError(err)
	}
	if err := s.store.SetWrappingKeyState(ctx, id, WrappingActive); err != nil {
		return nil, Internal(err)
	}
	token := append(append([]byte{importTokenFormat}, id...), secret...)
	s.log.InfoContext(ctx, "import parameters created", "key_id", r.key.ID, "algorithm", algName, "spec", spec, "expires", w.ExpiresAt)
	return &GetParametersForImportOutput{KeyId: r.arn, ImportToken: token, PublicKey: spki, ParametersValidTo: NewTimestamp(w.ExpiresAt)}, nil
}

func unsupportedWrap(alg string) error {
	return Errorf(CodeUnsupportedOperation,
		"The HSM behind this key service cannot unwrap with %s inside the token (SoftHSM2 2.6.1 does RSA-OAEP with SHA-1 only), "+
			"and key material is never unwrapped outside it. Use RSAES_OAEP_SHA_1 or RSA_AES_KEY_WRAP_SHA_1.", alg)
}

// checkImportToken authenticates an import token for a key and returns its
// wrapping key.
func (s *Service) checkImportToken(ctx context.Context, keyID string, token []byte) (WrappingKey, error) {
	invalid := &Error{Code: CodeInvalidImportToken, Message: msgInvalidImportToken}
	if len(token) != 1+hsm.BackingIDSize+importTokenSecretSize || token[0] != importTokenFormat {
		return WrappingKey{}, invalid
	}
	id, secret := token[1:1+hsm.BackingIDSize], token[1+hsm.BackingIDSize:]
	w, err := s.store.GetWrappingKey(ctx, id)
	if errors.Is(err, ErrStoreNotFound) {
		return WrappingKey{}, invalid
	}
	if err != nil {
		return WrappingKey{}, Internal(err)
	}
	hash := sha256.Sum256(secret)
	if subtle.ConstantTimeCompare(hash[:], w.TokenHash) != 1 || w.KeyID != keyID {
		return WrappingKey{}, invalid
	}
	if !w.ExpiresAt.After(s.now()) {
		return WrappingKey{}, &Error{Code: CodeExpiredImportToken, Message: msgExpiredImportToken}
	}
	if w.State != WrappingActive {
		// Used already: the wrapping key is destroyed after one import.
		return WrappingKey{}, invalid
	}
	return w, nil
}

// ImportKeyMaterial unwraps key material into the HSM as the key's material.
func (s *Service) ImportKeyMaterial(ctx context.Context, in *ImportKeyMaterialInput) (*ImportKeyMaterialOutput, error) {
	a := forAction("ImportKeyMaterial")
	a.conds = map[string][]string{policy.KeyExpirationModel: {expiresModel}}
	if in.ExpirationModel != nil {
		a.conds[policy.KeyExpirationModel] = []string{*in.ExpirationModel}
	}
	if in.ValidTo != nil {
		a.conds[policy.KeyValidTo] = []string{in.ValidTo.Time().UTC().Format(time.RFC3339)}
	}
	r, err := s.resolveKeyFor(ctx, "keyId", in.KeyId, keyOnly, a)
	if err != nil {
		return nil, err
	}
	if err := requireBlob("importToken", in.ImportToken, 1, 6144); err != nil {
		return nil, err
	}
	if err := requireBlob("encryptedKeyMaterial", in.EncryptedKeyMaterial, 1, 6144); err != nil {
		return nil, err
	}
	model, err := optionalEnum("expirationModel", in.ExpirationModel, expiresModel, expirationModels)
	if err != nil {
		return nil, err
	}
	if _, err := optionalEnum("importType", in.ImportType, "", importTypes); err != nil {
		return nil, err
	}
	if d, ok, err := optionalString("keyMaterialDescription", in.KeyMaterialDescription, 0, 256); err != nil {
		return nil, err
	} else if ok && !materialDescRE.MatchString(d) {
		return nil, validationf("Value '%s' at 'keyMaterialDescription' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_\\s.-]+$", truncateForMessage(d))
	}
	if err := checkMaterialID(in.KeyMaterialId); err != nil {
		return nil, err
	}
	var validTo time.Time
	switch {
	case model == expiresModel && in.ValidTo == nil:
		return nil, Errorf(CodeValidation, "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES")
	case model == doesNotExpireModel && in.ValidTo != nil:
		return nil, Errorf(CodeValidation, "A validTo date must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE")
	case in.ValidTo != nil:
		validTo = in.ValidTo.Time().UTC()
		now := s.now()
		if !validTo.After(now) || validTo.After(now.Add(maxImportValidity)) {
			return nil, Errorf(CodeValidation, "The validTo date must be in the future and no more than 365 days from now.")
		}
	}
	if err := s.checkExternal(r); err != nil {
		return nil, err
	}
	w, err := s.checkImportToken(ctx, r.key.ID, in.ImportToken)
	if err != nil {
		return nil, err
	}
	alg, _ := hsmWrapAlgorithm(w.Algorithm)

	unlock := s.lockKey(r.key.ID)
	defer unlock()
	rec, err := s.store.GetImport(ctx, r.key.ID)
	if err != nil {
		return nil, Internal(err)
	}
	backing, err := newBackingID()
	if err != nil {
		return nil, Internal(err)
	}
	v, err := s.store.BeginImport(ctx, r.key.ID, backing, s.now().UTC(), model, validTo)
	switch {
	case errors.Is(err, ErrStoreAlreadyExists):
		// Material is present: the same material may be imported again (to
		// change its expiration); compare in a session object. The new
		// expiration applies only to the material compared: another kmsd's
		// expiry pass or DeleteImportedKeyMaterial may delete it meanwhile,
		// and success must not be answered for material that is gone.
		cur, err := s.store.GetVersion(ctx, r.key.ID, 1)
		if err != nil {
			return nil, Internal(err)
		}
		kcv, err := s.device.UnwrapAESKey(ctx, w.BackingID, alg, in.EncryptedKeyMaterial, nil, "")
		if err != nil {
			return nil, unwrapError(err, w.Algorithm)
		}
		if !bytes.Equal(kcv, rec.CheckValue) {
			return nil, Errorf(CodeIncorrectKeyMaterial, msgIncorrectKeyMaterial)
		}
		err = s.store.SetImportExpiration(ctx, r.key.ID, cur.BackingID, model, validTo)
		if errors.Is(err, ErrStoreConflict) {
			return nil, Errorf(CodeInvalidState, "%s had its key material deleted during the import. Import it again.", r.arn)
		}
		if err != nil {
			return nil, Internal(err)
		}
		s.destroyWrappingKey(ctx, w)
		return &ImportKeyMaterialOutput{KeyId: r.arn, KeyMaterialId: materialID(r.key, cur)}, nil
	case errors.Is(err, ErrStoreConflict):
		return nil, Errorf(CodeInvalidState, "%s has an import or a deletion of key material in progress.", r.arn)
	case err != nil:
		return nil, Internal(err)
	}
	// The attempt's own object (its backing id is new) is destroyed, unless
	// a settler committed the attempt meanwhile (discard.go); a retry then
	// finds the material present.
	abandon := func() { s.discardIntent(ctx, v) }
	kcv, err := s.device.UnwrapAESKey(ctx, w.BackingID, alg, in.EncryptedKeyMaterial, v.BackingID, versionLabel(r.key.ID, 1))
	if err != nil {
		if !s.discardIntent(ctx, v) {
			return nil, unwrapError(err, w.Algorithm)
		}
		// The reply was lost after the object was made, and a settlement
		// pass (another kmsd, past the grace) committed the attempt with
		// the object's check value: the material is imported.
	} else if rec.CheckValue != nil && !bytes.Equal(kcv, rec.CheckValue) {
		abandon()
		return nil, Errorf(CodeIncorrectKeyMaterial, msgIncorrectKeyMaterial)
	} else if err := s.store.CompleteImport(ctx, r.key.ID, v.BackingID, kcv); err != nil {
		if !errors.Is(err, ErrStoreConflict) {
			// The attempt stays Creating: the settlement pass commits it
			// once CreateIntentGrace old, its object having the check value.
			return nil, Internal(err)
		}
		// Other material recorded meanwhile, or the attempt settled by
		// another process (it may have committed it: then it is done).
		if !s.discardIntent(ctx, v) {
			if now, err := s.store.GetImport(ctx, r.key.ID); err == nil && now.CheckValue != nil && !bytes.Equal(now.CheckValue, kcv) {
				return nil, Errorf(CodeIncorrectKeyMaterial, msgIncorrectKeyMaterial)
			}
			return nil, Errorf(CodeInvalidState, "%s has an import or a deletion of key material in progress.", r.arn)
		}
	}
	s.versions.Delete(versionKey(r.key.ID, 1))
	s.destroyWrappingKey(ctx, w)
	s.log.InfoContext(ctx, "key material imported", "key_id", r.key.ID, "algorithm", w.Algorithm, "expiration_model", model)
	return &ImportKeyMaterialOutput{KeyId: r.arn, KeyMaterialId: materialID(r.key, v)}, nil
}

func checkMaterialID(id *string) error {
	if id == nil {
		return nil
	}
	if err := checkLength("keyMaterialId", *id, 64, 64); err != nil {
		return err
	}
	if !hexMaterialID.MatchString(*id) {
		return validationf("Value '%s' at 'keyMaterialId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-f0-9]+$", *id)
	}
	return nil
}

func unwrapError(err error, alg string) error {
	switch {
	case errors.Is(err, hsm.ErrUnsupportedWrap):
		return unsupportedWrap(alg)
	case errors.Is(err, hsm.ErrUnwrapFailed):
		return &Error{Code: CodeInvalidCiphertext, Cause: err,
			Message: "The encrypted key material could not be unwrapped with the wrapping key and algorithm of the import token, or it is not a 256-bit key."}
	case errors.Is(err, hsm.ErrKeyNotFound):
		return &Error{Code: CodeInvalidImportToken, Message: msgInvalidImportToken, Cause: err}
	}
	return deviceError(err)
}

// destroyWrappingKey destroys a wrapping key after use or expiry.
func (s *Service) destroyWrappingKey(ctx context.Context, w WrappingKey) {
	ctx = context.WithoutCancel(ctx)
	if err := s.store.SetWrappingKeyState(ctx, w.BackingID, WrappingDestroying); err != nil {
		s.log.WarnContext(ctx, "wrapping key: marking failed", "key_id", w.KeyID, "err", err)
		return
	}
	if err := s.device.Destroy(ctx, w.BackingID); err != nil && !errors.Is(err, hsm.ErrKeyNotFound) {
		s.log.WarnContext(ctx, "wrapping key: destroying failed; the reconciler will retry", "key_id", w.KeyID, "err", err)
		return
	}
	_ = s.store.SetWrappingKeyState(ctx, w.BackingID, WrappingDestroyed)
}

// DeleteImportedKeyMaterial destroys an EXTERNAL key's material; the key
// goes to PendingImport (a key pending deletion stays so).
func (s *Service) DeleteImportedKeyMaterial(ctx context.Context, in *DeleteImportedKeyMaterialInput) (*DeleteImportedKeyMaterialOutput, error) {
	r, err := s.resolveKey(ctx, "keyId", in.KeyId, keyOnly, "DeleteImportedKeyMaterial")
	if err != nil {
		return nil, err
	}
	if err := checkMaterialID(in.KeyMaterialId); err != nil {
		return nil, err
	}
	if r.key.Origin != originExternal {
		return nil, Errorf(CodeUnsupportedOperation, "%s origin is %s which is not valid for this operation.", r.arn, r.key.Origin)
	}
	unlock := s.lockKey(r.key.ID)
	defer unlock()
	if in.KeyMaterialId != nil {
		cur, err := s.store.GetVersion(ctx, r.key.ID, 1)
		if err == nil && materialID(r.key, cur) != *in.KeyMaterialId {
			return nil, Errorf(CodeNotFound, "Key material %s does not exist for %s.", *in.KeyMaterialId, r.arn)
		}
	}
	v, err := s.deleteMaterial(ctx, r.key.ID, time.Time{})
	if errors.Is(err, ErrStoreNotFound) {
		return nil, Errorf(CodeInvalidState, "%s is pending import.", r.arn)
	}
	if err != nil {
		return nil, deviceError(err)
	}
	return &DeleteImportedKeyMaterialOutput{KeyId: r.arn, KeyMaterialId: materialID(r.key, v)}, nil
}

// deleteMaterial marks version 1 Destroying and the key PendingImport in
// one transaction, then destroys the token object and tombstones the
// version. A crash in between is finished by Reconcile.
func (s *Service) deleteMaterial(ctx context.Context, keyID string, expiredBy time.Time) (KeyVersion, error) {
	v, err := s.store.BeginDeleteMaterial(ctx, keyID, expiredBy)
	if err != nil {
		return v, err
	}
	if err := s.destroyVersion(ctx, v); err != nil {
		return v, err
	}
	s.log.InfoContext(ctx, "imported key material deleted", "key_id", keyID)
	return v, nil
}

// ExpireImports deletes imported key material whose ValidTo has passed and
// destroys wrapping keys whose import token has expired.
func (s *Service) ExpireImports(ctx context.Context) error {
	now := s.now()
	expiring, err := s.store.ImportsExpiring(ctx, now)
	if err != nil {
		return err
	}
	var errs []error
	for _, rec := range expiring {
		// An import or deletion of this key in flight in this process
		// (possibly hung in the HSM) holds the lock: the material stays
		// expiring and the next pass deletes it, instead of this pass
		// waiting and stopping the scheduler.
		unlock, ok := s.tryLockKey(rec.KeyID)
		if !ok {
			errs = append(errs, fmt.Errorf("key %s: %w; its expired material is deleted on the next pass", rec.KeyID, errInFlight))
			continue
		}
		_, err := s.deleteMaterial(ctx, rec.KeyID, now)
		unlock()
		if err != nil && !errors.Is(err, ErrStoreNotFound) {
			errs = append(errs, fmt.Errorf("key %s: %w", rec.KeyID, err))
		}
	}
	wks, err := s.store.LiveWrappingKeys(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, w := range wks {
		if w.State == WrappingDestroying || (w.State == WrappingActive && !w.ExpiresAt.After(now)) {
			s.destroyWrappingKey(ctx, w)
		}
	}
	return errors.Join(errs...)
}

// reconcileImports settles what a crash left of wrapping keys, before the
// generic passes of Reconcile: those being made past CreateIntentGrace
// (younger ones may be in flight in another kmsd, and are not orphans),
// being destroyed, or expired. It returns the hex backing ids of live
// wrapping keys, which are not orphans. Imported versions in Creating are
// settled with the other intents (settleIntent, settleImportIntent).
func (s *Service) reconcileImports(ctx context.Context, rep *ReconcileReport) (map[string]bool, error) {
	live := map[string]bool{}
	wks, err := s.store.LiveWrappingKeys(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	for _, w := range wks {
		idHex := fmt.Sprintf("%x", w.BackingID)
		if (w.State == WrappingActive && w.ExpiresAt.After(now)) || (w.State == WrappingCreating && s.youngIntent(w.CreatedAt)) {
			live[idHex] = true
			continue
		}
		// Creating: the parameters were never returned. Destroying or
		// expired: finish the job.
		if err := s.device.Destroy(ctx, w.BackingID); err != nil && !errors.Is(err, hsm.ErrKeyNotFound) {
			return nil, fmt.Errorf("destroy wrapping key of %s: %w", w.KeyID, err)
		}
		if err := s.store.SetWrappingKeyState(ctx, w.BackingID, WrappingDestroyed); err != nil {
			return nil, err
		}
		rep.CompletedDestroys++
	}
	return live, nil
}

// settleImportIntent settles an import attempt left in Creating, for
// settleIntent (Reconcile and the settlement pass, past CreateIntentGrace):
// committed if its token object exists and has the key's check value, or
// the key has none yet (a first import); otherwise discarded, its object
// destroyed if it has one (other material: it can never be committed).
// Every transition is conditional on the attempt's backing id, so an
// attempt settled meanwhile, or a newer one, is left alone; and that id is
// the attempt's own, so destroying it cannot touch other material.
func (s *Service) settleImportIntent(ctx context.Context, v KeyVersion, present func(KeyVersion) (bool, error), rep *ReconcileReport) error {
	name := versionKey(v.KeyID, v.Version)
	ok, err := present(v)
	if err != nil {
		return fmt.Errorf("look for the token object of %s: %w", name, err)
	}
	if ok {
		kcv, err := s.device.KeyCheckValue(ctx, v.BackingID)
		switch {
		case errors.Is(err, hsm.ErrKeyNotFound):
			ok = false // gone since the token was listed
		case err != nil:
			return fmt.Errorf("check value of %s: %w", name, err)
		}
		if ok {
			rec, err := s.store.GetImport(ctx, v.KeyID)
			if err != nil {
				return err
			}
			if rec.CheckValue == nil || bytes.Equal(rec.CheckValue, kcv) {
				err := s.store.CompleteImport(ctx, v.KeyID, v.BackingID, kcv)
				if err == nil {
					s.versions.Delete(name)
					rep.CompletedCreates++
					return nil
				}
				if !errors.Is(err, ErrStoreConflict) {
					return err
				}
				// Settled meanwhile, or other material recorded: below,
				// the compare-and-set tells which.
			}
		}
	}
	if err := s.store.SetVersionStateIfID(ctx, v.KeyID, v.Version, v.BackingID, VersionCreating, VersionDestroying); err != nil {
		return ignoreSettled(err)
	}
	if _, err := s.tombstoneDestroying(ctx, v); err != nil {
		return err // left Destroying: the next pass destroys it
	}
	rep.AbandonedCreates++
	return nil
}

package kms

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"hsmkms/hsm"
	"hsmkms/kms/ciphertext"
	"hsmkms/kms/policy"
)

var encryptionAlgorithms = []string{"SYMMETRIC_DEFAULT", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "SM2PKE"}

// maxPlaintext is the largest Plaintext a symmetric Encrypt takes.
const maxPlaintext = 4096

// maxCiphertext is the largest CiphertextBlob AWS accepts.
const maxCiphertext = 6144

const msgCiphertextKeyInaccessible = "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access."

// errInvalidCiphertext is InvalidCiphertextException without a message, as
// AWS sends it: the reason (tampering, wrong context, wrong version) is not
// the client's to learn.
func errInvalidCiphertext(cause error) error {
	return &Error{Code: CodeInvalidCiphertext, Cause: cause}
}

// checkSymmetricUse checks that a key can be used for symmetric encryption
// with the requested algorithm (default SYMMETRIC_DEFAULT).
func checkSymmetricUse(r resolved, algorithm *string, member, operation string) error {
	alg, err := optionalEnum(member, algorithm, algSymmetric, encryptionAlgorithms)
	if err != nil {
		return err
	}
	if r.key.KeyUsage != usageEncrypt {
		return Errorf(CodeInvalidKeyUsage, "%s key usage is %s which is not valid for %s.", r.arn, r.key.KeyUsage, operation)
	}
	if alg != algSymmetric || r.key.KeySpec != specSymmetric {
		return Errorf(CodeInvalidKeyUsage, "Algorithm %s is incompatible with key spec %s.", alg, r.key.KeySpec)
	}
	return nil
}

// checkDecryptWithout checks what decrypting with key r would check, but
// the ciphertext: the caller's permission (action, with the encryption
// context for a symmetric key), the key's state, usage and algorithm, and
// that an asymmetric key is given no encryption context. Dry runs with
// IGNORE_CIPHERTEXT answer from it. peer is kms:ReEncryptOnSameKey's other
// key ("" outside ReEncrypt).
func (s *Service) checkDecryptWithout(ctx context.Context, r resolved, ec map[string]string, grantTokens []string, algorithm *string,
	member, action, operation, peer string) error {
	if specTable[r.key.KeySpec].kind == kindSymmetric {
		a := cryptoAccess(action, ec, grantTokens, algorithm)
		a.reEncryptPeer = peer
		if err := s.authorizeKey(ctx, r, a); err != nil {
			return err
		}
		if err := checkUsable(r); err != nil {
			return err
		}
		return checkSymmetricUse(r, algorithm, member, operation)
	}
	a := asymmetricAccess(action, grantTokens, algorithm)
	a.reEncryptPeer = peer
	if err := s.authorizeKey(ctx, r, a); err != nil {
		return err
	}
	if err := checkUsable(r); err != nil {
		return err
	}
	if _, _, err := oaepAlgorithm(r, algorithm, member, operation); err != nil {
		return err
	}
	if len(ec) > 0 {
		return errAsymmetricContext()
	}
	return nil
}

// dryRunSymmetricSource checks a ReEncrypt dry run's symmetric SourceKeyId
// when IGNORE_CIPHERTEXT leaves no blob to open.
func (s *Service) dryRunSymmetricSource(ctx context.Context, in *ReEncryptInput, dst resolved) error {
	r, err := s.resolveKeyFor(ctx, "sourceKeyId", in.SourceKeyId, keyOrAlias, access{skipAuthorization: true})
	if err != nil {
		return err
	}
	return s.checkDecryptWithout(ctx, r, in.SourceEncryptionContext, in.GrantTokens, in.SourceEncryptionAlgorithm,
		"sourceEncryptionAlgorithm", "ReEncryptFrom", "ReEncryptFrom", dst.key.ID)
}

func checkRecipient(rcp *RecipientInfo) error {
	if rcp != nil {
		return Errorf(CodeUnsupportedOperation, "Recipient (Nitro Enclaves attestation) is not supported by this key service.")
	}
	return nil
}

// seal encrypts plaintext under the key's current version and returns the
// ciphertext blob and the version used.
func (s *Service) seal(ctx context.Context, r resolved, plaintext []byte, encryptionContext map[string]string) ([]byte, KeyVersion, error) {
	_, v, err := s.takeInvocation(ctx, r.key)
	if err != nil {
		var kerr *Error
		if errors.As(err, &kerr) {
			return nil, KeyVersion{}, kerr
		}
		return nil, KeyVersion{}, deviceError(err)
	}
	// The IV is generated here, never by the token: SoftHSM2 accepts an
	// empty IV and then encrypts deterministically.
	iv := make([]byte, ciphertext.IVSize)
	if _, err := rand.Read(iv); err != nil {
		return nil, KeyVersion{}, Internal(err)
	}
	header, err := ciphertext.Blob{KeyID: r.key.ID, Version: uint32(v.Version), IV: iv}.Header()
	if err != nil {
		return nil, KeyVersion{}, Internal(err)
	}
	sealed, err := s.device.EncryptGCM(ctx, v.BackingID, iv, plaintext, ciphertext.AAD(header, encryptionContext))
	if fresh, ok := s.refreshVersion(ctx, v, err); ok { // discard.go: re-imported elsewhere
		// The failed call encrypted nothing, so the IV is still unused.
		v = fresh
		sealed, err = s.device.EncryptGCM(ctx, v.BackingID, iv, plaintext, ciphertext.AAD(header, encryptionContext))
	}
	if err != nil {
		return nil, KeyVersion{}, deviceError(err)
	}
	return append(header, sealed...), v, nil
}

// opened is the result of decrypting a symmetric ciphertext blob.
type opened struct {
	key       resolved
	version   KeyVersion
	plaintext []byte
}

// open decrypts a ciphertext blob. The key comes from the blob, in any
// account the caller is allowed to use; keyID, if given, must name the same
// key (IncorrectKeyException otherwise). a says what is authorized on the
// blob's key; a.encryptionContext is the context the blob must have.
func (s *Service) open(ctx context.Context, blob []byte, keyID *string, keyMember string, algorithm *string, algMember string, a access) (opened, error) {
	p, err := caller(ctx)
	if err != nil {
		return opened{}, err
	}
	var named *resolved
	if keyID != nil {
		// Authorization is decided on the blob's key below; the named key
		// only has to be the same one.
		r, err := s.resolveKeyFor(ctx, keyMember, keyID, keyOrAlias, access{skipAuthorization: true})
		if err != nil {
			return opened{}, err
		}
		named = &r
	}
	parsed, err := ciphertext.Parse(blob)
	if err != nil {
		return opened{}, errInvalidCiphertext(err)
	}
	r, err := s.loadKey(ctx, p, "", parsed.KeyID, a)
	if err != nil {
		var kerr *Error
		if errors.As(err, &kerr) && kerr.Code == CodeNotFound {
			return opened{}, &Error{Code: CodeAccessDenied, Message: msgCiphertextKeyInaccessible, Cause: err}
		}
		return opened{}, err
	}
	if named != nil && named.key.ID != r.key.ID {
		return opened{}, Errorf(CodeIncorrectKey, "The key ID in the request does not identify a CMK that can perform this operation.")
	}
	if err := checkUsable(r); err != nil {
		return opened{}, err
	}
	if err := checkSymmetricUse(r, algorithm, algMember, a.action); err != nil {
		return opened{}, err
	}
	return s.openParsed(ctx, r, parsed, a.encryptionContext)
}

// openWith decrypts a blob that must belong to key r, with no caller or
// key-state checks: for the service's own sealed data.
func (s *Service) openWith(ctx context.Context, r resolved, blob []byte, encryptionContext map[string]string) (opened, error) {
	parsed, err := ciphertext.Parse(blob)
	if err != nil {
		return opened{}, errInvalidCiphertext(err)
	}
	if parsed.KeyID != r.key.ID {
		return opened{}, errInvalidCiphertext(errors.New("blob of another key"))
	}
	return s.openParsed(ctx, r, parsed, encryptionContext)
}

// openParsed decrypts a parsed blob with the version of key r it names.
func (s *Service) openParsed(ctx context.Context, r resolved, parsed ciphertext.Blob, encryptionContext map[string]string) (opened, error) {
	v, err := s.activeVersion(ctx, r.key.ID, int(parsed.Version))
	if errors.Is(err, ErrStoreNotFound) || errors.Is(err, errVersionNotActive) {
		return opened{}, errInvalidCiphertext(err)
	}
	if err != nil {
		return opened{}, Internal(err)
	}
	header, err := parsed.Header()
	if err != nil {
		return opened{}, errInvalidCiphertext(err)
	}
	plaintext, err := s.device.DecryptGCM(ctx, v.BackingID, parsed.IV, parsed.Sealed, ciphertext.AAD(header, encryptionContext))
	if fresh, ok := s.refreshVersion(ctx, v, err); ok { // discard.go: re-imported elsewhere
		v = fresh
		plaintext, err = s.device.DecryptGCM(ctx, v.BackingID, parsed.IV, parsed.Sealed, ciphertext.AAD(header, encryptionContext))
	}
	if errors.Is(err, hsm.ErrAuthFailed) {
		return opened{}, errInvalidCiphertext(err)
	}
	if err != nil {
		return opened{}, deviceError(err)
	}
	return opened{key: r, version: v, plaintext: plaintext}, nil
}

// Encrypt encrypts up to 4096 bytes under a symmetric key.
func (s *Service) Encrypt(ctx context.Context, in *EncryptInput) (*EncryptOutput, error) {
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	// The request's shape first, as AWS validates it before the key is
	// looked up or authorized.
	if err := requireBlob("plaintext", in.Plaintext, 1, maxPlaintext); err != nil {
		return nil, err
	}
	if _, err := optionalEnum("encryptionAlgorithm", in.EncryptionAlgorithm, algSymmetric, encryptionAlgorithms); err != nil {
		return nil, err
	}
	r, err := s.resolveKeyFor(ctx, "keyId", in.KeyId, keyOrAlias, cryptoAccess("Encrypt", in.EncryptionContext, in.GrantTokens, in.EncryptionAlgorithm))
	if err != nil {
		return nil, err
	}
	if err := checkUsable(r); err != nil {
		return nil, err
	}
	if isRSAEncryptionKey(r.key) {
		return s.encryptAsymmetric(ctx, r, in) // rsa.go
	}
	if err := checkSymmetricUse(r, in.EncryptionAlgorithm, "encryptionAlgorithm", "Encrypt"); err != nil {
		return nil, err
	}
	if isTrue(in.DryRun) {
		return nil, errDryRun()
	}
	blob, _, err := s.seal(ctx, r, in.Plaintext, in.EncryptionContext)
	if err != nil {
		return nil, err
	}
	return &EncryptOutput{CiphertextBlob: blob, KeyId: r.arn, EncryptionAlgorithm: algSymmetric}, nil
}

// dryRunIgnoresCiphertext validates DryRunModifiers and reports whether the
// request is a dry run that skips ciphertext checks.
func dryRunIgnoresCiphertext(dryRun *bool, modifiers []string) (bool, error) {
	ignore := false
	for i, m := range modifiers {
		if m != "IGNORE_CIPHERTEXT" {
			return false, validationf("Value '%s' at 'dryRunModifiers.%d.member' failed to satisfy constraint: Member must satisfy enum value set: [IGNORE_CIPHERTEXT]", truncateForMessage(m), i+1)
		}
		ignore = true
	}
	return ignore && isTrue(dryRun), nil
}

// Decrypt decrypts a symmetric ciphertext blob; KeyId is optional.
func (s *Service) Decrypt(ctx context.Context, in *DecryptInput) (*DecryptOutput, error) {
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	if err := checkRecipient(in.Recipient); err != nil {
		return nil, err
	}
	ignoreCiphertext, err := dryRunIgnoresCiphertext(in.DryRun, in.DryRunModifiers)
	if err != nil {
		return nil, err
	}
	if ignoreCiphertext {
		// Everything but the ciphertext is checked as the real call
		// would: the grant tokens, and with a KeyId its authorization,
		// state, usage, algorithm and (asymmetric keys) the absence of a
		// context.
		if in.KeyId == nil {
			if _, err := s.grantsFromTokens(ctx, in.GrantTokens); err != nil {
				return nil, err
			}
			return nil, errDryRun()
		}
		r, err := s.resolveKeyFor(ctx, "keyId", in.KeyId, keyOrAlias, access{skipAuthorization: true})
		if err != nil {
			return nil, err
		}
		if err := s.checkDecryptWithout(ctx, r, in.EncryptionContext, in.GrantTokens, in.EncryptionAlgorithm, "encryptionAlgorithm", "Decrypt", "Decrypt", ""); err != nil {
			return nil, err
		}
		return nil, errDryRun()
	}
	if err := requireBlob("ciphertextBlob", in.CiphertextBlob, 1, maxCiphertext); err != nil {
		return nil, err
	}
	if out, handled, err := s.decryptAsymmetric(ctx, in); handled { // rsa.go
		return out, err
	}
	o, err := s.open(ctx, in.CiphertextBlob, in.KeyId, "keyId", in.EncryptionAlgorithm, "encryptionAlgorithm",
		cryptoAccess("Decrypt", in.EncryptionContext, in.GrantTokens, in.EncryptionAlgorithm))
	if err != nil {
		return nil, err
	}
	if isTrue(in.DryRun) {
		return nil, errDryRun()
	}
	return &DecryptOutput{
		KeyId:               o.key.arn,
		Plaintext:           o.plaintext,
		EncryptionAlgorithm: algSymmetric,
		KeyMaterialId:       materialID(o.key.key, o.version),
	}, nil
}

// ReEncrypt decrypts a blob and encrypts its plaintext under another (or the
// same) key, inside the service: the plaintext is never returned.
func (s *Service) ReEncrypt(ctx context.Context, in *ReEncryptInput) (*ReEncryptOutput, error) {
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	ignoreCiphertext, err := dryRunIgnoresCiphertext(in.DryRun, in.DryRunModifiers)
	if err != nil {
		return nil, err
	}
	// The destination is authorized before anything is decrypted, with
	// kms:ReEncryptOnSameKey computed against the source key the request
	// names (SourceKeyId, else the blob's header), so that a policy that
	// allows re-encryption only onto the same key is honoured; once the
	// source is opened and its key proven, the destination is authorized
	// again against it (below).
	early := cryptoAccess("ReEncryptTo", in.DestinationEncryptionContext, in.GrantTokens, in.DestinationEncryptionAlgorithm)
	early.reEncryptPeer = s.claimedSourceKey(ctx, in)
	dst, err := s.resolveKeyFor(ctx, "destinationKeyId", in.DestinationKeyId, keyOrAlias, early)
	if err != nil {
		return nil, err
	}
	if err := checkUsable(dst); err != nil {
		return nil, err
	}
	// kms:ReEncryptOnSameKey: the source sees the destination's id now; the
	// destination is authorized again once the source's key is known.
	srcAccess := cryptoAccess("ReEncryptFrom", in.SourceEncryptionContext, in.GrantTokens, in.SourceEncryptionAlgorithm)
	srcAccess.reEncryptPeer = dst.key.ID
	if out, handled, err := s.reEncryptAsymmetric(ctx, in, dst, ignoreCiphertext, func() (opened, error) { // rsa.go
		return s.open(ctx, in.CiphertextBlob, in.SourceKeyId, "sourceKeyId", in.SourceEncryptionAlgorithm, "sourceEncryptionAlgorithm", srcAccess)
	}); handled {
		return out, err
	}
	if err := checkSymmetricUse(dst, in.DestinationEncryptionAlgorithm, "destinationEncryptionAlgorithm", "ReEncrypt"); err != nil {
		return nil, err
	}
	if ignoreCiphertext {
		if in.SourceKeyId != nil {
			if err := s.dryRunSymmetricSource(ctx, in, dst); err != nil {
				return nil, err
			}
		}
		return nil, errDryRun()
	}
	if err := requireBlob("ciphertextBlob", in.CiphertextBlob, 1, maxCiphertext); err != nil {
		return nil, err
	}
	src, err := s.open(ctx, in.CiphertextBlob, in.SourceKeyId, "sourceKeyId", in.SourceEncryptionAlgorithm, "sourceEncryptionAlgorithm", srcAccess)
	if err != nil {
		return nil, err
	}
	defer clear(src.plaintext)
	dstAccess := cryptoAccess("ReEncryptTo", in.DestinationEncryptionContext, in.GrantTokens, in.DestinationEncryptionAlgorithm)
	dstAccess.reEncryptPeer = src.key.key.ID
	if err := s.authorizeKey(ctx, dst, dstAccess); err != nil {
		return nil, err
	}
	if isTrue(in.DryRun) {
		return nil, errDryRun()
	}
	blob, v, err := s.seal(ctx, dst, src.plaintext, in.DestinationEncryptionContext)
	if err != nil {
		return nil, err
	}
	return &ReEncryptOutput{
		CiphertextBlob:                 blob,
		SourceKeyId:                    src.key.arn,
		KeyId:                          dst.arn,
		SourceEncryptionAlgorithm:      algSymmetric,
		DestinationEncryptionAlgorithm: algSymmetric,
		SourceKeyMaterialId:            materialID(src.key.key, src.version),
		DestinationKeyMaterialId:       materialID(dst.key, v),
	}, nil
}

// claimedSourceKey is the id of the key a ReEncrypt request says its
// ciphertext belongs to, before anything is verified: SourceKeyId if it
// names a key, else the key id in a symmetric blob's header; "" when
// neither tells (the request then fails on the source later). It only
// feeds kms:ReEncryptOnSameKey of the early destination check: a forged
// header cannot pass the source's decryption, and the destination is
// checked again against the proven source key.
func (s *Service) claimedSourceKey(ctx context.Context, in *ReEncryptInput) string {
	if in.SourceKeyId != nil {
		r, err := s.resolveKeyFor(ctx, "sourceKeyId", in.SourceKeyId, keyOrAlias, access{skipAuthorization: true})
		if err != nil {
			return ""
		}
		return r.key.ID
	}
	parsed, err := ciphertext.Parse(in.CiphertextBlob)
	if err != nil {
		return ""
	}
	return parsed.KeyID
}

// dataKeyLength validates KeySpec / NumberOfBytes: exactly one of them.
func dataKeyLength(spec *string, numberOfBytes *int32) (int, error) {
	if spec != nil && numberOfBytes != nil {
		return 0, Errorf(CodeValidation, "Please specify either number of bytes or key spec.")
	}
	if numberOfBytes != nil {
		if err := checkRange("numberOfBytes", *numberOfBytes, 1, 1024); err != nil {
			return 0, err
		}
		return int(*numberOfBytes), nil
	}
	if spec == nil {
		return 0, Errorf(CodeValidation, "Please specify either number of bytes or key spec.")
	}
	s, err := optionalEnum("keySpec", spec, "", []string{"AES_256", "AES_128"})
	if err != nil {
		return 0, err
	}
	if s == "AES_128" {
		return 16, nil
	}
	return 32, nil
}

// generateDataKey makes a data key from the HSM's generator and encrypts it
// under a symmetric key.
func (s *Service) generateDataKey(ctx context.Context, in *GenerateDataKeyInput, operation string) (resolved, []byte, []byte, KeyVersion, error) {
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return resolved{}, nil, nil, KeyVersion{}, err
	}
	if err := checkRecipient(in.Recipient); err != nil {
		return resolved{}, nil, nil, KeyVersion{}, err
	}
	n, err := dataKeyLength(in.KeySpec, in.NumberOfBytes) // before the key, as Encrypt's shape
	if err != nil {
		return resolved{}, nil, nil, KeyVersion{}, err
	}
	r, err := s.resolveKeyFor(ctx, "keyId", in.KeyId, keyOrAlias, cryptoAccess(operation, in.EncryptionContext, in.GrantTokens, nil))
	if err != nil {
		return resolved{}, nil, nil, KeyVersion{}, err
	}
	if err := checkUsable(r); err != nil {
		return resolved{}, nil, nil, KeyVersion{}, err
	}
	if err := checkSymmetricUse(r, nil, "", operation); err != nil {
		return resolved{}, nil, nil, KeyVersion{}, err
	}
	if isTrue(in.DryRun) {
		return resolved{}, nil, nil, KeyVersion{}, errDryRun()
	}
	plaintext, err := s.device.GenerateRandom(ctx, n)
	if err != nil {
		return resolved{}, nil, nil, KeyVersion{}, deviceError(err)
	}
	blob, v, err := s.seal(ctx, r, plaintext, in.EncryptionContext)
	if err != nil {
		clear(plaintext)
		return resolved{}, nil, nil, KeyVersion{}, err
	}
	return r, plaintext, blob, v, nil
}

// GenerateDataKey returns a new data key in plaintext and encrypted.
func (s *Service) GenerateDataKey(ctx context.Context, in *GenerateDataKeyInput) (*GenerateDataKeyOutput, error) {
	r, plaintext, blob, v, err := s.generateDataKey(ctx, in, "GenerateDataKey")
	if err != nil {
		return nil, err
	}
	return &GenerateDataKeyOutput{CiphertextBlob: blob, Plaintext: plaintext, KeyId: r.arn, KeyMaterialId: materialID(r.key, v)}, nil
}

// GenerateDataKeyWithoutPlaintext returns a new data key, encrypted only.
func (s *Service) GenerateDataKeyWithoutPlaintext(ctx context.Context, in *GenerateDataKeyInput) (*GenerateDataKeyWithoutPlaintextOutput, error) {
	r, plaintext, blob, v, err := s.generateDataKey(ctx, in, "GenerateDataKeyWithoutPlaintext")
	if err != nil {
		return nil, err
	}
	clear(plaintext)
	return &GenerateDataKeyWithoutPlaintextOutput{CiphertextBlob: blob, KeyId: r.arn, KeyMaterialId: materialID(r.key, v)}, nil
}

// GenerateRandom returns 1..1024 random bytes from the HSM.
func (s *Service) GenerateRandom(ctx context.Context, in *GenerateRandomInput) (*GenerateRandomOutput, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkRecipient(in.Recipient); err != nil {
		return nil, err
	}
	if in.CustomKeyStoreId != nil {
		if err := checkLength("customKeyStoreId", *in.CustomKeyStoreId, 1, 64); err != nil {
			return nil, err
		}
		return nil, Errorf(CodeUnsupportedOperation, "Custom key stores are not supported by this key service.")
	}
	if in.NumberOfBytes == nil {
		return nil, Errorf(CodeValidation, "NumberOfBytes is required.")
	}
	if err := checkRange("numberOfBytes", *in.NumberOfBytes, 1, 1024); err != nil {
		return nil, err
	}
	if err := s.authorizeIAM(ctx, p, "GenerateRandom", nil); err != nil {
		return nil, err
	}
	b, err := s.device.GenerateRandom(ctx, int(*in.NumberOfBytes))
	if err != nil {
		return nil, deviceError(err)
	}
	if len(b) != int(*in.NumberOfBytes) {
		return nil, Internal(fmt.Errorf("HSM returned %d random bytes, want %d", len(b), *in.NumberOfBytes))
	}
	return &GenerateRandomOutput{Plaintext: b}, nil
}

// cryptoAccess is the access of a symmetric cryptographic operation: its
// encryption context, grant tokens and encryption algorithm take part in
// authorization (grant constraints, kms:EncryptionContext*,
// kms:EncryptionAlgorithm).
func cryptoAccess(action string, encryptionContext map[string]string, grantTokens []string, algorithm *string) access {
	a := forAction(action)
	a.encryptionContext, a.hasContext, a.grantTokens = encryptionContext, true, grantTokens
	alg := algSymmetric
	if algorithm != nil {
		alg = *algorithm
	}
	a.conds = map[string][]string{policy.KeyEncryptionAlgorithm: {alg}}
	return a
}

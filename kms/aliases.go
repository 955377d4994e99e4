package kms

import (
	"context"
	"errors"
	"regexp"
	"strings"
)

var aliasNamePattern = regexp.MustCompile(`^[a-zA-Z0-9:/_-]+$`)

// maxAliasesPerKey is AWS's quota of aliases on one key.
const maxAliasesPerKey = 50

// validateAliasName checks an AliasName member as AWS does.
func validateAliasName(v *string) (string, error) {
	name, err := requireString("aliasName", v, 1, 256)
	if err != nil {
		return "", err
	}
	if !aliasNamePattern.MatchString(name) {
		return "", validationf("Value '%s' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$", name)
	}
	if !strings.HasPrefix(name, "alias/") {
		return "", Errorf(CodeValidation, `Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html`)
	}
	if name == "alias/" {
		return "", Errorf(CodeInvalidAliasName, "Alias name must have at least one character after the alias/ prefix.")
	}
	if strings.HasPrefix(name, "alias/aws/") {
		return "", Errorf(CodeInvalidAliasName, "Alias names that begin with alias/aws/ are reserved for AWS managed keys.")
	}
	return name, nil
}

// CreateAlias creates an alias for a key of the caller's account.
func (s *Service) CreateAlias(ctx context.Context, in *AliasInput) (*Empty, error) {
	name, err := validateAliasName(in.AliasName)
	if err != nil {
		return nil, err
	}
	r, err := s.resolveKey(ctx, "targetKeyId", in.TargetKeyId, keyOnly, "CreateAlias")
	if err != nil {
		return nil, err
	}
	// An alias needs permission on the alias (identity policies) as well as
	// on the key (its key policy), and lives in the key's account.
	if err := s.authorizeAlias(ctx, r, "CreateAlias", name); err != nil {
		return nil, err
	}
	if err := checkNotPendingDeletion(r); err != nil {
		return nil, err
	}
	n, err := s.store.CountAliases(ctx, r.key.ID)
	if err != nil {
		return nil, Internal(err)
	}
	if n >= maxAliasesPerKey {
		return nil, Errorf(CodeLimitExceeded, "The request was rejected because the key %s already has %d aliases.", r.arn, maxAliasesPerKey)
	}
	now := s.now().UTC()
	err = s.store.CreateAlias(ctx, AliasRecord{AccountID: r.caller.AccountID, Name: name, KeyID: r.key.ID, CreatedAt: now, UpdatedAt: now})
	if errors.Is(err, ErrStoreAlreadyExists) {
		return nil, Errorf(CodeAlreadyExists, "An alias with the name %s already exists", s.aliasARN(r.caller.AccountID, name))
	}
	s.authz.invalidateKey(r.key.ID) // kms:ResourceAliases
	if err != nil {
		return nil, Internal(err)
	}
	return &Empty{}, nil
}

// UpdateAlias points an existing alias at another key of the same type and
// usage.
func (s *Service) UpdateAlias(ctx context.Context, in *AliasInput) (*Empty, error) {
	name, err := validateAliasName(in.AliasName)
	if err != nil {
		return nil, err
	}
	r, err := s.resolveKey(ctx, "targetKeyId", in.TargetKeyId, keyOnly, "UpdateAlias")
	if err != nil {
		return nil, err
	}
	if err := s.authorizeAlias(ctx, r, "UpdateAlias", name); err != nil {
		return nil, err
	}
	alias, err := s.getAlias(ctx, r.caller.AccountID, name)
	if err != nil {
		return nil, err
	}
	// The key the alias leaves must allow it too.
	if alias.KeyID != r.key.ID {
		if _, err := s.loadKey(ctx, r.caller, r.caller.AccountID, alias.KeyID, forAction("UpdateAlias")); err != nil {
			var kerr *Error
			if !errors.As(err, &kerr) || kerr.Code != CodeNotFound {
				return nil, err
			}
		}
	}
	if err := checkNotPendingDeletion(r); err != nil {
		return nil, err
	}
	current, err := s.store.GetKey(ctx, alias.KeyID)
	if err != nil && !errors.Is(err, ErrStoreNotFound) {
		return nil, Internal(err)
	}
	// "The current KMS key and the new KMS key must be the same type (both
	// symmetric or both asymmetric or both HMAC), and they must have the
	// same key usage" (UpdateAlias, AWS KMS API reference): RSA_2048 to
	// ECC_NIST_P256 signing keys, or HMAC_256 to HMAC_512, may move.
	if err == nil && (keyType(current.KeySpec) != keyType(r.key.KeySpec) || current.KeyUsage != r.key.KeyUsage) {
		return nil, Errorf(CodeValidation, "Alias %s cannot be moved from a key of spec %s and usage %s to a key of spec %s and usage %s: the keys must be of the same type (symmetric, asymmetric or HMAC) and key usage.",
			name, current.KeySpec, current.KeyUsage, r.key.KeySpec, r.key.KeyUsage)
	}
	if alias.KeyID != r.key.ID {
		n, err := s.store.CountAliases(ctx, r.key.ID)
		if err != nil {
			return nil, Internal(err)
		}
		if n >= maxAliasesPerKey {
			return nil, Errorf(CodeLimitExceeded, "The request was rejected because the key %s already has %d aliases.", r.arn, maxAliasesPerKey)
		}
	}
	err = s.store.UpdateAlias(ctx, r.caller.AccountID, name, r.key.ID, s.now().UTC())
	if errors.Is(err, ErrStoreNotFound) {
		return nil, Errorf(CodeNotFound, "Alias %s is not found.", s.aliasARN(r.caller.AccountID, name))
	}
	if err != nil {
		return nil, Internal(err)
	}
	s.authz.invalidateKey(alias.KeyID)
	s.authz.invalidateKey(r.key.ID)
	return &Empty{}, nil
}

// DeleteAlias deletes an alias, whatever the state of its key.
func (s *Service) DeleteAlias(ctx context.Context, in *DeleteAliasInput) (*Empty, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	name, err := validateAliasName(in.AliasName)
	if err != nil {
		return nil, err
	}
	alias, err := s.getAlias(ctx, p.AccountID, name)
	if err != nil {
		return nil, err
	}
	if err := s.authorizeIdentity(ctx, p, "DeleteAlias", s.aliasARN(p.AccountID, name), nil); err != nil {
		return nil, err
	}
	if _, err := s.loadKey(ctx, p, p.AccountID, alias.KeyID, forAction("DeleteAlias")); err != nil {
		var kerr *Error
		if !errors.As(err, &kerr) || kerr.Code != CodeNotFound {
			return nil, err
		}
	}
	s.authz.invalidateKey(alias.KeyID)
	err = s.store.DeleteAlias(ctx, p.AccountID, name)
	if errors.Is(err, ErrStoreNotFound) {
		return nil, Errorf(CodeNotFound, "Alias %s is not found.", s.aliasARN(p.AccountID, name))
	}
	if err != nil {
		return nil, Internal(err)
	}
	return &Empty{}, nil
}

func (s *Service) getAlias(ctx context.Context, accountID, name string) (AliasRecord, error) {
	a, err := s.store.GetAlias(ctx, accountID, name)
	if errors.Is(err, ErrStoreNotFound) {
		return AliasRecord{}, Errorf(CodeNotFound, "Alias %s is not found.", s.aliasARN(accountID, name))
	}
	if err != nil {
		return AliasRecord{}, Internal(err)
	}
	return a, nil
}

// ListAliases lists the caller's aliases in name order, optionally only
// those of one key.
func (s *Service) ListAliases(ctx context.Context, in *ListAliasesInput) (*ListAliasesOutput, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	limit, after, err := pageParams(in.Limit, in.Marker, 100, 50)
	if err != nil {
		return nil, err
	}
	// ListAliases is an IAM-only permission, as in AWS; decided before the
	// KeyId is looked at, so that the answer cannot tell a caller without
	// the permission whether a key exists.
	if err := s.authorizeIAM(ctx, p, "ListAliases", nil); err != nil {
		return nil, err
	}
	keyID := ""
	if in.KeyId != nil {
		r, err := s.resolveKeyFor(ctx, "keyId", in.KeyId, keyOnly, access{skipAuthorization: true})
		if err != nil {
			return nil, err
		}
		if r.key.AccountID != p.AccountID {
			// Aliases are the caller's account's: another account's
			// key is answered as one that does not exist (no
			// cross-account use, as in AWS).
			return nil, Errorf(CodeNotFound, "Key '%s' does not exist", r.arn)
		}
		keyID = r.key.ID
	}
	aliases, err := s.store.ListAliases(ctx, p.AccountID, keyID, after, limit+1)
	if err != nil {
		return nil, Internal(err)
	}
	out := &ListAliasesOutput{Aliases: []AliasListEntry{}}
	for i, a := range aliases {
		if i == limit {
			out.Truncated = true
			out.NextMarker = encodeMarker(aliases[i-1].Name)
			break
		}
		out.Aliases = append(out.Aliases, AliasListEntry{
			AliasName:       a.Name,
			AliasArn:        s.aliasARN(a.AccountID, a.Name),
			TargetKeyId:     a.KeyID,
			CreationDate:    NewTimestamp(a.CreatedAt),
			LastUpdatedDate: NewTimestamp(a.UpdatedAt),
		})
	}
	return out, nil
}

// authorizeAlias checks the identity-policy side of an alias operation: the
// caller may act on the alias, which must be in the key's account.
func (s *Service) authorizeAlias(ctx context.Context, r resolved, action, name string) error {
	if r.key.AccountID != r.caller.AccountID {
		return Errorf(CodeNotFound, "Key '%s' does not exist", r.arn)
	}
	return s.authorizeIdentity(ctx, r.caller, action, s.aliasARN(r.caller.AccountID, name), nil)
}

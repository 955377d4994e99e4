package kms

import (
	"context"
	"errors"

	"hsmkms/kms/policy"
)

// resolveMode says which KeyId forms an operation accepts.
type resolveMode int

const (
	// keyOrAlias: key id, key ARN, alias name or alias ARN (cryptographic
	// operations, DescribeKey).
	keyOrAlias resolveMode = iota
	// keyOnly: key id or key ARN (management operations).
	keyOnly
)

// resolved is a key found for a request.
type resolved struct {
	key    KeyRecord
	arn    string
	caller Principal
}

// resolveKey validates a KeyId member, resolves it to a key and authorizes
// the caller's action on it (grants can allow the action when AWS lists it
// as a grant operation). Keys being created and deleted keys do not exist.
func (s *Service) resolveKey(ctx context.Context, member string, v *string, mode resolveMode, action string) (resolved, error) {
	return s.resolveKeyFor(ctx, member, v, mode, forAction(action))
}

// resolveKeyFor is resolveKey with the request's condition keys, grant
// tokens and encryption context, for operations that have them.
func (s *Service) resolveKeyFor(ctx context.Context, member string, v *string, mode resolveMode, a access) (resolved, error) {
	p, err := caller(ctx)
	if err != nil {
		return resolved{}, err
	}
	raw, err := requireString(member, v, 1, 2048)
	if err != nil {
		return resolved{}, err
	}
	ref, err := s.parseKeyRef(raw)
	if err != nil {
		return resolved{}, err
	}
	if ref.isAlias() && mode == keyOnly {
		return resolved{}, Errorf(CodeNotFound, "Invalid keyId '%s'", raw)
	}
	account := p.AccountID
	if ref.accountID != "" {
		account = ref.accountID
	}
	keyID := ref.keyID
	if ref.isAlias() {
		al, err := s.store.GetAlias(ctx, account, ref.alias)
		if errors.Is(err, ErrStoreNotFound) {
			return resolved{}, Errorf(CodeNotFound, "Alias %s is not found.", s.aliasARN(account, ref.alias))
		}
		if err != nil {
			return resolved{}, Internal(err)
		}
		keyID = al.KeyID
		a.conds = withCond(a.conds, policy.KeyRequestAlias, ref.alias)
	}
	return s.loadKey(ctx, p, account, keyID, a)
}

// loadKey loads a key by id and authorizes the caller's access to it.
// account is the account the caller named (its own unless it gave an ARN);
// "" accepts the key whatever its account (a ciphertext names its key).
func (s *Service) loadKey(ctx context.Context, p Principal, account, keyID string, a access) (resolved, error) {
	k, err := s.store.GetKey(ctx, keyID)
	if account == "" && err == nil {
		account = k.AccountID
	}
	arn := s.keyARN(account, keyID)
	if errors.Is(err, ErrStoreNotFound) || (err == nil && (k.State == StateCreating || k.State == StateDeleted || k.AccountID != account || k.AccountID == internalAccount)) {
		return resolved{}, Errorf(CodeNotFound, "Key '%s' does not exist", arn)
	}
	if err != nil {
		return resolved{}, Internal(err)
	}
	if err := s.noteKey(ctx, k, arn, false); err != nil { // audit resources, quotas (audit_support.go)
		return resolved{}, err
	}
	r := resolved{key: k, arn: arn, caller: p}
	if k.AccountID != p.AccountID && !a.crossAccount && !a.skipAuthorization {
		// Another account's key, for an operation AWS never allows across
		// accounts: as if it did not exist.
		return resolved{}, Errorf(CodeNotFound, "Key '%s' does not exist", arn)
	}
	if !a.skipAuthorization {
		if err := s.authorizeKey(ctx, r, a); err != nil {
			return resolved{}, err
		}
	}
	return r, nil
}

// withCond returns conds with one more single-valued condition key.
func withCond(conds map[string][]string, key, value string) map[string][]string {
	out := make(map[string][]string, len(conds)+1)
	for k, v := range conds {
		out[k] = v
	}
	out[key] = []string{value}
	return out
}

// checkUsable enforces the key-state rules of cryptographic operations.
func checkUsable(r resolved) error {
	switch r.key.State {
	case StateEnabled:
		return nil
	case StateDisabled:
		return Errorf(CodeDisabled, "%s is disabled.", r.arn)
	case StatePendingDeletion:
		return Errorf(CodeInvalidState, "%s is pending deletion.", r.arn)
	case StatePendingImport:
		return Errorf(CodeInvalidState, "%s is pending import.", r.arn)
	default:
		return Errorf(CodeInvalidState, "%s is in state %s.", r.arn, r.key.State)
	}
}

// checkNotPendingDeletion enforces the rule of management operations that
// are refused while a key waits for deletion.
func checkNotPendingDeletion(r resolved) error {
	if r.key.State == StatePendingDeletion {
		return Errorf(CodeInvalidState, "%s is pending deletion.", r.arn)
	}
	return nil
}

package kms

import (
	"context"
	"errors"
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

// resolveKey validates a KeyId member, resolves it to a key of the caller's
// account and returns it. Keys being created and deleted keys do not exist.
// action is the operation name, used in AccessDenied messages.
func (s *Service) resolveKey(ctx context.Context, member string, v *string, mode resolveMode, action string) (resolved, error) {
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
		a, err := s.store.GetAlias(ctx, account, ref.alias)
		if errors.Is(err, ErrStoreNotFound) {
			return resolved{}, Errorf(CodeNotFound, "Alias %s is not found.", s.aliasARN(account, ref.alias))
		}
		if err != nil {
			return resolved{}, Internal(err)
		}
		keyID = a.KeyID
	}
	return s.loadKey(ctx, p, account, keyID, action)
}

// loadKey loads a key by id for the caller. account is the account the
// caller named (its own unless it gave an ARN).
func (s *Service) loadKey(ctx context.Context, p Principal, account, keyID, action string) (resolved, error) {
	arn := s.keyARN(account, keyID)
	k, err := s.store.GetKey(ctx, keyID)
	if errors.Is(err, ErrStoreNotFound) || (err == nil && (k.State == StateCreating || k.State == StateDeleted || k.AccountID != account)) {
		return resolved{}, Errorf(CodeNotFound, "Key '%s' does not exist", arn)
	}
	if err != nil {
		return resolved{}, Internal(err)
	}
	if k.AccountID != p.AccountID {
		// Key policies and grants, which can allow cross-account use, come
		// with the identity work; until then no policy allows it.
		return resolved{}, Errorf(CodeAccessDenied,
			"User: %s is not authorized to perform: kms:%s on resource: %s because no resource-based policy allows the kms:%s action",
			p.ARN, action, arn, action)
	}
	return resolved{key: k, arn: arn, caller: p}, nil
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

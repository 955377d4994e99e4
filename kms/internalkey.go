package kms

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// internalAccount owns the service's own keys. It is not a real account:
// no access key belongs to it, so its keys are invisible to every caller.
const internalAccount = "000000000000"

// internalKey returns the service's own symmetric key for a purpose (grant
// tokens, ...), creating it on first use. It is an ordinary key record with
// versions, so the nonce bound, the reconciler and the HSM-and-database
// rule apply to it as to any key; it lives in internalAccount, which no
// caller can reach.
func (s *Service) internalKey(ctx context.Context, purpose string) (resolved, error) {
	return s.internalKeyOf(ctx, purpose, usageEncrypt, specSymmetric)
}

// internalKeyOf is internalKey for a key of the given usage and spec.
func (s *Service) internalKeyOf(ctx context.Context, purpose, usage, spec string) (resolved, error) {
	setting := "internal_key:" + purpose
	load := func(id string) (resolved, error) {
		k, err := s.store.GetKey(ctx, id)
		if err != nil {
			return resolved{}, fmt.Errorf("internal key %s: %w", purpose, err)
		}
		if k.State != StateEnabled {
			return resolved{}, fmt.Errorf("internal key %s is %s", purpose, k.State)
		}
		return resolved{key: k, arn: s.keyARN(k.AccountID, k.ID)}, nil
	}
	if id, err := s.store.GetSetting(ctx, setting); err == nil {
		return load(id)
	} else if !errors.Is(err, ErrStoreNotFound) {
		return resolved{}, err
	}
	unlock := s.lockKey(setting)
	defer unlock()
	if id, err := s.store.GetSetting(ctx, setting); err == nil {
		return load(id)
	}
	key, err := s.createKeyInHSM(ctx, KeyRecord{
		ID:          uuid.NewString(),
		AccountID:   internalAccount,
		Description: "internal: " + purpose,
		KeyUsage:    usage,
		KeySpec:     spec,
		Origin:      originKMS,
		KeyManager:  "AWS",
	}, nil)
	if err != nil {
		return resolved{}, fmt.Errorf("create internal key %s: %w", purpose, err)
	}
	if err := s.store.PutSetting(ctx, setting, key.ID); err != nil {
		return resolved{}, err
	}
	return resolved{key: key, arn: s.keyARN(key.AccountID, key.ID)}, nil
}

// sealInternal encrypts data under the internal key for purpose, binding
// the purpose and aad as encryption context.
func (s *Service) sealInternal(ctx context.Context, purpose string, data []byte, aad map[string]string) ([]byte, error) {
	r, err := s.internalKey(ctx, purpose)
	if err != nil {
		return nil, err
	}
	blob, _, err := s.seal(ctx, r, data, internalContext(purpose, aad))
	return blob, err
}

// openInternal reverses sealInternal. Any failure is reported as errSealed:
// the caller treats the input as forged.
func (s *Service) openInternal(ctx context.Context, purpose string, blob []byte, aad map[string]string) ([]byte, error) {
	r, err := s.internalKey(ctx, purpose)
	if err != nil {
		return nil, err
	}
	o, err := s.openWith(ctx, r, blob, internalContext(purpose, aad))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errSealed, err)
	}
	return o.plaintext, nil
}

var errSealed = errors.New("kms: sealed data does not open")

func internalContext(purpose string, aad map[string]string) map[string]string {
	ec := make(map[string]string, len(aad)+1)
	for k, v := range aad {
		ec[k] = v
	}
	ec["kms-internal-purpose"] = purpose
	return ec
}

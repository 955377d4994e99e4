package kms

// Secret access keys at rest.
//
// Every secret access key (long-term and temporary) is sealed with
// AES-256-GCM under the service's internal key for secrets (internalKey,
// purpose secretsPurpose): a KMS key of the internal account whose
// material lives in the HSM like any customer key and never leaves it. The
// access key id is bound in the additional data, so a sealed secret copied
// onto another key's row does not open.
//
// GCM invocation bound: each seal is one encryption with a random 96-bit
// IV, counted by the same nonce guard as customer keys (nonce.go): the
// internal key's versions reserve invocations from the database and move to
// a new version at the 2^32 bound, so the bound cannot be passed however
// many access keys and AssumeRole sessions are ever created. Volume is
// small anyway: one invocation per CreateAccessKey and per AssumeRole.
// Opening consumes no invocations.
//
// The plain-text secret is returned once, by the call that creates it, and
// otherwise exists only in the credentials cache (identity.go).

import (
	"context"
	"fmt"
)

// secretsPurpose names the internal key that seals secrets.
const secretsPurpose = "secret-access-keys"

func secretAAD(accessKeyID string) map[string]string {
	return map[string]string{"access-key-id": accessKeyID}
}

// sealSecret seals a secret access key for storage.
func (s *Service) sealSecret(ctx context.Context, accessKeyID, secret string) ([]byte, error) {
	blob, err := s.sealInternal(ctx, secretsPurpose, []byte(secret), secretAAD(accessKeyID))
	if err != nil {
		return nil, fmt.Errorf("seal secret of %s: %w", accessKeyID, err)
	}
	return blob, nil
}

// openSecret reverses sealSecret.
func (s *Service) openSecret(ctx context.Context, accessKeyID string, sealed []byte) (string, error) {
	if len(sealed) == 0 {
		return "", fmt.Errorf("access key %s has no sealed secret", accessKeyID)
	}
	b, err := s.openInternal(ctx, secretsPurpose, sealed, secretAAD(accessKeyID))
	if err != nil {
		return "", fmt.Errorf("open secret of %s: %w", accessKeyID, err)
	}
	return string(b), nil
}

// sealPlainSecrets seals every access key secret still stored in plain text
// (rows written before secrets were sealed) and then scrubs the database
// file, so that no plain-text secret remains on disk. It runs at start-up,
// from Bootstrap; on an up-to-date database it is one indexed query.
func (s *Service) sealPlainSecrets(ctx context.Context) (int, error) {
	ids, err := s.store.PlainAccessKeyIDs(ctx)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	for _, id := range ids {
		k, err := s.store.GetAccessKey(ctx, id)
		if err != nil {
			return 0, err
		}
		sealed, err := s.sealSecret(ctx, id, k.Secret)
		if err != nil {
			return 0, err
		}
		if err := s.store.SealAccessKeySecret(ctx, id, sealed); err != nil {
			return 0, err
		}
	}
	if err := s.store.ScrubFreePages(ctx); err != nil {
		return 0, fmt.Errorf("scrub plain-text secrets: %w", err)
	}
	s.log.InfoContext(ctx, "sealed plain-text secret access keys under the HSM", "count", len(ids))
	return len(ids), nil
}

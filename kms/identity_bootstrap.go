package kms

import (
	"context"
	"errors"
	"fmt"
)

// adminPolicyName and adminPolicyDocument are the identity policy of the
// bootstrap admin: everything. Through the default key policy, which
// delegates to the account, it lets the admin use every key of its account.
const (
	adminPolicyName     = "AdministratorAccess"
	adminPolicyDocument = `{"Version":"2012-10-17","Statement":[{"Sid":"BootstrapAdministrator","Effect":"Allow","Action":"*","Resource":"*"}]}`
)

// ensureBootstrapIdentity makes sure the default account and its admin user
// exist as identity records. The admin policy is attached when the user is
// created, never again: an operator who narrows it keeps the narrower one.
func (s *Service) ensureBootstrapIdentity(ctx context.Context, account string) error {
	now := s.now().UTC()
	if _, err := s.store.GetAccount(ctx, account); errors.Is(err, ErrStoreNotFound) {
		err = s.store.CreateAccount(ctx, AccountRecord{ID: account, Name: "bootstrap", CreatedAt: now})
		if err != nil && !errors.Is(err, ErrStoreAlreadyExists) {
			return fmt.Errorf("bootstrap account: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("bootstrap account: %w", err)
	}
	arn := userARN(account, bootstrapAdminName)
	if _, err := s.store.GetPrincipal(ctx, arn); err == nil {
		return nil
	} else if !errors.Is(err, ErrStoreNotFound) {
		return fmt.Errorf("bootstrap admin: %w", err)
	}
	uid, err := newUniqueID("AIDA")
	if err != nil {
		return err
	}
	err = s.store.CreatePrincipal(ctx, PrincipalRecord{
		ARN: arn, AccountID: account, Kind: KindUser, Name: bootstrapAdminName, UniqueID: uid, CreatedAt: now,
	})
	if errors.Is(err, ErrStoreAlreadyExists) {
		return nil // another process got there first and attaches the policy
	}
	if err != nil {
		return fmt.Errorf("bootstrap admin: %w", err)
	}
	if err := s.store.PutIdentityPolicy(ctx, arn, NamedPolicy{Name: adminPolicyName, Document: adminPolicyDocument}, maxIdentityPolicies); err != nil {
		return fmt.Errorf("bootstrap admin policy: %w", err)
	}
	return nil
}

// createAccessKey makes a long-term access key for a principal, stores it
// with its secret sealed, and returns it with the plain-text secret: the
// only time the secret is shown.
func (s *Service) createAccessKey(ctx context.Context, account, principalARN string) (AccessKey, error) {
	key, err := newAccessKey(account, principalARN, s.now())
	if err != nil {
		return AccessKey{}, err
	}
	sealed, err := s.sealSecret(ctx, key.ID, key.Secret)
	if err != nil {
		return AccessKey{}, err
	}
	stored := key
	stored.Secret, stored.SealedSecret = "", sealed
	if err := s.store.PutAccessKey(ctx, stored); err != nil {
		return AccessKey{}, err
	}
	return key, nil
}

// bootstrapAdminARN returns the ARN of the bootstrap admin user, or "" if
// the service has not been bootstrapped.
func (s *Service) bootstrapAdminARN(ctx context.Context) (string, error) {
	if v := s.ids.adminARN.Load(); v != nil {
		return *v, nil
	}
	account, err := s.store.GetSetting(ctx, settingAccountID)
	if errors.Is(err, ErrStoreNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	arn := userARN(account, bootstrapAdminName)
	s.ids.adminARN.Store(&arn)
	return arn, nil
}

// IsBootstrapAdmin reports whether p is the bootstrap admin user (any of
// its access keys).
func (s *Service) IsBootstrapAdmin(ctx context.Context, p Principal) (bool, error) {
	arn, err := s.bootstrapAdminARN(ctx)
	if err != nil || arn == "" {
		return false, err
	}
	return p.ARN == arn && p.Type == PrincipalUser, nil
}

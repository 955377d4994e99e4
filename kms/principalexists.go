package kms

import (
	"context"
	"errors"
	"strings"
)

// principalExists reports whether name names a principal this installation
// knows: an account (its root ARN or bare 12-digit id), an IAM user or role
// (by ARN, as stored), or an STS assumed-role session of a known account.
// Anything else, including well-formed ARNs of other services, federated
// users and other partitions, is false. The key-policy check
// (checkPrincipalsExist) and CreateGrant both use it, so that what a policy
// may name and what a grant may name cannot drift apart. Only store
// failures are errors.
func (s *Service) principalExists(ctx context.Context, name string) (bool, error) {
	account, lookup := name, false
	if strings.HasPrefix(name, "arn:") {
		parts := strings.SplitN(name, ":", 6)
		// IAM and STS ARNs are global: no region.
		if len(parts) != 6 || parts[1] != "aws" || parts[3] != "" {
			return false, nil
		}
		service, rest := parts[2], parts[5]
		account = parts[4]
		switch {
		case service == "iam" && rest == "root":
		case service == "iam" && (strings.HasPrefix(rest, "user/") || strings.HasPrefix(rest, "role/")):
			lookup = true
		case service == "sts" && isAssumedRoleResource(rest):
			// A session lives only as long as its credentials; the ARN
			// stays a valid name for it (as in AWS), so only its account
			// is checked.
		default:
			return false, nil
		}
	}
	if !accountPattern.MatchString(account) {
		return false, nil
	}
	if _, err := s.store.GetAccount(ctx, account); errors.Is(err, ErrStoreNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if !lookup {
		return true, nil
	}
	if _, err := s.store.GetPrincipal(ctx, name); errors.Is(err, ErrStoreNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return true, nil
}

// isAssumedRoleResource reports whether the resource part of an STS ARN is
// assumed-role/ROLE/SESSION with both parts present.
func isAssumedRoleResource(rest string) bool {
	r, ok := strings.CutPrefix(rest, "assumed-role/")
	if !ok {
		return false
	}
	role, session, ok := strings.Cut(r, "/")
	return ok && role != "" && session != "" && !strings.Contains(session, "/")
}

// checkGrantPrincipal refuses a grantee or retiring principal that names
// no principal, with the error and message AWS KMS gives for one
// (InvalidArnException, "ARN does not refer to a valid principal: ARN").
// A grant to a typo would otherwise allow nobody, or a principal created
// later under that name.
func (s *Service) checkGrantPrincipal(ctx context.Context, name string) error {
	ok, err := s.principalExists(ctx, name)
	if err != nil {
		return Internal(err)
	}
	if !ok {
		return Errorf(CodeInvalidArn, "ARN does not refer to a valid principal: %s", name)
	}
	return nil
}

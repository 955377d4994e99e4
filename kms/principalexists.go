package kms

import (
	"context"
	"errors"
	"strings"
)

// principalName is a principal name as key policies and grants give it,
// parsed: an account (its root ARN or bare 12-digit id), an IAM user or
// role, or an STS assumed-role session. IAM and STS ARNs are global (no
// region); this service has no paths, federation or other partitions.
type principalName struct {
	account string
	kind    string // "root", "user", "role" or "assumed-role"
	name    string // the user's or role's name (the session's role)
}

// parsePrincipalName parses a principal name; ok is false for anything
// else, including well-formed ARNs of other services.
func parsePrincipalName(s string) (p principalName, ok bool) {
	if accountPattern.MatchString(s) {
		return principalName{account: s, kind: "root"}, true
	}
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] != "aws" || parts[3] != "" || !accountPattern.MatchString(parts[4]) {
		return principalName{}, false
	}
	p.account = parts[4]
	service, rest := parts[2], parts[5]
	switch {
	case service == "iam" && rest == "root":
		p.kind = "root"
	case service == "iam" && strings.HasPrefix(rest, "user/"), service == "iam" && strings.HasPrefix(rest, "role/"):
		p.kind, p.name, _ = strings.Cut(rest, "/")
	case service == "sts" && strings.HasPrefix(rest, "assumed-role/"):
		role, session, ok := strings.Cut(strings.TrimPrefix(rest, "assumed-role/"), "/")
		if !ok || role == "" || session == "" || strings.Contains(session, "/") {
			return principalName{}, false
		}
		p.kind, p.name = "assumed-role", role
	default:
		return principalName{}, false
	}
	if p.kind != "root" && p.name == "" {
		return principalName{}, false
	}
	return p, true
}

// namedAccount returns the account a principal name stands for when it
// names an account rather than a user, role or session ("" otherwise).
func namedAccount(name string) string {
	if p, ok := parsePrincipalName(name); ok && p.kind == "root" {
		return p.account
	}
	return ""
}

// principalExists reports whether name names a principal this installation
// knows: an account, an IAM user or role (by ARN, as stored), or an STS
// assumed-role session of a role that exists (a session lives only as long
// as its credentials, and the ARN stays a valid name for it, as in AWS).
// The key-policy check (checkPrincipalsExist) and CreateGrant both use it,
// so that what a policy may name and what a grant may name cannot drift
// apart. Only store failures are errors.
func (s *Service) principalExists(ctx context.Context, name string) (bool, error) {
	p, ok := parsePrincipalName(name)
	if !ok {
		return false, nil
	}
	if _, err := s.store.GetAccount(ctx, p.account); errors.Is(err, ErrStoreNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	lookup := name
	switch p.kind {
	case "root":
		return true, nil
	case "assumed-role":
		lookup = roleARN(p.account, p.name)
	}
	if _, err := s.store.GetPrincipal(ctx, lookup); errors.Is(err, ErrStoreNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return true, nil
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

package kms

import (
	"context"
	"errors"
	"slices"

	"hsmkms/kms/policy"
)

// Who may retire a grant, as AWS documents it ("Retiring and revoking
// grants", https://docs.aws.amazon.com/kms/latest/developerguide/grant-delete.html):
//
//   - the retiring principal of the grant, and the grantee principal when
//     the grant allows RetireGrant, without any kms:RetireGrant permission;
//   - the AWS account in which the grant was created (its root);
//   - "The AWS account that owns the KMS key can delegate the
//     kms:RetireGrant permission to an IAM principal in the account";
//   - "If the retiring principal is a different AWS account, administrators
//     in the other account can use kms:RetireGrant to delegate permission to
//     retire the grant to an IAM principal in that account": a retiring
//     principal that names an account is that account's root, and its
//     users and roles only when their identity policies allow
//     kms:RetireGrant (as an account named in a key policy delegates);
//   - "The kms:RetireGrant permission alone does not allow principals to
//     retire a grant. The kms:RetireGrant permission is not effective in a
//     key policy": the key policy takes no part, neither to allow nor to
//     deny, and an identity policy allowing kms:RetireGrant helps only the
//     two accounts above;
//   - "To deny permission to retire a grant, you can use a Deny action with
//     the kms:RetireGrant permission in your IAM policies": an explicit
//     Deny in the caller's identity policies wins over all of the above.
//
// A grantee principal that names an account is, likewise, that account's
// root, and its users and roles only when their identity policies allow
// kms:RetireGrant, as for the grant's other operations (grantAllows).

// namesExactly reports whether a principal name is the caller itself or
// the role behind its session; an account name does not count (see
// authorizeRetire for what it delegates).
func namesExactly(name string, p Principal) bool {
	return name != "" && (name == p.ARN || (p.RoleARN != "" && name == p.RoleARN))
}

// authorizeRetire decides whether the caller may retire grant g.
func (s *Service) authorizeRetire(ctx context.Context, p Principal, g GrantRecord) error {
	k, err := s.store.GetKey(ctx, g.KeyID)
	if errors.Is(err, ErrStoreNotFound) {
		return Errorf(CodeNotFound, "Grant ID %s not found.", g.GrantID)
	}
	if err != nil {
		return Internal(err)
	}
	ka, err := s.keyAuthz(ctx, k)
	if err != nil {
		return Internal(err)
	}
	ids, err := s.identityPolicies(ctx, p)
	if err != nil {
		return Internal(err)
	}
	c := s.requestContext(ctx, p)
	addKeyContext(c, k, ka, access{action: "RetireGrant"}, nil)
	req := &policy.Request{Principal: enginePrincipal(p), Action: "kms:RetireGrant", Resource: s.keyARN(k.AccountID, k.ID), Context: c}
	// Identity policies alone (no key policy): an explicit Deny, an Allow,
	// or neither; the root of an account counts as allowed.
	d := policy.Decide(policy.Input{Request: req, IdentityPolicies: ids})
	if d.Reason == policy.DeniedByIdentityPolicy {
		return s.denied(ctx, req, d)
	}
	switch {
	case namesExactly(g.RetiringPrincipal, p):
		return nil
	case slices.Contains(g.Operations, "RetireGrant") &&
		(namesExactly(g.GranteePrincipal, p) || (d.Allowed && namesAccountOf(g.GranteePrincipal, p))):
		return nil
	case d.Allowed && p.AccountID != "" && (p.AccountID == k.AccountID || namedAccount(g.RetiringPrincipal) == p.AccountID):
		return nil
	}
	if d.Allowed {
		// An identity policy allowed kms:RetireGrant, but the caller's
		// account is neither the key's nor the retiring principal's.
		d = policy.Decision{Reason: policy.DeniedNoResourcePolicy}
	}
	return s.denied(ctx, req, d)
}

// authorizeListRetirable decides ListRetirableGrants as AWS documents it:
// "You must specify a principal in your AWS account" and "The authorized
// resource in ListRetirableGrants calls is the retiring principal
// specified in the request" (identity policies of the caller's account).
// A retiring principal of another account, or a name that is no principal
// of any account, is refused like a resource no policy allows: listing
// another account's retirable grants would show who holds grants on keys
// the caller may know nothing of.
func (s *Service) authorizeListRetirable(ctx context.Context, p Principal, retiring string) error {
	named, ok := parsePrincipalName(retiring)
	resource := retiring
	if ok && named.kind == "root" {
		resource = "arn:aws:iam::" + named.account + ":root"
	}
	if !ok || named.account != p.AccountID {
		req := &policy.Request{Principal: enginePrincipal(p), Action: "kms:ListRetirableGrants", Resource: resource}
		return s.denied(ctx, req, policy.Decision{Reason: policy.DeniedNoIdentityPolicy})
	}
	return s.authorizeIdentity(ctx, p, "ListRetirableGrants", resource, nil)
}

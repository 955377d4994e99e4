package kms

import (
	"context"
	"encoding/json"
	"strings"

	"hsmkms/kms/policy"
)

// adminActionPrefix is the action namespace of the admin API in policies:
// "kmsadmin:CreateUser", "kmsadmin:*", ...
const adminActionPrefix = "kmsadmin:"

// authorizeAdmin decides whether the caller may run admin operation op on
// resource (a user, role or account root ARN; "*" for operations on no
// resource) in account ("" for operations spanning accounts).
//
//   - The bootstrap admin may do everything, in every account, and is the
//     only one who may act on the bootstrap admin user itself.
//   - Anyone else needs an identity policy allowing kmsadmin:<op> on the
//     resource, and only within their own account: an administrator of
//     one account cannot reach into another. Account roots have every
//     permission of their account, as in IAM. Operations spanning accounts
//     are the bootstrap admin's alone.
//
// Denials are AccessDeniedException with AWS's message and are logged with
// the deciding statement (authz.go, denied).
func (s *Service) authorizeAdmin(ctx context.Context, op, account, resource string) error {
	return s.authorizeAdminWith(ctx, op, account, resource, nil)
}

// authorizeAdminWith is authorizeAdmin with the request's own condition
// keys (aws:RequestTag/K and aws:TagKeys of a tagging or creating call). A
// user or role resource also brings its tags as aws:ResourceTag/K (and
// iam:ResourceTag/K), read only once the account check passed: IAM's "act
// only on users with tag X" policies rely on them, and without them a
// Deny on a protected principal never matched.
func (s *Service) authorizeAdminWith(ctx context.Context, op, account, resource string, conds map[string][]string) error {
	p, err := caller(ctx)
	if err != nil {
		return err
	}
	admin, err := s.IsBootstrapAdmin(ctx, p)
	if err != nil {
		return Internal(err)
	}
	if admin {
		// The only caller acting in another account (others are refused
		// there below): its event belongs to the account it changes.
		noteAccount(ctx, account)
		return nil
	}
	action := adminActionPrefix + op
	req := &policy.Request{Principal: enginePrincipal(p), Action: action, Resource: resource}
	// The bootstrap admin holds every account: only it may act on itself
	// (its access keys, policies, tags). An administrator of its account
	// acting on it would otherwise gain every account.
	adminARN, err := s.bootstrapAdminARN(ctx)
	if err != nil {
		return Internal(err)
	}
	if adminARN != "" && resource == adminARN {
		return s.denied(ctx, req, policy.Decision{Reason: policy.DeniedNoIdentityPolicy})
	}
	if account == "" || account != p.AccountID {
		d := policy.Decision{Reason: policy.DeniedNoIdentityPolicy}
		return s.denied(ctx, req, d)
	}
	ids, err := s.identityPolicies(ctx, p)
	if err != nil {
		return Internal(err)
	}
	req.Context = s.requestContext(ctx, p)
	for k, v := range conds {
		req.Context[k] = v
	}
	if _, kind, _, ok := parseIAMARN(resource); ok && (kind == KindUser || kind == KindRole) {
		tags, err := s.store.PrincipalTags(ctx, resource)
		if err != nil {
			return Internal(err)
		}
		for _, t := range tags { // key order: decided the same way every time
			req.Context[policy.KeyResourceTagPrefix+strings.ToLower(t.Key)] = []string{t.Value}
			req.Context["iam:resourcetag/"+strings.ToLower(t.Key)] = []string{t.Value}
		}
	}
	d := policy.Decide(policy.Input{Request: req, IdentityPolicies: ids})
	if d.Allowed {
		return nil
	}
	return s.denied(ctx, req, d)
}

// validateIdentityPolicy parses an identity policy as the authorization
// code will, so that what is stored is what is enforced.
func validateIdentityPolicy(doc string) error {
	if _, err := policy.Parse(doc, policy.AsIdentityPolicy()); err != nil {
		return policyError(err)
	}
	return nil
}

// validateTrustPolicy parses a role's trust policy: a resource-based policy
// (every statement names a Principal) deciding sts:AssumeRole. Like key
// policies and grants (and IAM: "Invalid principal in policy"), it refuses
// a principal that names no account, user or role this service knows: a
// typo would admit nobody, or whoever is created later under that name.
func (s *Service) validateTrustPolicy(ctx context.Context, doc string) error {
	pol, err := parseTrustPolicy(doc, "trust policy")
	if err != nil {
		return err
	}
	if pol.ServiceWildcard() {
		return Errorf(CodeMalformedPolicy, "Invalid principal in policy: \"Service\":\"*\"")
	}
	for _, v := range pol.Principals() {
		ok, err := s.principalExists(ctx, v)
		if err != nil {
			return Internal(err)
		}
		if !ok {
			return Errorf(CodeMalformedPolicy, "Invalid principal in policy: \"AWS\":\"%s\"", v)
		}
	}
	return nil
}

// parseTrustPolicy parses a trust policy for evaluation. Trust policies
// have no Resource (the resource is the role; IAM refuses the element),
// while the policy engine, built for key policies, lets a statement without
// Resource apply to nothing; so each statement is given "Resource": "*"
// before parsing.
func parseTrustPolicy(doc, name string) (*policy.Policy, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(doc), &top); err != nil || top == nil {
		return nil, &Error{Code: CodeMalformedPolicy, Message: "Syntax errors in policy."}
	}
	raw, ok := top["Statement"]
	if !ok {
		return nil, &Error{Code: CodeMalformedPolicy, Message: "Trust policy must contain a Statement."}
	}
	var stmts []map[string]json.RawMessage
	single := false
	if err := json.Unmarshal(raw, &stmts); err != nil {
		var one map[string]json.RawMessage
		if err := json.Unmarshal(raw, &one); err != nil || one == nil {
			return nil, &Error{Code: CodeMalformedPolicy, Message: "Statement must be an object or a list of objects."}
		}
		stmts, single = []map[string]json.RawMessage{one}, true
	}
	for _, st := range stmts {
		if st == nil {
			return nil, &Error{Code: CodeMalformedPolicy, Message: "Statement must be an object or a list of objects."}
		}
		if _, ok := st["Resource"]; ok {
			return nil, &Error{Code: CodeMalformedPolicy, Message: "Has prohibited field Resource"}
		}
		if _, ok := st["NotResource"]; ok {
			return nil, &Error{Code: CodeMalformedPolicy, Message: "Has prohibited field NotResource"}
		}
		st["Resource"] = json.RawMessage(`"*"`)
	}
	var err error
	if single {
		top["Statement"], err = json.Marshal(stmts[0])
	} else {
		top["Statement"], err = json.Marshal(stmts)
	}
	if err != nil {
		return nil, Internal(err)
	}
	normalized, err := json.Marshal(top)
	if err != nil {
		return nil, Internal(err)
	}
	// The original is parsed too: its errors (duplicate members, bad
	// values) are the ones to report.
	if _, err := policy.Parse(doc, policy.WithName(name)); err != nil {
		return nil, policyError(err)
	}
	p, err := policy.Parse(string(normalized), policy.WithName(name))
	if err != nil {
		return nil, policyError(err)
	}
	return p, nil
}

// policyError turns a policy parse error into MalformedPolicyDocument
// (or LimitExceeded for size) with the parser's message.
func policyError(err error) error {
	if pe, ok := err.(*policy.Error); ok {
		return &Error{Code: Code(pe.Kind), Message: pe.Message, Cause: err}
	}
	return &Error{Code: CodeMalformedPolicy, Message: "The policy document is not valid.", Cause: err}
}

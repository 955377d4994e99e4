package kms

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"

	"hsmkms/kms/policy"
)

var keyPolicyNamePattern = regexp.MustCompile(`^[\w]+$`)

// defaultPolicyName is the only key policy name AWS KMS has.
const defaultPolicyName = "default"

// checkPolicyName validates a PolicyName member: "default" when absent.
func checkPolicyName(v *string) error {
	name, given, err := optionalString("policyName", v, 1, 128)
	if err != nil || !given {
		return err
	}
	if !keyPolicyNamePattern.MatchString(name) {
		return validationf("Value '%s' at 'policyName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w]+", name)
	}
	if name != defaultPolicyName {
		return Errorf(CodeNotFound, "No such policy exists")
	}
	return nil
}

// validateKeyPolicy checks a key policy document as PutKeyPolicy and
// CreateKey do: characters and length (ValidationException), the 32 KB
// quota (LimitExceededException), the grammar
// (MalformedPolicyDocumentException), and, unless bypassed, the lockout
// safety check: the caller must still be allowed kms:PutKeyPolicy.
//
// keyConds are the condition keys of the key (spec, usage, origin, resource
// tags, aliases): the lockout check asks whether the caller could still call
// PutKeyPolicy on this key, without the bypass, so it must see what that
// call's authorization would see.
func (s *Service) validateKeyPolicy(ctx context.Context, p Principal, doc, keyARN, keyAccount string, bypass bool, keyConds map[string][]string) (*policy.Policy, error) {
	if err := checkLength("policy", doc, 1, 131072); err != nil {
		return nil, err
	}
	if !policy.ValidCharacters(doc) {
		return nil, validationf("Value at 'policy' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+")
	}
	if err := policy.CheckSize(doc, policy.MaxKeyPolicySize); err != nil {
		return nil, Errorf(CodeLimitExceeded, "%s", errorMessage(err))
	}
	pol, err := policy.Parse(doc, policy.WithName("key policy"))
	if err != nil {
		return nil, Errorf(CodeMalformedPolicy, "%s", errorMessage(err))
	}
	if pol.ServiceWildcard() {
		return nil, Errorf(CodeMalformedPolicy, "%s", policy.MsgInvalidPrincipals)
	}
	if err := s.checkPrincipalsExist(ctx, pol); err != nil {
		return nil, err
	}
	if bypass {
		return pol, nil
	}
	ids, err := s.identityPolicies(ctx, p)
	if err != nil {
		return nil, Internal(err)
	}
	c := s.requestContext(ctx, p)
	for k, v := range keyConds {
		c[k] = v
	}
	c[policy.KeyBypassLockoutCheck] = []string{"false"}
	req := &policy.Request{Principal: enginePrincipal(p), Action: "kms:PutKeyPolicy", Resource: keyARN, Context: c}
	d := policy.CheckLockout(pol, policy.Input{Request: req, KeyAccountID: keyAccount, IdentityPolicies: ids})
	if !d.Allowed {
		return nil, Errorf(CodeMalformedPolicy, "%s", policy.MsgLockout)
	}
	return pol, nil
}

// errorMessage is the client-safe text of a policy error.
func errorMessage(err error) string {
	var perr *policy.Error
	if errors.As(err, &perr) {
		return perr.Message
	}
	return err.Error()
}

// GetKeyPolicy returns a key's policy.
func (s *Service) GetKeyPolicy(ctx context.Context, in *GetKeyPolicyInput) (*GetKeyPolicyOutput, error) {
	if err := checkPolicyName(in.PolicyName); err != nil {
		return nil, err
	}
	r, err := s.resolveKey(ctx, "keyId", in.KeyId, keyOnly, "GetKeyPolicy")
	if err != nil {
		return nil, err
	}
	doc, err := s.store.GetKeyPolicy(ctx, r.key.ID)
	if errors.Is(err, ErrStoreNotFound) {
		doc = policy.DefaultKeyPolicy(r.key.AccountID)
	} else if err != nil {
		return nil, Internal(err)
	}
	return &GetKeyPolicyOutput{Policy: doc, PolicyName: defaultPolicyName}, nil
}

// PutKeyPolicy replaces a key's policy, in every key state.
func (s *Service) PutKeyPolicy(ctx context.Context, in *PutKeyPolicyInput) (*Empty, error) {
	if err := checkPolicyName(in.PolicyName); err != nil {
		return nil, err
	}
	doc, err := requireString("policy", in.Policy, 1, 131072)
	if err != nil {
		return nil, err
	}
	bypass := isTrue(in.BypassPolicyLockoutSafetyCheck)
	r, err := s.resolveKeyFor(ctx, "keyId", in.KeyId, keyOnly, access{
		action: "PutKeyPolicy",
		conds:  map[string][]string{policy.KeyBypassLockoutCheck: {strconv.FormatBool(bypass)}},
	})
	if err != nil {
		return nil, err
	}
	ka, err := s.keyAuthz(ctx, r.key)
	if err != nil {
		return nil, Internal(err)
	}
	keyConds := map[string][]string{}
	addKeyContext(keyConds, r.key, ka, access{action: "PutKeyPolicy"}, nil)
	if _, err := s.validateKeyPolicy(ctx, r.caller, doc, r.arn, r.key.AccountID, bypass, keyConds); err != nil {
		return nil, err
	}
	if err := s.store.PutKeyPolicy(ctx, r.key.ID, doc, s.now()); err != nil {
		return nil, Internal(err)
	}
	s.authz.invalidateKey(r.key.ID)
	s.log.InfoContext(ctx, "key policy replaced", "key_id", r.key.ID, "bypass_lockout_check", bypass)
	return &Empty{}, nil
}

// ListKeyPolicies lists a key's policy names: always ["default"].
func (s *Service) ListKeyPolicies(ctx context.Context, in *ListKeyPoliciesInput) (*ListKeyPoliciesOutput, error) {
	if _, _, err := pageParams(in.Limit, in.Marker, 1000, 100); err != nil {
		return nil, err
	}
	if _, err := s.resolveKey(ctx, "keyId", in.KeyId, keyOnly, "ListKeyPolicies"); err != nil {
		return nil, err
	}
	return &ListKeyPoliciesOutput{PolicyNames: []string{defaultPolicyName}}, nil
}

// authorizeCreateKey authorizes CreateKey (an IAM-only action, with the
// request's condition keys) and returns the key policy the new key gets:
// the one in the request, validated with the lockout safety check, or the
// default key policy.
func (s *Service) authorizeCreateKey(ctx context.Context, p Principal, in *CreateKeyInput, keyID, spec, usage, origin string, tags []TagRecord) (string, error) {
	bypass := isTrue(in.BypassPolicyLockoutSafetyCheck)
	conds := map[string][]string{policy.KeyBypassLockoutCheck: {strconv.FormatBool(bypass)}}
	setKeyAttributeConds(conds, spec, usage, origin, isTrue(in.MultiRegion))
	for k, v := range requestTagConds(tags) {
		conds[k] = v
	}
	if err := s.authorizeIAM(ctx, p, "CreateKey", conds); err != nil {
		return "", err
	}
	if len(tags) > 0 {
		// "To add tags when creating a KMS key, the caller must have
		// kms:TagResource permission in an IAM policy" (AWS KMS developer
		// guide): otherwise a Deny on tagging, the guard of tag-based
		// access control, is dodged by tagging at creation.
		if err := s.authorizeIdentity(ctx, p, "TagResource", s.keyARN(p.AccountID, keyID), requestTagConds(tags)); err != nil {
			return "", err
		}
	}
	if in.Policy == nil {
		return policy.DefaultKeyPolicy(p.AccountID), nil
	}
	// The new key's own condition keys: its spec, usage, origin, and its
	// tags as resource tags.
	keyConds := map[string][]string{}
	setKeyAttributeConds(keyConds, spec, usage, origin, isTrue(in.MultiRegion))
	for _, t := range tags {
		keyConds[policy.KeyResourceTagPrefix+strings.ToLower(t.Key)] = []string{t.Value}
	}
	if _, err := s.validateKeyPolicy(ctx, p, *in.Policy, s.keyARN(p.AccountID, keyID), p.AccountID, bypass, keyConds); err != nil {
		return "", err
	}
	return *in.Policy, nil
}

// checkPrincipalsExist refuses a key policy that names an account, user or
// role this service does not know, as KMS refuses unknown principals: a
// typo in a principal would otherwise silently allow nobody, or allow a
// principal created later under that name.
func (s *Service) checkPrincipalsExist(ctx context.Context, pol *policy.Policy) error {
	for _, v := range pol.Principals() {
		ok, err := s.principalExists(ctx, v)
		if err != nil {
			return Internal(err)
		}
		if !ok {
			return Errorf(CodeMalformedPolicy, "%s", policy.MsgInvalidPrincipals)
		}
	}
	return nil
}

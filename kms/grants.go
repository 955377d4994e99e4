package kms

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"hsmkms/kms/policy"
)

// maxGrantsPerKey is AWS's quota of grants on one key.
const maxGrantsPerKey = 50000

var (
	grantOperations = []string{"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
		"ReEncryptFrom", "ReEncryptTo", "Sign", "Verify", "GetPublicKey", "CreateGrant", "RetireGrant",
		"DescribeKey", "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "GenerateMac",
		"VerifyMac", "DeriveSharedSecret"}
	principalPattern = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
	grantNamePattern = regexp.MustCompile(`^[a-zA-Z0-9:/_-]+$`)
)

// grantOpsFor lists the grant operations that make sense for a key, as AWS
// refuses the others with ValidationException.
func grantOpsFor(k KeyRecord) []string {
	common := []string{"CreateGrant", "RetireGrant", "DescribeKey"}
	switch {
	case k.KeyUsage == usageEncrypt && k.KeySpec == specSymmetric:
		return append(common, "Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
			"ReEncryptFrom", "ReEncryptTo", "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext")
	case k.KeyUsage == usageEncrypt:
		return append(common, "Decrypt", "Encrypt", "ReEncryptFrom", "ReEncryptTo", "GetPublicKey")
	case k.KeyUsage == "SIGN_VERIFY":
		return append(common, "Sign", "Verify", "GetPublicKey")
	case k.KeyUsage == "GENERATE_VERIFY_MAC":
		return append(common, "GenerateMac", "VerifyMac")
	case k.KeyUsage == "KEY_AGREEMENT":
		return append(common, "DeriveSharedSecret", "GetPublicKey")
	}
	return common
}

// grantToken is what a grant token carries, sealed under an internal key:
// the grant it stands for (key and grant id, checked against the store on
// every use: see grantsFromTokens), and when it was issued. The token
// cannot be forged, and names one grant of one key.
type grantToken struct {
	Grant   GrantRecord `json:"g"`
	Created int64       `json:"t"`
}

const grantTokenPurpose = "grant-token"

func (s *Service) newGrantToken(ctx context.Context, g GrantRecord) (string, error) {
	data, err := json.Marshal(grantToken{Grant: g, Created: s.now().UnixMilli()})
	if err != nil {
		return "", err
	}
	blob, err := s.sealInternal(ctx, grantTokenPurpose, data, nil)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(blob), nil
}

// parseGrantToken opens a grant token; InvalidGrantTokenException if it is
// not one of ours.
func (s *Service) parseGrantToken(ctx context.Context, token string) (grantToken, error) {
	invalid := Errorf(CodeInvalidGrantToken, "The grant token is not valid.")
	blob, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return grantToken{}, invalid
	}
	data, err := s.openInternal(ctx, grantTokenPurpose, blob, nil)
	if err != nil {
		if errors.Is(err, errSealed) {
			return grantToken{}, invalid
		}
		return grantToken{}, Internal(err)
	}
	var t grantToken
	if err := json.Unmarshal(data, &t); err != nil {
		return grantToken{}, invalid
	}
	return t, nil
}

// grantsFromTokens returns the grants a request's grant tokens stand for.
// Invalid tokens fail the request, as in AWS. A token stands for its grant
// only while the grant exists: the store is the one database every kmsd
// shares, so a new grant is visible at once, and a retired or revoked one
// stops working at once.
func (s *Service) grantsFromTokens(ctx context.Context, tokens []string) ([]GrantRecord, error) {
	if err := checkGrantTokens(tokens); err != nil {
		return nil, err
	}
	var out []GrantRecord
	for _, tok := range tokens {
		t, err := s.parseGrantToken(ctx, tok)
		if err != nil {
			return nil, err
		}
		stored, err := s.store.GetGrant(ctx, t.Grant.KeyID, t.Grant.GrantID)
		switch {
		case err == nil:
			out = append(out, stored)
		case errors.Is(err, ErrStoreNotFound):
			// Retired or revoked: the token allows nothing.
		default:
			return nil, Internal(err)
		}
	}
	return out, nil
}

// CreateGrant adds a grant to a key.
func (s *Service) CreateGrant(ctx context.Context, in *CreateGrantInput) (*CreateGrantOutput, error) {
	grantee, err := requireString("granteePrincipal", in.GranteePrincipal, 1, 256)
	if err != nil {
		return nil, err
	}
	if !principalPattern.MatchString(grantee) {
		return nil, validationf("Value '%s' at 'granteePrincipal' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[\\w+=,.@:/-]+$", grantee)
	}
	retiring, _, err := optionalString("retiringPrincipal", in.RetiringPrincipal, 1, 256)
	if err != nil {
		return nil, err
	}
	if retiring != "" && !principalPattern.MatchString(retiring) {
		return nil, validationf("Value '%s' at 'retiringPrincipal' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[\\w+=,.@:/-]+$", retiring)
	}
	name, _, err := optionalString("name", in.Name, 1, 256)
	if err != nil {
		return nil, err
	}
	if name != "" && !grantNamePattern.MatchString(name) {
		return nil, validationf("Value '%s' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$", name)
	}
	if in.Operations == nil {
		return nil, validationf("Value null at 'operations' failed to satisfy constraint: Member must not be null")
	}
	if len(in.Operations) == 0 {
		return nil, validationf("Value '[]' at 'operations' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	for _, op := range in.Operations {
		if !isGrantOperation(op) {
			return nil, validationf("Value '[%s]' at 'operations' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [%s]]",
				truncateForMessage(op), strings.Join(grantOperations, ", "))
		}
	}
	// A set: repeats are dropped, or a grant could carry thousands of one
	// operation, which every later grant check and cache reload would
	// walk through.
	ops := uniqueInOrder(in.Operations)
	var equals, subset map[string]string
	if c := in.Constraints; c != nil {
		if c.EncryptionContextEquals != nil && c.EncryptionContextSubset != nil {
			return nil, Errorf(CodeValidation, "A grant can have either an EncryptionContextEquals or an EncryptionContextSubset constraint, not both.")
		}
		for _, m := range []map[string]string{c.EncryptionContextEquals, c.EncryptionContextSubset} {
			if len(m) > 8 {
				return nil, Errorf(CodeValidation, "A grant constraint can have at most 8 encryption context pairs.")
			}
			for k, v := range m {
				if len(k) > 384 || len(v) > 384 {
					return nil, Errorf(CodeValidation, "Encryption context keys and values in grant constraints can be at most 384 characters.")
				}
			}
		}
		equals, subset = c.EncryptionContextEquals, c.EncryptionContextSubset
	}
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	r, err := s.resolveKeyFor(ctx, "keyId", in.KeyId, keyOnly, access{
		action: "CreateGrant", grantOp: "CreateGrant", grantTokens: in.GrantTokens, crossAccount: true,
		grantAdmits: childGrantWithin(ops, equals, subset),
		conds: map[string][]string{
			policy.KeyGrantOperations:       ops,
			policy.KeyGranteePrincipal:      {grantee},
			policy.KeyRetiringPrincipal:     nonEmpty(retiring),
			policy.KeyGrantConstraintType:   constraintTypes(equals, subset),
			policy.KeyGrantIsForAWSResource: {"false"},
		},
	})
	if err != nil {
		return nil, err
	}
	if err := checkUsable(r); err != nil {
		return nil, err
	}
	if (equals != nil || subset != nil) && r.key.KeySpec != "SYMMETRIC_DEFAULT" {
		// "Encryption context constraints are valid only in a grant for
		// a symmetric encryption KMS key" (AWS KMS developer guide).
		return nil, Errorf(CodeValidation, "Encryption context grant constraints are valid only in grants for symmetric encryption KMS keys; key %s has key spec %s.", r.arn, r.key.KeySpec)
	}
	allowed := grantOpsFor(r.key)
	for _, op := range ops {
		if !slices.Contains(allowed, op) {
			return nil, Errorf(CodeValidation, "Grant operation %s is not valid for key %s with usage %s and spec %s.", op, r.arn, r.key.KeyUsage, r.key.KeySpec)
		}
	}
	// Only after authorization, so that a caller not allowed to grant on
	// the key cannot probe which principals exist.
	for _, p := range append([]string{grantee}, nonEmpty(retiring)...) {
		if err := s.checkGrantPrincipal(ctx, p); err != nil {
			return nil, err
		}
	}
	if isTrue(in.DryRun) {
		return nil, errDryRun()
	}
	g := GrantRecord{
		KeyID: r.key.ID, IssuingAccount: r.key.AccountID, Name: name,
		GranteePrincipal: grantee, RetiringPrincipal: retiring,
		Operations:              slices.Clone(ops),
		EncryptionContextEquals: equals, EncryptionContextSubset: subset,
		CreatedAt: s.now().UTC().Truncate(time.Millisecond),
	}
	// A name makes the call idempotent: the same name and parameters give
	// the same grant (and a new token), as in AWS.
	if name != "" {
		existing, err := s.store.ListGrants(ctx, r.key.ID, "", 0)
		if err != nil {
			return nil, Internal(err)
		}
		for _, e := range existing {
			if sameGrant(e, g) {
				tok, err := s.newGrantToken(ctx, e)
				if err != nil {
					return nil, Internal(err)
				}
				return &CreateGrantOutput{GrantToken: tok, GrantId: e.GrantID}, nil
			}
		}
	}
	id := make([]byte, 32)
	if _, err := rand.Read(id); err != nil {
		return nil, Internal(err)
	}
	g.GrantID = hex.EncodeToString(id)
	if err := s.store.CreateGrant(ctx, g, maxGrantsPerKey); err != nil {
		if errors.Is(err, ErrStoreExhausted) {
			return nil, Errorf(CodeLimitExceeded, "The request was rejected because the key %s already has %d grants.", r.arn, maxGrantsPerKey)
		}
		return nil, Internal(err)
	}
	s.authz.invalidateKey(r.key.ID)
	tok, err := s.newGrantToken(ctx, g)
	if err != nil {
		return nil, Internal(err)
	}
	s.log.InfoContext(ctx, "grant created", "key_id", r.key.ID, "grant_id", g.GrantID, "grantee", grantee, "operations", g.Operations)
	return &CreateGrantOutput{GrantToken: tok, GrantId: g.GrantID}, nil
}

func sameGrant(a, b GrantRecord) bool {
	return a.Name == b.Name && a.GranteePrincipal == b.GranteePrincipal && a.RetiringPrincipal == b.RetiringPrincipal &&
		slices.Equal(sortedCopy(a.Operations), sortedCopy(b.Operations)) &&
		sameConstraint(a.EncryptionContextEquals, b.EncryptionContextEquals) &&
		sameConstraint(a.EncryptionContextSubset, b.EncryptionContextSubset)
}

// sameConstraint is maps.Equal that tells no constraint (nil) from an
// empty one: a named retry must not turn into a grant with other limits.
func sameConstraint(a, b map[string]string) bool {
	return (a == nil) == (b == nil) && maps.Equal(a, b)
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func nonEmpty(v string) []string {
	if v == "" {
		return nil
	}
	return []string{v}
}

func constraintTypes(equals, subset map[string]string) []string {
	switch {
	case equals != nil:
		return []string{"EncryptionContextEquals"}
	case subset != nil:
		return []string{"EncryptionContextSubset"}
	}
	return nil
}

func isGrantOperation(op string) bool { return slices.Contains(grantOperations, op) }

// grantEntry renders a grant for ListGrants.
func (s *Service) grantEntry(g GrantRecord) GrantListEntry {
	e := GrantListEntry{
		KeyId: s.keyARN(g.IssuingAccount, g.KeyID), GrantId: g.GrantID, Name: g.Name,
		CreationDate: NewTimestamp(g.CreatedAt), GranteePrincipal: g.GranteePrincipal,
		RetiringPrincipal: g.RetiringPrincipal, IssuingAccount: "arn:aws:iam::" + g.IssuingAccount + ":root",
		Operations: g.Operations,
	}
	if g.EncryptionContextEquals != nil || g.EncryptionContextSubset != nil {
		e.Constraints = &GrantConstraints{EncryptionContextEquals: g.EncryptionContextEquals, EncryptionContextSubset: g.EncryptionContextSubset}
	}
	return e
}

// ListGrants lists the grants of a key.
func (s *Service) ListGrants(ctx context.Context, in *ListGrantsInput) (*ListGrantsOutput, error) {
	limit, after, err := pageParams(in.Limit, in.Marker, 100, 50)
	if err != nil {
		return nil, err
	}
	grantID, _, err := optionalString("grantId", in.GrantId, 1, 128)
	if err != nil {
		return nil, err
	}
	grantee, _, err := optionalString("granteePrincipal", in.GranteePrincipal, 1, 256)
	if err != nil {
		return nil, err
	}
	r, err := s.resolveKey(ctx, "keyId", in.KeyId, keyOnly, "ListGrants")
	if err != nil {
		return nil, err
	}
	all, err := s.store.ListGrants(ctx, r.key.ID, after, 0)
	if err != nil {
		return nil, Internal(err)
	}
	out := &ListGrantsOutput{Grants: []GrantListEntry{}}
	for _, g := range all {
		if (grantID != "" && g.GrantID != grantID) || (grantee != "" && g.GranteePrincipal != grantee) {
			continue
		}
		if len(out.Grants) == limit {
			out.Truncated = true
			out.NextMarker = encodeMarker(out.Grants[limit-1].GrantId)
			break
		}
		out.Grants = append(out.Grants, s.grantEntry(g))
	}
	if grantID != "" && len(out.Grants) == 0 && after == "" {
		return nil, Errorf(CodeInvalidGrantId, "Grant ID %s is not valid for key %s.", grantID, r.arn)
	}
	return out, nil
}

// ListRetirableGrants lists grants, of the caller's account's keys and
// others, that the given principal may retire.
func (s *Service) ListRetirableGrants(ctx context.Context, in *ListRetirableGrantsInput) (*ListGrantsOutput, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	retiring, err := requireString("retiringPrincipal", in.RetiringPrincipal, 1, 256)
	if err != nil {
		return nil, err
	}
	limit, after, err := pageParams(in.Limit, in.Marker, 100, 50)
	if err != nil {
		return nil, err
	}
	if err := s.authorizeListRetirable(ctx, p, retiring); err != nil {
		return nil, err
	}
	names := []string{retiring}
	if account := namedAccount(retiring); account != "" {
		// The account's root ARN and its bare id are one principal; a
		// grant may spell it either way (as RetireGrant reads both).
		names = []string{"arn:aws:iam::" + account + ":root", account}
	}
	gs, err := s.store.ListRetirableGrants(ctx, names, after, limit+1)
	if err != nil {
		return nil, Internal(err)
	}
	out := &ListGrantsOutput{Grants: []GrantListEntry{}}
	for i, g := range gs {
		if i == limit {
			out.Truncated = true
			out.NextMarker = encodeMarker(gs[i-1].GrantID)
			break
		}
		out.Grants = append(out.Grants, s.grantEntry(g))
	}
	return out, nil
}

// RetireGrant deletes a grant, by token or by key ARN and grant id; who may
// is decided by authorizeRetire (grantretire.go).
func (s *Service) RetireGrant(ctx context.Context, in *RetireGrantInput) (*Empty, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	var g GrantRecord
	switch {
	case in.GrantToken != nil:
		if err := checkLength("grantToken", *in.GrantToken, 1, 8192); err != nil {
			return nil, err
		}
		t, err := s.parseGrantToken(ctx, *in.GrantToken)
		if err != nil {
			return nil, err
		}
		g = t.Grant
	case in.KeyId != nil && in.GrantId != nil:
		r, err := s.resolveKeyFor(ctx, "keyId", in.KeyId, keyOnly, access{skipAuthorization: true})
		if err != nil {
			return nil, err
		}
		grantID, err := requireString("grantId", in.GrantId, 1, 128)
		if err != nil {
			return nil, err
		}
		g, err = s.store.GetGrant(ctx, r.key.ID, grantID)
		if errors.Is(err, ErrStoreNotFound) {
			return nil, Errorf(CodeNotFound, "Grant ID %s not found for key %s.", grantID, r.arn)
		}
		if err != nil {
			return nil, Internal(err)
		}
	default:
		return nil, Errorf(CodeValidation, "Either GrantToken or both KeyId and GrantId must be specified.")
	}
	if err := s.authorizeRetire(ctx, p, g); err != nil {
		return nil, err
	}
	if isTrue(in.DryRun) {
		return nil, errDryRun()
	}
	if err := s.store.DeleteGrant(ctx, g.KeyID, g.GrantID); err != nil {
		if errors.Is(err, ErrStoreNotFound) {
			return nil, Errorf(CodeNotFound, "Grant ID %s not found.", g.GrantID)
		}
		return nil, Internal(err)
	}
	s.authz.invalidateKey(g.KeyID)
	s.log.InfoContext(ctx, "grant retired", "key_id", g.KeyID, "grant_id", g.GrantID)
	return &Empty{}, nil
}

// RevokeGrant deletes a grant of a key.
func (s *Service) RevokeGrant(ctx context.Context, in *RevokeGrantInput) (*Empty, error) {
	grantID, err := requireString("grantId", in.GrantId, 1, 128)
	if err != nil {
		return nil, err
	}
	r, err := s.resolveKey(ctx, "keyId", in.KeyId, keyOnly, "RevokeGrant")
	if err != nil {
		return nil, err
	}
	if isTrue(in.DryRun) {
		if _, err := s.store.GetGrant(ctx, r.key.ID, grantID); err != nil {
			return nil, Errorf(CodeNotFound, "Grant ID %s not found for key %s.", grantID, r.arn)
		}
		return nil, errDryRun()
	}
	if err := s.store.DeleteGrant(ctx, r.key.ID, grantID); err != nil {
		if errors.Is(err, ErrStoreNotFound) {
			return nil, Errorf(CodeNotFound, "Grant ID %s not found for key %s.", grantID, r.arn)
		}
		return nil, Internal(err)
	}
	s.authz.invalidateKey(r.key.ID)
	s.log.InfoContext(ctx, "grant revoked", "key_id", r.key.ID, "grant_id", grantID)
	return &Empty{}, nil
}

// grantAllows returns a grant that allows the operation for the principal
// with the request's encryption context. One that names the principal
// itself (or the role behind its session) is preferred; one that names
// only the principal's account comes back with delegated set: the account's
// root may use it, its users and roles only as their identity policies
// allow (policy.Input.GrantDelegated).
//
// Encryption-context constraints apply to every operation but DescribeKey
// and RetireGrant, which AWS documents as ignoring them, and CreateGrant,
// whose child grants they limit instead, through admits
// (childGrantWithin): grantOpTakesContext.
func grantAllows(grants []GrantRecord, keyID string, p Principal, op string, ec map[string]string, admits func(GrantRecord) bool) (g GrantRecord, delegated, ok bool) {
	checkContext := grantOpTakesContext(op)
	for _, c := range grants {
		if c.KeyID != keyID || !slices.Contains(c.Operations, op) {
			continue
		}
		exact := namesExactly(c.GranteePrincipal, p)
		if !exact && !namesAccountOf(c.GranteePrincipal, p) {
			continue
		}
		if checkContext && !contextSatisfies(c, ec) {
			continue
		}
		if admits != nil && !admits(c) {
			continue
		}
		if exact {
			return c, false, true
		}
		if !ok {
			g, delegated, ok = c, true, true
		}
	}
	return g, delegated, ok
}

// grantOpTakesContext reports whether a grant's encryption-context
// constraint applies to an operation: to all but the ones AWS names as
// ignoring it (DescribeKey, RetireGrant) and CreateGrant, which it limits
// differently (childGrantWithin). A constraint on a grant for a key that
// takes no encryption context (refused by CreateGrant, but possibly stored
// before that) therefore still allows nothing, and an operation added to
// grants later is constrained unless listed here.
func grantOpTakesContext(op string) bool {
	switch op {
	case "DescribeKey", "RetireGrant", "CreateGrant":
		return false
	}
	return true
}

// contextSatisfies reports whether ec meets g's encryption-context
// constraint (none, Equals or Subset).
func contextSatisfies(g GrantRecord, ec map[string]string) bool {
	switch {
	case g.EncryptionContextEquals != nil:
		return isSubset(g.EncryptionContextEquals, ec) && isSubset(ec, g.EncryptionContextEquals)
	case g.EncryptionContextSubset != nil:
		return isSubset(g.EncryptionContextSubset, ec)
	}
	return true
}

// childGrantWithin returns whether a grant with these operations and
// constraints may be created by a grantee holding CreateGrant through
// parent, as AWS documents ("Granting CreateGrant permission"): "The
// grantee principal can only create grants that allow some or all of the
// operations in the parent grant", and "The grant constraints in the
// grants they create must be at least as strict as those in the parent
// grant": a Subset constraint may gain pairs and may become an Equals one
// that contains its pairs, never the reverse, and an Equals constraint
// stays the same.
func childGrantWithin(ops []string, equals, subset map[string]string) func(parent GrantRecord) bool {
	return func(parent GrantRecord) bool {
		for _, op := range ops {
			if !slices.Contains(parent.Operations, op) {
				return false
			}
		}
		switch {
		case parent.EncryptionContextEquals != nil:
			return equals != nil && isSubset(equals, parent.EncryptionContextEquals) && isSubset(parent.EncryptionContextEquals, equals)
		case len(parent.EncryptionContextSubset) > 0: // an empty Subset limits nothing
			switch {
			case equals != nil:
				return isSubset(parent.EncryptionContextSubset, equals)
			case subset != nil:
				return isSubset(parent.EncryptionContextSubset, subset)
			}
			return false
		}
		return true
	}
}

// isSubset reports whether every pair of sub is in of, comparing keys
// without regard to case and values exactly, as AWS compares a grant
// constraint with a request's encryption context ("in a grant constraint,
// the key in each key-value pair is not case sensitive, but the value is
// case sensitive", GrantConstraints in the AWS KMS API reference). The
// encryption context bound to a ciphertext stays exact.
func isSubset(sub, of map[string]string) bool {
	for k, v := range sub {
		if w, ok := of[k]; ok && w == v {
			continue
		}
		found := false
		for ok, ov := range of {
			if ov == v && strings.EqualFold(ok, k) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// namesAccountOf reports whether a grant's principal names the caller's
// account (its root ARN or the bare account id).
func namesAccountOf(name string, p Principal) bool {
	return p.AccountID != "" && (name == "arn:aws:iam::"+p.AccountID+":root" || name == p.AccountID)
}

// uniqueInOrder returns vs without repeats, in first-seen order.
func uniqueInOrder(vs []string) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

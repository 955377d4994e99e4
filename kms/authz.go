package kms

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"hsmkms/kms/policy"
)

// Authorization follows AWS KMS (kms/policy.Decide holds the combining
// rule): an explicit Deny in the key policy or an identity policy wins; in
// the key's account an Allow naming the caller in the key policy allows, an
// Allow naming the account delegates to the caller's identity policies;
// from another account both the key policy and the caller's identity
// policies must allow; a grant for the caller allows the operations it
// lists. Everything else is AccessDeniedException with AWS's message.
//
// Parsed key policies and the grants, tags and aliases of a key are cached
// for policyCacheTTL, and so are a principal's identity policies; changes
// made through this process drop the entries at once, and a change made by
// another kmsd on the same database is seen within the TTL (AWS KMS, too,
// is eventually consistent for policy changes). The TTL is long enough
// that a service with 10,000 keys, each used a few times a minute, does
// not reload every key's facts on nearly every request.

const policyCacheTTL = 30 * time.Second

// denyAllKeyPolicy stands in for a stored key policy that no longer parses.
var denyAllKeyPolicy = mustParse(`{"Version":"2012-10-17","Statement":[]}`)

func mustParse(doc string) *policy.Policy {
	p, err := policy.Parse(doc, policy.WithName("deny-all"))
	if err != nil {
		panic(err)
	}
	return p
}

// access describes what a request asks of a key, for authorization.
type access struct {
	// action is the KMS action without its prefix ("Encrypt").
	action string
	// grantOp is the grant operation that can allow it ("" if none can).
	grantOp string
	// encryptionContext is the request's context (grant constraints and
	// kms:EncryptionContext* keys); hasContext says the operation takes one.
	encryptionContext map[string]string
	hasContext        bool
	// conds are further condition keys of the operation (lower-case names).
	conds       map[string][]string
	grantTokens []string
	// skipAuthorization: the operation authorizes by itself (RetireGrant).
	skipAuthorization bool
	// reEncryptPeer is, for ReEncryptFrom/ReEncryptTo, the id of the other
	// key of the ReEncrypt (kms:ReEncryptOnSameKey).
	reEncryptPeer string
	// grantAdmits, for CreateGrant, limits which grants can allow it: a
	// grantee that holds CreateGrant through a grant may only create grants
	// within that grant (childGrantWithin). Policies are not limited.
	grantAdmits func(GrantRecord) bool
	// crossAccount: principals of other accounts may perform the action
	// when the key policy lets them. AWS allows it only for the
	// cryptographic operations and a few others; management operations
	// (policies, state, deletion, tags, rotation settings, import) stay
	// with the key's own account whatever its policy says.
	crossAccount bool
}

// crossAccountActions are the actions AWS KMS allows from another account.
var crossAccountActions = map[string]bool{
	"Encrypt": true, "Decrypt": true, "ReEncryptFrom": true, "ReEncryptTo": true,
	"GenerateDataKey": true, "GenerateDataKeyWithoutPlaintext": true,
	"GenerateDataKeyPair": true, "GenerateDataKeyPairWithoutPlaintext": true,
	"Sign": true, "Verify": true, "GenerateMac": true, "VerifyMac": true,
	"GetPublicKey": true, "DescribeKey": true, "DeriveSharedSecret": true,
	"CreateGrant": true, "ListGrants": true, "RevokeGrant": true, "RetireGrant": true,
	"GetKeyRotationStatus": true,
}

// forAction is the access of an operation with no condition keys of its
// own: grants can allow it when AWS lists it as a grant operation.
func forAction(action string) access {
	a := access{action: action, crossAccount: crossAccountActions[action]}
	if isGrantOperation(action) {
		a.grantOp = action
	}
	return a
}

// authzCache holds what authorization reads per key and per principal.
type authzCache struct {
	mu         sync.Mutex
	keys       map[string]*keyAuthz
	identities map[string]*identityAuthz
	// gen counts invalidations. A load that started before one may have
	// read what the invalidation replaced, so it is not cached (it still
	// answers its own request, which raced the change anyway); otherwise a
	// detached policy or revoked grant could stay in force for a cache
	// lifetime after the change.
	gen uint64
	// parsed maps key policy documents to their parsed form.
	parsed      sync.Map
	parsedCount atomic.Int64
}

type keyAuthz struct {
	loaded  time.Time
	policy  *policy.Policy
	grants  []GrantRecord
	tags    map[string]string
	tagKeys []string // tags' keys in order, for aws:ResourceTag
	aliases []string
}

type identityAuthz struct {
	loaded   time.Time
	policies []*policy.Policy
}

// parseKeyPolicy parses a key policy document once: parsed policies are
// immutable and shared by every key with the same text (every key of an
// account with the default policy shares one). Parsing costs about a
// hundred evaluations, so with many keys this is what keeps a key's cache
// refresh cheap.
func (c *authzCache) parseKeyPolicy(doc string) (*policy.Policy, error) {
	if p, ok := c.parsed.Load(doc); ok {
		return p.(*policy.Policy), nil
	}
	p, err := policy.Parse(doc, policy.WithName("key policy"))
	if err != nil {
		return nil, err
	}
	// Bounded: every PutKeyPolicy can bring a new document, so start over
	// rather than grow without limit.
	if c.parsedCount.Add(1) > maxParsedPolicies {
		c.parsed.Clear()
		c.parsedCount.Store(1)
	}
	c.parsed.Store(doc, p)
	return p, nil
}

// maxParsedPolicies bounds the parsed key-policy cache.
const maxParsedPolicies = 4096

func (c *authzCache) invalidateKey(keyID string) {
	c.mu.Lock()
	delete(c.keys, keyID)
	c.gen++
	c.mu.Unlock()
}

// invalidateAllKeys drops every key's cached policy and grants: deleting a
// principal rewrites the key policies and grants that name it
// (forgetDeletedPrincipal in the store), which may be any key's.
func (c *authzCache) invalidateAllKeys() {
	c.mu.Lock()
	clear(c.keys)
	c.gen++
	c.mu.Unlock()
}

// InvalidateIdentity drops the cached identity policies of a principal (a
// user or role ARN); the admin operations call it when they change them.
func (s *Service) InvalidateIdentity(principalARN string) {
	s.authz.mu.Lock()
	delete(s.authz.identities, principalARN)
	s.authz.gen++
	s.authz.mu.Unlock()
}

// keyAuthz returns the authorization facts of a key.
func (s *Service) keyAuthz(ctx context.Context, k KeyRecord) (*keyAuthz, error) {
	now := time.Now()
	s.authz.mu.Lock()
	if e, ok := s.authz.keys[k.ID]; ok && now.Sub(e.loaded) < policyCacheTTL {
		s.authz.mu.Unlock()
		return e, nil
	}
	gen := s.authz.gen
	s.authz.mu.Unlock()

	doc, err := s.store.GetKeyPolicy(ctx, k.ID)
	if errors.Is(err, ErrStoreNotFound) {
		doc = policy.DefaultKeyPolicy(k.AccountID)
	} else if err != nil {
		return nil, err
	}
	pol, err := s.authz.parseKeyPolicy(doc)
	if err != nil {
		// Stored policies were validated when they were put; one that no
		// longer parses allows nothing rather than failing open (a nil key
		// policy would mean "no key": identity policies alone).
		s.log.ErrorContext(ctx, "stored key policy does not parse; it allows nothing", "key_id", k.ID, "err", err)
		pol = denyAllKeyPolicy
	}
	grants, err := s.store.ListGrants(ctx, k.ID, "", 0)
	if err != nil {
		return nil, err
	}
	tagList, err := s.store.ListTags(ctx, k.ID, "", 0)
	if err != nil {
		return nil, err
	}
	tags := make(map[string]string, len(tagList))
	for _, t := range tagList {
		tags[t.Key] = t.Value
	}
	aliasList, err := s.store.ListAliases(ctx, k.AccountID, k.ID, "", 0)
	if err != nil {
		return nil, err
	}
	aliases := make([]string, 0, len(aliasList))
	for _, a := range aliasList {
		aliases = append(aliases, a.Name)
	}
	e := &keyAuthz{loaded: now, policy: pol, grants: grants, tags: tags, tagKeys: slices.Sorted(maps.Keys(tags)), aliases: aliases}
	s.authz.mu.Lock()
	if s.authz.keys == nil {
		s.authz.keys = map[string]*keyAuthz{}
	}
	if s.authz.gen == gen {
		s.authz.keys[k.ID] = e
	}
	s.authz.mu.Unlock()
	return e, nil
}

// identityPolicies returns the parsed identity policies of a principal.
func (s *Service) identityPolicies(ctx context.Context, p Principal) ([]*policy.Policy, error) {
	arn := p.PolicyARN()
	now := time.Now()
	s.authz.mu.Lock()
	if e, ok := s.authz.identities[arn]; ok && now.Sub(e.loaded) < policyCacheTTL {
		s.authz.mu.Unlock()
		return e.policies, nil
	}
	gen := s.authz.gen
	s.authz.mu.Unlock()
	named, err := s.store.IdentityPolicies(ctx, arn)
	if err != nil {
		return nil, err
	}
	pols := make([]*policy.Policy, 0, len(named))
	for _, n := range named {
		pol, err := policy.Parse(n.Document, policy.AsIdentityPolicy(), policy.WithName(n.Name))
		if err != nil {
			s.log.ErrorContext(ctx, "stored identity policy does not parse; it allows nothing", "principal", arn, "policy", n.Name, "err", err)
			continue
		}
		pols = append(pols, pol)
	}
	s.authz.mu.Lock()
	if s.authz.identities == nil {
		s.authz.identities = map[string]*identityAuthz{}
	}
	if s.authz.gen == gen {
		s.authz.identities[arn] = &identityAuthz{loaded: now, policies: pols}
	}
	s.authz.mu.Unlock()
	return pols, nil
}

func enginePrincipal(p Principal) policy.Principal {
	t := policy.TypeUser
	switch p.Type {
	case PrincipalAccount:
		t = policy.TypeRoot
	case PrincipalAssumedRole:
		t = policy.TypeAssumedRole
	}
	return policy.Principal{ARN: p.ARN, AccountID: p.AccountID, Type: t, RoleARN: p.RoleARN}
}

// requestContext builds the condition keys every request has.
func (s *Service) requestContext(ctx context.Context, p Principal) map[string][]string {
	now := s.now().UTC()
	c := map[string][]string{
		policy.KeyCurrentTime:     {now.Format(time.RFC3339)},
		policy.KeyEpochTime:       {strconv.FormatInt(now.Unix(), 10)},
		policy.KeyRequestedRegion: {s.cfg.Region},
	}
	policy.SetPrincipalKeys(c, enginePrincipal(p))
	if p.UserID != "" {
		c[policy.KeyUserID] = []string{p.UserID}
	}
	if p.Username != "" {
		c[policy.KeyUsername] = []string{p.Username}
	}
	// In key order, so that tags stored before keys differing only in case
	// were refused (validatePrincipalTags) decide the same way every time.
	for _, k := range slices.Sorted(maps.Keys(p.Tags)) {
		c[policy.KeyPrincipalTagPref+strings.ToLower(k)] = []string{p.Tags[k]}
	}
	if !p.TokenIssueTime.IsZero() {
		c[policy.KeyTokenIssueTime] = []string{p.TokenIssueTime.UTC().Format(time.RFC3339)}
	}
	if ri, ok := RequestInfoFrom(ctx); ok {
		if ri.SourceIP != "" {
			c[policy.KeySourceIP] = []string{ri.SourceIP}
		}
		c[policy.KeySecureTransport] = []string{strconv.FormatBool(ri.SecureTransport)}
		if ri.Region != "" {
			c[policy.KeyRequestedRegion] = []string{ri.Region}
		}
	}
	return c
}

// setKeyAttributeConds sets the condition keys of a key's attributes,
// with the deprecated CustomerMasterKey* names policies still use.
func setKeyAttributeConds(c map[string][]string, spec, usage, origin string, multiRegion bool) {
	c[policy.KeyKeySpec] = []string{spec}
	c["kms:customermasterkeyspec"] = []string{spec}
	c[policy.KeyKeyUsage] = []string{usage}
	c["kms:customermasterkeyusage"] = []string{usage}
	c[policy.KeyKeyOrigin] = []string{origin}
	c[policy.KeyMultiRegion] = []string{strconv.FormatBool(multiRegion)}
}

// addKeyContext adds the condition keys of a key and of the access to c;
// contextValues are the kms:EncryptionContext:KEY values, one choice of
// contextValueChoices.
func addKeyContext(c map[string][]string, k KeyRecord, ka *keyAuthz, a access, contextValues map[string]string) {
	setKeyAttributeConds(c, k.KeySpec, k.KeyUsage, k.Origin, false)
	// In key order: tags stored before keys differing only in case were
	// refused decide the same way every time.
	for _, tk := range ka.tagKeys {
		c[policy.KeyResourceTagPrefix+strings.ToLower(tk)] = []string{ka.tags[tk]}
	}
	if len(ka.aliases) > 0 {
		c[policy.KeyResourceAliases] = ka.aliases
	}
	if a.hasContext {
		for ck, v := range contextValues {
			c[ck] = []string{v}
		}
		keys := make([]string, 0, len(a.encryptionContext))
		for ek := range a.encryptionContext {
			keys = append(keys, ek)
		}
		if len(keys) > 0 {
			c[policy.KeyEncryptionContextKeys] = keys
		}
	}
	for ck, cv := range a.conds {
		if len(cv) > 0 {
			c[ck] = cv
		}
	}
}

// authorizeKey decides whether the caller may perform a.action on key r.
func (s *Service) authorizeKey(ctx context.Context, r resolved, a access) error {
	ka, err := s.keyAuthz(ctx, r.key)
	if err != nil {
		return Internal(err)
	}
	ids, err := s.identityPolicies(ctx, r.caller)
	if err != nil {
		return Internal(err)
	}
	choices, err := contextValueChoices(a.encryptionContext)
	if err != nil {
		return err
	}
	grant, delegated, err := s.grantFor(ctx, r, ka, a)
	if err != nil {
		return err
	}
	// Every choice must be allowed (almost always there is one).
	for _, values := range choices {
		c := s.requestContext(ctx, r.caller)
		addKeyContext(c, r.key, ka, a, values)
		if a.reEncryptPeer != "" {
			c[policy.KeyReEncryptOnSameKey] = []string{strconv.FormatBool(r.key.ID == a.reEncryptPeer)}
		}
		req := &policy.Request{Principal: enginePrincipal(r.caller), Action: "kms:" + a.action, Resource: r.arn, Context: c}
		d := policy.Decide(policy.Input{
			Request: req, KeyAccountID: r.key.AccountID, KeyPolicy: ka.policy,
			IdentityPolicies: ids, GrantAllows: grant != nil, GrantDelegated: delegated,
		})
		if !d.Allowed {
			return s.denied(ctx, req, d)
		}
		if d.Reason == policy.AllowedByGrant {
			s.log.DebugContext(ctx, "allowed by grant", "key_id", r.key.ID, "grant_id", grant.GrantID, "action", a.action)
		}
	}
	return s.noteKey(ctx, r.key, r.arn, true) // quotas of another account's key (audit_support.go)
}

// maxContextChoices bounds contextValueChoices: pairs whose keys differ only
// in case multiply the policy evaluations of a request.
const maxContextChoices = 64

// contextValueChoices returns the kms:EncryptionContext:KEY condition
// values of ec (condition key -> value). The key part of those condition
// keys is not case sensitive (as in AWS), so pairs whose keys differ only in
// case, which AWS advises against, meet in one single-valued condition key.
// Rather than let one of them stand for all (which one came last in map
// iteration decided, so the same request was allowed or denied at random),
// there is one set of values per way of picking one pair of each such
// group, and authorizeKey allows the request only if every set is allowed:
// an Allow must hold for each pair's value and a Deny on any of them
// applies, whatever the operator. Without such pairs there is one set. A
// nil or empty ec gives one nil set.
func contextValueChoices(ec map[string]string) ([]map[string]string, error) {
	if len(ec) == 0 {
		return noContextValues, nil
	}
	// The request path: one set, unless two keys collide.
	values := make(map[string]string, len(ec))
	for k, v := range ec {
		ck := policy.KeyEncryptionContextPrefix + strings.ToLower(k)
		if _, dup := values[ck]; dup {
			return contextValueCombinations(ec)
		}
		values[ck] = v
	}
	return []map[string]string{values}, nil
}

// noContextValues is contextValueChoices' answer for no context (never
// modified).
var noContextValues = []map[string]string{nil}

// contextValueCombinations is contextValueChoices for a context with keys
// that differ only in case.
func contextValueCombinations(ec map[string]string) ([]map[string]string, error) {
	groups := make(map[string][]string, len(ec))
	for k, v := range ec {
		ck := policy.KeyEncryptionContextPrefix + strings.ToLower(k)
		groups[ck] = append(groups[ck], v)
	}
	choices := []map[string]string{make(map[string]string, len(groups))}
	for _, ck := range slices.Sorted(maps.Keys(groups)) {
		vals := slices.Compact(slices.Sorted(slices.Values(groups[ck])))
		if len(choices)*len(vals) > maxContextChoices {
			return nil, Errorf(CodeValidation, "The encryption context has too many pairs whose keys differ only in case.")
		}
		next := make([]map[string]string, 0, len(choices)*len(vals))
		for _, base := range choices {
			for _, v := range vals {
				m := maps.Clone(base)
				m[ck] = v
				next = append(next, m)
			}
		}
		choices = next
	}
	return choices, nil
}

// grantFor returns a grant that allows the access, from the key's grants
// or the request's grant tokens, or nil; delegated as grantAllows says,
// false if any grant names the caller itself. Invalid grant tokens fail
// the request, as in AWS.
func (s *Service) grantFor(ctx context.Context, r resolved, ka *keyAuthz, a access) (grant *GrantRecord, delegated bool, err error) {
	var fromTokens []GrantRecord
	if len(a.grantTokens) > 0 {
		if fromTokens, err = s.grantsFromTokens(ctx, a.grantTokens); err != nil {
			return nil, false, err
		}
	}
	if a.grantOp == "" {
		return nil, false, nil
	}
	for _, grants := range [][]GrantRecord{ka.grants, fromTokens} {
		g, viaAccount, ok := grantAllows(grants, r.key.ID, r.caller, a.grantOp, a.encryptionContext, a.grantAdmits)
		if ok && !viaAccount {
			return &g, false, nil
		}
		if ok && grant == nil {
			grant, delegated = &g, true
		}
	}
	return grant, delegated, nil
}

// authorizeIAM decides an action that has no key (CreateKey, ListKeys,
// GenerateRandom, ...): identity policies alone; the account root may.
func (s *Service) authorizeIAM(ctx context.Context, p Principal, action string, conds map[string][]string) error {
	return s.authorizeIdentity(ctx, p, action, "*", conds)
}

// authorizeIdentity decides an action on a resource that has no policy of
// its own, such as an alias: identity policies alone.
func (s *Service) authorizeIdentity(ctx context.Context, p Principal, action, resource string, conds map[string][]string) error {
	ids, err := s.identityPolicies(ctx, p)
	if err != nil {
		return Internal(err)
	}
	c := s.requestContext(ctx, p)
	for k, v := range conds {
		if len(v) > 0 {
			c[k] = v
		}
	}
	req := &policy.Request{Principal: enginePrincipal(p), Action: "kms:" + action, Resource: resource, Context: c}
	d := policy.Decide(policy.Input{Request: req, IdentityPolicies: ids})
	if d.Allowed {
		return nil
	}
	return s.denied(ctx, req, d)
}

// denied logs a refusal with the statements that decided it and returns
// AWS's AccessDeniedException.
func (s *Service) denied(ctx context.Context, req *policy.Request, d policy.Decision) error {
	attrs := []any{"principal", req.Principal.ARN, "action", req.Action, "resource", req.Resource, "reason", d.Reason.String()}
	for i, st := range d.Statements {
		attrs = append(attrs, "statement_"+strconv.Itoa(i), st.Policy+"#"+strconv.Itoa(st.Index)+" sid="+st.Sid+" "+st.Effect.String())
	}
	s.log.InfoContext(ctx, "access denied", attrs...)
	return Errorf(CodeAccessDenied, "%s", d.Message(req))
}

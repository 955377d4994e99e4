package policy

import "strings"

// Input is everything the KMS authorization decision looks at.
type Input struct {
	Request *Request
	// KeyAccountID is the account that owns the key.
	KeyAccountID string
	// KeyPolicy is the key's policy; nil for actions that have no key
	// (kms:CreateKey, kms:ListKeys, kms:ListAliases, kms:GenerateRandom,
	// ...), which identity policies alone decide.
	KeyPolicy *Policy
	// IdentityPolicies are the policies attached to the caller (its user,
	// or the role behind its session).
	IdentityPolicies []*Policy
	// GrantAllows: the caller checked the key's grants (grantee, operation,
	// constraints, grant tokens) and one allows this request.
	GrantAllows bool
	// GrantDelegated: that grant names the caller's account, not the
	// caller. Like an account named in a key policy, it is the account's
	// root, and its users and roles only as far as their identity policies
	// allow the action.
	GrantDelegated bool
}

// Reason says why a decision came out as it did; for denials it picks the
// AccessDeniedException message.
type Reason uint8

const (
	_ Reason = iota
	AllowedByKeyPolicy
	AllowedByIdentityPolicy // the key policy delegates to the account and an identity policy allows
	AllowedByGrant
	DeniedNoResourcePolicy // no resource-based policy allows
	DeniedNoIdentityPolicy // no identity-based policy allows
	DeniedByResourcePolicy // explicit deny in a resource-based policy
	DeniedByIdentityPolicy // explicit deny in an identity-based policy
)

var reasonNames = [...]string{
	"", "AllowedByKeyPolicy", "AllowedByIdentityPolicy", "AllowedByGrant",
	"DeniedNoResourcePolicy", "DeniedNoIdentityPolicy",
	"DeniedByResourcePolicy", "DeniedByIdentityPolicy",
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) && r != 0 {
		return reasonNames[r]
	}
	return "Unknown"
}

// StatementRef names a statement that took part in a decision, for logs.
type StatementRef struct {
	Policy string // the policy's name (WithName)
	Kind   PolicyKind
	Index  int // 0-based position in the policy's Statement list
	Sid    string
	Effect Effect // Allow or ExplicitDeny
}

// Decision is the combined KMS authorization outcome.
type Decision struct {
	Allowed bool
	Reason  Reason
	// Statements that decided: the explicit Deny; or the Allow(s) — for a
	// delegated or cross-account allow both the key policy statement and
	// the identity policy statement. A denial for lack of an identity
	// policy lists the key policy statement that delegated.
	Statements []StatementRef
}

// Decide combines key policy, identity policies and grants as AWS KMS does:
//
//   - an explicit Deny in the key policy or any identity policy wins;
//   - same account: the key policy allows the caller directly (its ARN, its
//     role, or "*"), or it allows the caller's account (delegation to IAM)
//     and an identity policy allows; the account root needs no identity
//     policy;
//   - another account: the key policy must allow the caller or the caller's
//     account, and the caller's identity policies must allow too (the root
//     of that account needs none);
//   - otherwise a grant may allow;
//   - without a key (KeyPolicy nil) identity policies decide alone.
func Decide(in Input) Decision {
	req := in.Request
	var key Result
	if in.KeyPolicy != nil {
		key = in.KeyPolicy.Evaluate(req)
		if key.Effect == ExplicitDeny {
			return Decision{Reason: DeniedByResourcePolicy, Statements: []StatementRef{ref(in.KeyPolicy, key)}}
		}
	}
	var idAllow StatementRef
	haveIDAllow := false
	for _, ip := range in.IdentityPolicies {
		if ip == nil {
			continue
		}
		r := ip.Evaluate(req)
		switch r.Effect {
		case ExplicitDeny:
			return Decision{Reason: DeniedByIdentityPolicy, Statements: []StatementRef{ref(ip, r)}}
		case Allow:
			if !haveIDAllow {
				idAllow, haveIDAllow = ref(ip, r), true
			}
		}
	}
	// The account root holds every permission of its own account in IAM.
	identityAllows := haveIDAllow || req.Principal.isRoot()
	// withIdentity lists the key statement (if any) and the identity one.
	withIdentity := func(keyRef *StatementRef) []StatementRef {
		refs := make([]StatementRef, 0, 2)
		if keyRef != nil {
			refs = append(refs, *keyRef)
		}
		if haveIDAllow {
			refs = append(refs, idAllow)
		}
		return refs
	}

	if in.KeyPolicy == nil {
		if identityAllows {
			return Decision{Allowed: true, Reason: AllowedByIdentityPolicy, Statements: withIdentity(nil)}
		}
		return Decision{Reason: DeniedNoIdentityPolicy}
	}

	denied := Decision{Reason: DeniedNoResourcePolicy}
	if key.Effect == Allow {
		keyRef := ref(in.KeyPolicy, key)
		sameAccount := req.Principal.AccountID == in.KeyAccountID
		switch {
		case sameAccount && !key.Delegated:
			return Decision{Allowed: true, Reason: AllowedByKeyPolicy, Statements: []StatementRef{keyRef}}
		case identityAllows && key.Delegated && haveIDAllow:
			return Decision{Allowed: true, Reason: AllowedByIdentityPolicy, Statements: withIdentity(&keyRef)}
		case identityAllows:
			return Decision{Allowed: true, Reason: AllowedByKeyPolicy, Statements: withIdentity(&keyRef)}
		}
		denied = Decision{Reason: DeniedNoIdentityPolicy, Statements: []StatementRef{keyRef}}
	}
	if in.GrantAllows {
		if !in.GrantDelegated || identityAllows {
			return Decision{Allowed: true, Reason: AllowedByGrant, Statements: withIdentity(nil)}
		}
		// The grant is the resource side; the caller's account has not
		// delegated the action to the caller.
		return Decision{Reason: DeniedNoIdentityPolicy}
	}
	return denied
}

func ref(p *Policy, r Result) StatementRef {
	return StatementRef{Policy: p.name, Kind: p.kind, Index: r.Statement, Sid: r.Sid, Effect: r.Effect}
}

// Message returns the AccessDeniedException message for a denial ("" when
// allowed).
func (d Decision) Message(req *Request) string {
	if d.Allowed {
		return ""
	}
	return AccessDeniedMessage(req.Principal.ARN, req.Action, req.Resource, d.Reason)
}

// AccessDeniedMessage builds AWS's AccessDeniedException text, e.g.
// "User: arn:aws:iam::111122223333:user/alice is not authorized to perform:
// kms:Decrypt on resource: arn:aws:kms:...:key/... because no
// identity-based policy allows the kms:Decrypt action".
func AccessDeniedMessage(principalARN, action, resource string, r Reason) string {
	head := "User: " + principalARN + " is not authorized to perform: " + action + " on resource: " + resource
	switch r {
	case DeniedByResourcePolicy:
		return head + " with an explicit deny in a resource-based policy"
	case DeniedByIdentityPolicy:
		return head + " with an explicit deny in an identity-based policy"
	case DeniedNoIdentityPolicy:
		return head + " because no identity-based policy allows the " + action + " action"
	}
	return head + " because no resource-based policy allows the " + action + " action"
}

// CheckLockout is the PutKeyPolicy / CreateKey lockout safety check: would
// the caller, under newPolicy, still be allowed kms:PutKeyPolicy on the key?
// in describes the PutKeyPolicy request (principal, key ARN, condition keys,
// identity policies); its Action, KeyPolicy and GrantAllows are replaced
// (grants cannot give PutKeyPolicy). When the result is not Allowed, reject
// the policy with MalformedPolicyDocumentException and MsgLockout unless
// BypassPolicyLockoutSafetyCheck is set.
func CheckLockout(newPolicy *Policy, in Input) Decision {
	r := *in.Request
	r.Action = "kms:PutKeyPolicy"
	in.Request = &r
	in.KeyPolicy = newPolicy
	in.GrantAllows = false
	return Decide(in)
}

// Condition keys the service fills in (lower-case: the fast path of
// Request.Context lookups). Names follow AWS; see the reference, section 5.2.
const (
	KeyEncryptionContextPrefix = "kms:encryptioncontext:" // + context key (lower-cased)
	KeyEncryptionContextKeys   = "kms:encryptioncontextkeys"
	KeyCallerAccount           = "kms:calleraccount"
	KeyViaService              = "kms:viaservice"
	KeyGrantOperations         = "kms:grantoperations"
	KeyGranteePrincipal        = "kms:granteeprincipal"
	KeyRetiringPrincipal       = "kms:retiringprincipal"
	KeyGrantConstraintType     = "kms:grantconstrainttype"
	KeyGrantIsForAWSResource   = "kms:grantisforawsresource"
	KeyRequestAlias            = "kms:requestalias"
	KeyResourceAliases         = "kms:resourcealiases"
	KeyKeySpec                 = "kms:keyspec"
	KeyKeyUsage                = "kms:keyusage"
	KeyKeyOrigin               = "kms:keyorigin"
	KeyMultiRegion             = "kms:multiregion"
	KeyEncryptionAlgorithm     = "kms:encryptionalgorithm"
	KeySigningAlgorithm        = "kms:signingalgorithm"
	KeyMacAlgorithm            = "kms:macalgorithm"
	KeyMessageType             = "kms:messagetype"
	KeyWrappingAlgorithm       = "kms:wrappingalgorithm"
	KeyWrappingKeySpec         = "kms:wrappingkeyspec"
	KeyExpirationModel         = "kms:expirationmodel"
	KeyValidTo                 = "kms:validto"
	KeyDataKeyPairSpec         = "kms:datakeypairspec"
	KeyReEncryptOnSameKey      = "kms:reencryptonsamekey"
	KeyBypassLockoutCheck      = "kms:bypasspolicylockoutsafetycheck"
	KeyRotationPeriodInDays    = "kms:rotationperiodindays"
	KeyPendingWindowInDays     = "kms:schedulekeydeletionpendingwindowindays"

	KeySourceIP          = "aws:sourceip"
	KeySecureTransport   = "aws:securetransport"
	KeyPrincipalArn      = "aws:principalarn"
	KeyPrincipalAccount  = "aws:principalaccount"
	KeyPrincipalType     = "aws:principaltype"
	KeyUsername          = "aws:username"
	KeyUserID            = "aws:userid"
	KeyCurrentTime       = "aws:currenttime"
	KeyEpochTime         = "aws:epochtime"
	KeyRequestedRegion   = "aws:requestedregion"
	KeyTokenIssueTime    = "aws:tokenissuetime"
	KeyPrincipalTagPref  = "aws:principaltag/" // + tag key
	KeyResourceTagPrefix = "aws:resourcetag/"  // + tag key
	KeyRequestTagPrefix  = "aws:requesttag/"   // + tag key
	KeyTagKeys           = "aws:tagkeys"
)

// SetPrincipalKeys fills the principal's global condition keys into ctx:
// aws:PrincipalArn (the role ARN for a role session, as AWS does),
// aws:PrincipalAccount, aws:PrincipalType (Account, User, AssumedRole),
// aws:username (IAM users only) and kms:CallerAccount.
func SetPrincipalKeys(ctx map[string][]string, p Principal) {
	arn := p.ARN
	if p.Type == TypeAssumedRole && p.RoleARN != "" {
		arn = p.RoleARN
	}
	if arn != "" {
		ctx[KeyPrincipalArn] = []string{arn}
	}
	if p.AccountID != "" {
		ctx[KeyPrincipalAccount] = []string{p.AccountID}
		ctx[KeyCallerAccount] = []string{p.AccountID}
	}
	switch {
	case p.isRoot():
		ctx[KeyPrincipalType] = []string{"Account"}
	case p.Type == TypeUser:
		ctx[KeyPrincipalType] = []string{"User"}
		if i := strings.LastIndexByte(p.ARN, '/'); i >= 0 {
			ctx[KeyUsername] = []string{p.ARN[i+1:]}
		}
	case p.Type == TypeAssumedRole:
		ctx[KeyPrincipalType] = []string{"AssumedRole"}
	}
}

package policy

import (
	"regexp"
	"strings"
)

// PrincipalType says what kind of identity made a request. The values are
// the ones kms.Principal.Type already uses (CloudTrail userIdentity.type).
type PrincipalType string

const (
	TypeRoot        PrincipalType = "Root"        // arn:aws:iam::ACCOUNT:root
	TypeUser        PrincipalType = "IAMUser"     // arn:aws:iam::ACCOUNT:user/NAME
	TypeAssumedRole PrincipalType = "AssumedRole" // arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION
	TypeService     PrincipalType = "AWSService"  // ARN holds the service name, e.g. logs.amazonaws.com
)

// Principal is the authenticated caller as the policy engine sees it.
type Principal struct {
	ARN       string // user, root or assumed-role session ARN; for a service, its name
	AccountID string // 12 digits
	Type      PrincipalType
	// RoleARN is the IAM ARN of the role behind an assumed-role session
	// (arn:aws:iam::ACCOUNT:role/PATH/NAME): key policies name roles, and a
	// role names every one of its sessions.
	RoleARN string
}

func (p Principal) isRoot() bool {
	return p.Type == TypeRoot || (p.Type == "" && strings.HasSuffix(p.ARN, ":root"))
}

type principalKind uint8

const (
	pAny     principalKind = iota // "*" / {"AWS":"*"}
	pAccount                      // 123456789012 or arn:aws:iam::123456789012:root
	pARN                          // a user, role, session or federated user ARN
	pService                      // {"Service": "..."}
	pOther                        // Federated, CanonicalUser: kept, never matches
	// pUniqueID: a deleted user's or role's unique id (AIDA…, AROA…, or
	// AROA…:session for a session of a deleted role), which is what AWS,
	// and DeletePrincipal here, leaves in a policy in place of its ARN.
	// It matches nobody: a principal created later under the same name
	// has another unique id and must not inherit the old one's access.
	pUniqueID
)

// uniqueIDPattern matches the unique ids this service gives users (AIDA)
// and roles (AROA), optionally with a role session's name: any name a
// session ARN in a policy may carry (parseAWSPrincipal), so that rewriting
// a deleted role's session ARN never leaves a policy that fails to parse.
var uniqueIDPattern = regexp.MustCompile(`^(AIDA|AROA)[A-Z2-7]{17}(:[^/]+)?$`)

// IsUniqueID reports whether v is a principal's unique id as DeletePrincipal
// leaves it in policies and grants.
func IsUniqueID(v string) bool { return uniqueIDPattern.MatchString(v) }

type principalEntry struct {
	kind    principalKind
	typ     string // AWS, Service, Federated, CanonicalUser, or "*" for Principal:"*"
	value   string // as written
	account string // pAccount
	arn     string // pARN
}

// principalMatch is how strongly a statement's Principal names the caller.
type principalMatch uint8

const (
	matchNone principalMatch = iota
	// matchAccount: the statement names the caller's account (its :root or
	// the bare account id). In a key policy this delegates to the account's
	// IAM policies rather than allowing the caller by itself.
	matchAccount
	// matchDirect: the statement names the caller (its ARN, its role, or "*").
	matchDirect
)

// parseAWSPrincipal validates one value of an "AWS" principal.
func parseAWSPrincipal(v string) (principalEntry, bool) {
	e := principalEntry{typ: "AWS", value: v}
	if v == "*" {
		e.kind = pAny
		return e, true
	}
	if isAccountID(v) {
		e.kind, e.account = pAccount, v
		return e, true
	}
	if IsUniqueID(v) {
		e.kind = pUniqueID
		return e, true
	}
	parts, ok := splitARN(v, false)
	if !ok || parts[0] != "arn" || !validPartition(parts[1]) || parts[3] != "" || !isAccountID(parts[4]) {
		return e, false
	}
	res := parts[5]
	if strings.ContainsAny(v, "*?") { // "*" only stands alone (IAM grammar)
		return e, false
	}
	switch parts[2] {
	case "iam":
		if res == "root" {
			e.kind, e.account = pAccount, parts[4]
			return e, true
		}
		for _, prefix := range []string{"user/", "role/"} {
			if name, ok := strings.CutPrefix(res, prefix); ok && validPathName(name) {
				e.kind, e.arn = pARN, v
				return e, true
			}
		}
	case "sts":
		if rest, ok := strings.CutPrefix(res, "assumed-role/"); ok {
			role, session, ok := strings.Cut(rest, "/")
			if ok && role != "" && session != "" && !strings.Contains(session, "/") {
				e.kind, e.arn = pARN, v
				return e, true
			}
		}
		if name, ok := strings.CutPrefix(res, "federated-user/"); ok && name != "" && !strings.Contains(name, "/") {
			e.kind, e.arn = pARN, v
			return e, true
		}
	}
	return e, false
}

func isAccountID(s string) bool { return len(s) == 12 && allDigits(s) }

func validPartition(s string) bool {
	if !strings.HasPrefix(s, "aws") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && c != '-' {
			return false
		}
	}
	return true
}

// validPathName accepts NAME or PATH/NAME with no empty segment.
func validPathName(s string) bool {
	if s == "" || strings.HasSuffix(s, "/") || strings.HasPrefix(s, "/") || strings.Contains(s, "//") {
		return false
	}
	return true
}

func (e *principalEntry) match(p Principal) principalMatch {
	switch e.kind {
	case pAny:
		if anyMatches(e.typ, p) {
			return matchDirect
		}
	case pAccount:
		if p.Type != TypeService && p.AccountID == e.account {
			return matchAccount
		}
	case pARN:
		if p.Type == TypeService {
			return matchNone
		}
		if p.ARN == e.arn || (p.RoleARN != "" && p.RoleARN == e.arn) {
			return matchDirect
		}
	case pService:
		if p.Type == TypeService && p.ARN == e.value {
			return matchDirect
		}
	}
	return matchNone
}

// anyMatches reports whether a wildcard principal of type typ names the
// caller: "*" everyone, {"AWS":"*"} every AWS principal (not services), and
// {"Service":"*"} services only (which the parser refuses anyway: IAM's
// Access Analyzer rejects the wildcard; it used to match every user here).
func anyMatches(typ string, p Principal) bool {
	switch typ {
	case "*":
		return true
	case "Service":
		return p.Type == TypeService
	}
	return p.Type != TypeService
}

// matchPrincipals returns the strongest match of the caller among entries.
func matchPrincipals(entries []principalEntry, p Principal) principalMatch {
	best := matchNone
	for i := range entries {
		if m := entries[i].match(p); m > best {
			best = m
			if best == matchDirect {
				break
			}
		}
	}
	return best
}

// notPrincipalExempts reports whether a NotPrincipal list exempts the
// caller. IAM checks the caller's account first and then the identity
// itself, which is why its documentation tells you to list the account
// together with the user or role. So: "*" exempts everyone; otherwise the
// caller's account must be listed, and, unless the caller is the account
// root, the caller itself (its ARN, or its role for a session) too.
func notPrincipalExempts(entries []principalEntry, p Principal) bool {
	accountListed, selfListed := false, false
	for i := range entries {
		e := &entries[i]
		switch e.kind {
		case pAny:
			if anyMatches(e.typ, p) {
				return true
			}
		case pService:
			if p.Type == TypeService && p.ARN == e.value {
				return true
			}
		case pAccount:
			if p.Type != TypeService && p.AccountID == e.account {
				accountListed = true
			}
		case pARN:
			if e.match(p) == matchDirect {
				selfListed = true
			}
		}
	}
	return accountListed && (selfListed || p.isRoot())
}

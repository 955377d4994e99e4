package policy

// Request is what one authorization question is about.
type Request struct {
	Principal Principal
	// Action is "kms:<Operation>", e.g. "kms:Encrypt" (matched case-insensitively).
	Action string
	// Resource is the key ARN, or "*" for actions without a resource
	// (kms:CreateKey, kms:ListKeys, ...).
	Resource string
	// Context holds the request's condition keys: key -> values. Keys are
	// matched case-insensitively (lower-case keys are the fast path);
	// single-valued keys have one value; a key that is absent (or has no
	// values) is missing.
	Context map[string][]string
}

// Effect is what one policy says about a request.
type Effect uint8

const (
	NotApplicable Effect = iota // no statement applies (implicit deny)
	Allow
	ExplicitDeny
)

func (e Effect) String() string {
	switch e {
	case Allow:
		return "Allow"
	case ExplicitDeny:
		return "ExplicitDeny"
	}
	return "NotApplicable"
}

// Result is the outcome of evaluating one policy.
type Result struct {
	Effect Effect
	// Statement is the index of the deciding statement, -1 if none.
	Statement int
	Sid       string
	// Delegated: the Allow only names the caller's account (its :root or
	// account id), not the caller. In a key policy that delegates the
	// decision to the account's identity policies.
	Delegated bool
}

// Evaluate decides the request against this policy alone: ExplicitDeny if
// any Deny statement applies (the first one is reported), else Allow if an
// Allow statement applies (one naming the caller directly is preferred over
// one naming its account), else NotApplicable.
func (p *Policy) Evaluate(req *Request) Result {
	v := vctx{ctx: req.Context}
	allow, allowDelegated := -1, -1
	for i := range p.stmts {
		s := &p.stmts[i]
		m := s.applies(req, &v)
		if m == matchNone {
			continue
		}
		if s.deny {
			return Result{Effect: ExplicitDeny, Statement: i, Sid: s.sid}
		}
		if m == matchDirect && allow < 0 {
			allow = i
		} else if m == matchAccount && allowDelegated < 0 {
			allowDelegated = i
		}
	}
	switch {
	case allow >= 0:
		return Result{Effect: Allow, Statement: allow, Sid: p.stmts[allow].sid}
	case allowDelegated >= 0:
		return Result{Effect: Allow, Statement: allowDelegated, Sid: p.stmts[allowDelegated].sid, Delegated: true}
	}
	return Result{Effect: NotApplicable, Statement: -1}
}

// applies reports whether the statement applies to the request and how
// it names the caller (identity-policy statements name it directly).
func (s *statement) applies(req *Request, v *vctx) principalMatch {
	if !s.hasAction || !s.hasResource {
		return matchNone
	}
	m := matchDirect
	if s.hasPrincipal {
		if s.notPrincipal {
			if notPrincipalExempts(s.principals, req.Principal) {
				return matchNone
			}
		} else if m = matchPrincipals(s.principals, req.Principal); m == matchNone {
			return matchNone
		}
	}
	if s.matchAction(req.Action) == s.notAction {
		return matchNone
	}
	v.unresolved = false
	if s.matchResource(req.Resource, v) == s.notResource || v.unresolved {
		return matchNone
	}
	for i := range s.conds {
		if !s.conds[i].eval(v) || v.unresolved {
			return matchNone
		}
	}
	return m
}

func (s *statement) matchAction(action string) bool {
	for i := range s.actions {
		if s.actions[i].match(action, nil) {
			return true
		}
	}
	return false
}

func (s *statement) matchResource(res string, v *vctx) bool {
	for i := range s.resources {
		if s.resources[i].match(res, v) {
			return true
		}
	}
	return false
}

// Package policy parses and evaluates AWS IAM-language policies (key
// policies and identity-based policies) and combines them the way AWS KMS
// decides a request: an explicit Deny anywhere wins; otherwise the key
// policy, an identity policy the key policy delegates to, or a grant must
// allow.
//
// A parsed *Policy is immutable and safe for concurrent use, so callers can
// cache it by document. Evaluation compiles nothing: wildcards are tokenized
// at Parse time and matched without regexps or allocations (documents with
// policy variables allocate a little).
package policy

import (
	"strconv"
	"strings"
)

// Version values of the policy language.
const (
	Version2012 = "2012-10-17"
	Version2008 = "2008-10-17"
)

// PolicyKind distinguishes key policies (resource-based, every statement
// names a Principal) from identity policies (attached to users and roles,
// never a Principal).
type PolicyKind uint8

const (
	KeyPolicy PolicyKind = iota
	IdentityPolicy
)

// Option configures Parse.
type Option func(*options)

type options struct {
	kind PolicyKind
	name string
}

// AsIdentityPolicy parses the document as an identity-based policy.
func AsIdentityPolicy() Option { return func(o *options) { o.kind = IdentityPolicy } }

// WithName records a name (e.g. the identity policy's name, or "default"
// for a key policy) reported in decisions and logs.
func WithName(name string) Option { return func(o *options) { o.name = name } }

// Policy is a parsed, immutable policy document.
type Policy struct {
	doc     string
	name    string
	kind    PolicyKind
	version string
	id      string
	stmts   []statement
}

// Doc returns the document exactly as given to Parse (GetKeyPolicy returns
// the stored text, not a re-encoding).
func (p *Policy) Doc() string { return p.doc }

// Name returns the name given with WithName.
func (p *Policy) Name() string { return p.name }

// Kind returns whether this is a key or an identity policy.
func (p *Policy) Kind() PolicyKind { return p.kind }

// Version returns the Version element ("" when absent).
func (p *Policy) Version() string { return p.version }

// ID returns the Id element.
func (p *Policy) ID() string { return p.id }

// Len returns the number of statements.
func (p *Policy) Len() int { return len(p.stmts) }

// ServiceWildcard reports whether a statement names {"Service":"*"}, which
// new policies may not (Access Analyzer: "Unsupported wildcard in
// principal").
func (p *Policy) ServiceWildcard() bool {
	for i := range p.stmts {
		for _, e := range p.stmts[i].principals {
			if e.kind == pAny && e.typ == "Service" {
				return true
			}
		}
	}
	return false
}

// Principals returns every AWS principal value named in Principal or
// NotPrincipal, as written, so that the caller can check they exist
// (KMS rejects a key policy naming unknown principals with
// MsgInvalidPrincipals). "*" is left out.
func (p *Policy) Principals() []string {
	var out []string
	seen := map[string]bool{}
	for i := range p.stmts {
		for _, e := range p.stmts[i].principals {
			if e.typ == "AWS" && e.kind != pAny && !seen[e.value] {
				seen[e.value] = true
				out = append(out, e.value)
			}
		}
	}
	return out
}

type statement struct {
	sid   string
	deny  bool
	label string // `statement 2 ("Sid")` for messages

	hasPrincipal bool
	notPrincipal bool
	principals   []principalEntry

	// A key-policy statement without Action (or Resource) is accepted by
	// KMS but never applies.
	hasAction bool
	notAction bool
	actions   []pattern

	hasResource bool
	notResource bool
	resources   []arnPattern

	conds []condition
}

var policyElements = map[string]bool{"Version": true, "Id": true, "Statement": true}

var statementElements = map[string]bool{
	"Sid": true, "Effect": true, "Principal": true, "NotPrincipal": true,
	"Action": true, "NotAction": true, "Resource": true, "NotResource": true,
	"Condition": true,
}

// Parse parses a policy document strictly, rejecting what AWS rejects with
// an *Error of KindMalformed whose message says what is wrong. By default
// the document is a key policy; pass AsIdentityPolicy() for identity
// policies. Parse does not check the size limit: call CheckSize first.
func Parse(doc string, opts ...Option) (*Policy, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	if strings.TrimSpace(doc) == "" {
		return nil, malformed("The policy document is empty.")
	}
	root, err := decodeJSON(doc)
	if err != nil {
		return nil, err
	}
	if root.kind != jObject {
		return nil, malformed("The policy document must be a JSON object, not %s.", root.kind)
	}
	p := &Policy{doc: doc, name: o.name, kind: o.kind}
	var stmtVal *jvalue
	for i := range root.obj {
		m := &root.obj[i]
		if !policyElements[m.key] {
			return nil, malformed("Policy contains an unknown element %q; the policy elements are Version, Id and Statement.", m.key)
		}
		switch m.key {
		case "Version":
			if m.val.kind != jString || (m.val.s != Version2012 && m.val.s != Version2008) {
				return nil, malformed("The policy Version must be %q or %q.", Version2012, Version2008)
			}
			p.version = m.val.s
		case "Id":
			if m.val.kind != jString {
				return nil, malformed("The policy Id must be a string.")
			}
			p.id = m.val.s
		case "Statement":
			stmtVal = &m.val
		}
	}
	if stmtVal == nil {
		return nil, malformed("The policy document has no Statement element.")
	}
	var raw []jvalue
	switch stmtVal.kind {
	case jObject:
		raw = []jvalue{*stmtVal}
	case jArray:
		raw = stmtVal.arr
	default:
		return nil, malformed("The Statement element must be an object or a list of objects, not %s.", stmtVal.kind)
	}
	// An empty Statement list is accepted: it allows nothing (a key policy
	// like that still fails the lockout check). Callers use it as the
	// fail-closed stand-in for a stored document that no longer parses.
	sids := map[string]bool{}
	vars := p.version == Version2012 // policy variables came with 2012-10-17
	for i := range raw {
		s, err := parseStatement(&raw[i], i, o.kind, vars)
		if err != nil {
			return nil, err
		}
		if s.sid != "" {
			if sids[s.sid] {
				return nil, malformed("Statement IDs (SID) in a single policy must be unique; %q appears more than once.", s.sid)
			}
			sids[s.sid] = true
		}
		p.stmts = append(p.stmts, s)
	}
	return p, nil
}

func parseStatement(v *jvalue, index int, kind PolicyKind, vars bool) (statement, error) {
	s := statement{label: "statement " + strconv.Itoa(index+1)}
	if v.kind != jObject {
		return s, malformed("The %s must be an object, not %s.", s.label, v.kind)
	}
	// Sid first, so that every later message can name the statement.
	for _, m := range v.obj {
		if m.key == "Sid" {
			if m.val.kind != jString {
				return s, malformed("The Sid of %s must be a string.", s.label)
			}
			s.sid = m.val.s
			if s.sid != "" {
				s.label += " (Sid " + strconv.Quote(s.sid) + ")"
			}
		}
	}
	hasEffect := false
	for i := range v.obj {
		m := &v.obj[i]
		if !statementElements[m.key] {
			return s, malformed("Policy %s contains an unknown element %q.", s.label, m.key)
		}
		var err error
		switch m.key {
		case "Effect":
			if m.val.kind != jString || (m.val.s != "Allow" && m.val.s != "Deny") {
				return s, malformed("The Effect of %s must be \"Allow\" or \"Deny\".", s.label)
			}
			hasEffect, s.deny = true, m.val.s == "Deny"
		case "Principal", "NotPrincipal":
			if kind == IdentityPolicy {
				return s, malformed(MsgPrincipalInIdentityPolicy)
			}
			if s.hasPrincipal {
				return s, malformed("Policy %s contains both Principal and NotPrincipal.", s.label)
			}
			s.hasPrincipal, s.notPrincipal = true, m.key == "NotPrincipal"
			s.principals, err = parsePrincipals(&m.val)
		case "Action", "NotAction":
			if s.hasAction {
				return s, malformed("Policy %s contains both Action and NotAction.", s.label)
			}
			s.hasAction, s.notAction = true, m.key == "NotAction"
			s.actions, err = parseActions(&m.val, m.key, s.label)
		case "Resource", "NotResource":
			if s.hasResource {
				return s, malformed("Policy %s contains both Resource and NotResource.", s.label)
			}
			s.hasResource, s.notResource = true, m.key == "NotResource"
			s.resources, err = parseResources(&m.val, m.key, s.label, vars)
		case "Condition":
			s.conds, err = parseConditions(&m.val, s.label, vars)
		}
		if err != nil {
			return s, err
		}
	}
	if !hasEffect {
		return s, malformed("Missing required field Effect in %s.", s.label)
	}
	switch kind {
	case KeyPolicy:
		if !s.hasPrincipal {
			return s, malformed("Policy %s has no Principal or NotPrincipal; every key policy statement must name a principal.", s.label)
		}
	case IdentityPolicy:
		if !s.hasAction {
			return s, malformed("Policy statement must contain actions (%s).", s.label)
		}
		if !s.hasResource {
			return s, malformed("Policy statement must contain resources (%s).", s.label)
		}
	}
	return s, nil
}

// stringList reads "x" or ["x", ...]: a non-empty list of non-empty strings.
func stringList(v *jvalue, what string) ([]string, error) {
	switch v.kind {
	case jString:
		if v.s == "" {
			return nil, malformed("%s contains an empty string.", what)
		}
		return []string{v.s}, nil
	case jArray:
		if len(v.arr) == 0 {
			return nil, malformed("%s is an empty list.", what)
		}
		out := make([]string, 0, len(v.arr))
		for _, e := range v.arr {
			if e.kind != jString {
				return nil, malformed("%s must contain only strings, not %s.", what, e.kind)
			}
			if e.s == "" {
				return nil, malformed("%s contains an empty string.", what)
			}
			out = append(out, e.s)
		}
		return out, nil
	}
	return nil, malformed("%s must be a string or a list of strings, not %s.", what, v.kind)
}

func parsePrincipals(v *jvalue) ([]principalEntry, error) {
	if v.kind == jString {
		if v.s == "*" {
			return []principalEntry{{kind: pAny, typ: "*", value: "*"}}, nil
		}
		return nil, malformed(MsgInvalidPrincipals)
	}
	if v.kind != jObject || len(v.obj) == 0 {
		return nil, malformed(MsgInvalidPrincipals)
	}
	var out []principalEntry
	for i := range v.obj {
		m := &v.obj[i]
		values, err := stringList(&m.val, "Principal")
		if err != nil {
			return nil, malformed(MsgInvalidPrincipals)
		}
		for _, s := range values {
			switch m.key {
			case "AWS":
				e, ok := parseAWSPrincipal(s)
				if !ok {
					return nil, malformed(MsgInvalidPrincipals)
				}
				out = append(out, e)
			case "Service":
				if s == "*" {
					// Every service, never a user or role (anyMatches).
					// New policies may not say so (Policy.ServiceWildcard:
					// Access Analyzer rejects the wildcard); stored ones
					// still parse, so that a key whose policy has one is
					// not locked out.
					out = append(out, principalEntry{kind: pAny, typ: "Service", value: s})
					continue
				}
				if strings.ContainsAny(s, "*?") {
					return nil, malformed(MsgInvalidPrincipals)
				}
				out = append(out, principalEntry{kind: pService, typ: "Service", value: s})
			case "Federated", "CanonicalUser":
				out = append(out, principalEntry{kind: pOther, typ: m.key, value: s})
			default:
				return nil, malformed(MsgInvalidPrincipals)
			}
		}
	}
	return out, nil
}

func parseActions(v *jvalue, elem, label string) ([]pattern, error) {
	values, err := stringList(v, "The "+elem+" element of "+label)
	if err != nil {
		return nil, err
	}
	out := make([]pattern, 0, len(values))
	for _, a := range values {
		if a != "*" {
			svc, name, ok := strings.Cut(a, ":")
			if !ok || svc == "" || name == "" || strings.ContainsAny(svc, "*?") {
				return nil, malformed("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.; %q in %s is not.", a, label)
			}
		}
		out = append(out, compilePattern(a, true, false, true))
	}
	return out, nil
}

func parseResources(v *jvalue, elem, label string, vars bool) ([]arnPattern, error) {
	values, err := stringList(v, "The "+elem+" element of "+label)
	if err != nil {
		return nil, err
	}
	out := make([]arnPattern, 0, len(values))
	for _, r := range values {
		if r != "*" && !strings.HasPrefix(r, "arn:") {
			return nil, malformed("Resource %q in %s must be \"*\" or an ARN.", r, label)
		}
		out = append(out, compileARN(r, vars))
	}
	return out, nil
}

func parseConditions(v *jvalue, label string, vars bool) ([]condition, error) {
	if v.kind != jObject {
		return nil, malformed("The Condition element of %s must be an object.", label)
	}
	var out []condition
	for i := range v.obj {
		op := &v.obj[i]
		info, set, ifExists, ok := parseOperator(op.key)
		if !ok {
			return nil, malformed("Policy %s contains an unknown condition operator %q.", label, op.key)
		}
		if op.val.kind != jObject || len(op.val.obj) == 0 {
			return nil, malformed("Condition operator %s in %s must map condition keys to values.", op.key, label)
		}
		for j := range op.val.obj {
			kv := &op.val.obj[j]
			if !validConditionKey(kv.key) {
				return nil, malformed("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.; condition key %q in %s is not.", kv.key, label)
			}
			c := condition{op: op.key, key: strings.ToLower(kv.key), info: info, set: set, ifExists: ifExists}
			raws, err := conditionValues(&kv.val)
			if err != nil {
				return nil, malformed("Condition %s %q in %s: %s", op.key, kv.key, label, err.Message)
			}
			for _, raw := range raws {
				cv, problem := compileValue(info, raw, vars)
				if problem != "" {
					return nil, malformed("Condition %s %q in %s: value %q %s.", op.key, kv.key, label, raw, problem)
				}
				c.values = append(c.values, cv)
			}
			out = append(out, c)
		}
	}
	return out, nil
}

func validConditionKey(k string) bool {
	prefix, rest, ok := strings.Cut(k, ":")
	return ok && prefix != "" && rest != ""
}

// conditionValues reads a condition value: a string, number or Boolean, or
// a non-empty list of them.
func conditionValues(v *jvalue) ([]string, *Error) {
	scalar := func(e *jvalue) (string, bool) {
		switch e.kind {
		case jString, jNumber, jBool:
			return e.s, true
		}
		return "", false
	}
	if v.kind == jArray {
		if len(v.arr) == 0 {
			return nil, malformed("the list of values is empty.")
		}
		out := make([]string, 0, len(v.arr))
		for i := range v.arr {
			s, ok := scalar(&v.arr[i])
			if !ok {
				return nil, malformed("values must be strings, numbers or Booleans, not %s.", v.arr[i].kind)
			}
			out = append(out, s)
		}
		return out, nil
	}
	s, ok := scalar(v)
	if !ok {
		return nil, malformed("values must be strings, numbers or Booleans, not %s.", v.kind)
	}
	return []string{s}, nil
}

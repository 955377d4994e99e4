package policy

import (
	"strings"
	"unicode/utf8"
)

// Patterns are compiled once at Parse time into tokens so that evaluation
// never builds a regexp and, for documents without policy variables, never
// allocates.

type tokKind uint8

const (
	tLit  tokKind = iota // literal text
	tStar                // * : any run of characters, possibly empty
	tOne                 // ? : exactly one character
	tVar                 // ${key} or ${key, 'default'}: a request context value
)

type tok struct {
	kind   tokKind
	s      string // literal text, or the lower-case context key of a variable
	def    string // default value of a variable
	hasDef bool
}

// pattern is one compiled policy string (action, resource, or condition
// value).
type pattern struct {
	raw     string
	toks    []tok
	exact   bool   // no wildcards and no variables: compare lit directly
	lit     string // the text when exact (lower-cased when fold)
	hasVars bool
	fold    bool // case-insensitive (actions, *IgnoreCase)
}

// compilePattern compiles s. wildcards: '*' and '?' are wildcards (StringLike,
// Arn*, Action, Resource) rather than literal characters (StringEquals).
// vars: ${...} policy variables are recognised (Version 2012-10-17 only).
func compilePattern(s string, wildcards, vars, fold bool) pattern {
	p := pattern{raw: s, fold: fold}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t := lit.String()
			if fold {
				t = strings.ToLower(t)
			}
			p.toks = append(p.toks, tok{kind: tLit, s: t})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case wildcards && c == '*':
			flush()
			// Consecutive stars are one star; keeps matching linear-ish.
			if n := len(p.toks); n == 0 || p.toks[n-1].kind != tStar {
				p.toks = append(p.toks, tok{kind: tStar})
			}
			i++
		case wildcards && c == '?':
			flush()
			p.toks = append(p.toks, tok{kind: tOne})
			i++
		case vars && c == '$' && i+1 < len(s) && s[i+1] == '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				lit.WriteString(s[i:])
				i = len(s)
				continue
			}
			body := s[i+2 : i+2+end]
			i += 2 + end + 1
			switch body {
			case "*", "?", "$": // ${*} ${?} ${$} are the escapes for literal characters
				lit.WriteString(body)
				continue
			}
			flush()
			t := tok{kind: tVar}
			name := body
			if comma := strings.IndexByte(body, ','); comma >= 0 {
				name = body[:comma]
				d := strings.TrimSpace(body[comma+1:])
				if len(d) >= 2 && d[0] == '\'' && d[len(d)-1] == '\'' {
					t.def, t.hasDef = d[1:len(d)-1], true
				}
			}
			t.s = strings.ToLower(strings.TrimSpace(name))
			p.toks = append(p.toks, t)
			p.hasVars = true
		default:
			lit.WriteByte(c)
			i++
		}
	}
	flush()
	p.exact = !p.hasVars
	for _, t := range p.toks {
		if t.kind != tLit {
			p.exact = false
		}
	}
	if p.exact {
		for _, t := range p.toks {
			p.lit += t.s
		}
	}
	return p
}

// vctx resolves policy variables against the request context during one
// evaluation. unresolved is set when a variable has no value and no default:
// AWS then treats the whole statement as not matching.
type vctx struct {
	ctx        map[string][]string
	unresolved bool
}

func (v *vctx) resolve(t tok) (string, bool) {
	if vals, ok := lookup(v.ctx, t.s); ok && len(vals) == 1 {
		return vals[0], true
	}
	if t.hasDef {
		return t.def, true
	}
	v.unresolved = true
	return "", false
}

// match reports whether s matches the pattern.
func (p *pattern) match(s string, v *vctx) bool {
	if p.exact {
		if p.fold {
			return strings.EqualFold(s, p.lit)
		}
		return s == p.lit
	}
	toks := p.toks
	if p.hasVars {
		// Slow path, only for documents that use variables: substitute
		// values as literal tokens (a value's '*' is never a wildcard).
		r := make([]tok, len(toks))
		for i, t := range toks {
			if t.kind == tVar {
				val, ok := v.resolve(t)
				if !ok {
					return false
				}
				if p.fold {
					val = strings.ToLower(val)
				}
				t = tok{kind: tLit, s: val}
			}
			r[i] = t
		}
		toks = r
	}
	return globMatch(toks, s, p.fold)
}

// globMatch is the classic iterative wildcard match with backtracking to the
// last star, over literal runs instead of single characters. Worst case
// O(len(s) * len(toks)); no recursion, no allocation.
func globMatch(toks []tok, s string, fold bool) bool {
	pi, si := 0, 0
	starPi, starSi := -1, 0
	for {
		if pi < len(toks) {
			t := toks[pi]
			switch t.kind {
			case tStar:
				if pi == len(toks)-1 { // a trailing star takes the rest
					return true
				}
				starPi, starSi = pi, si
				pi++
				continue
			case tOne:
				if si < len(s) {
					_, w := utf8.DecodeRuneInString(s[si:])
					si += w
					pi++
					continue
				}
			case tLit:
				if hasPrefix(s[si:], t.s, fold) {
					si += len(t.s)
					pi++
					continue
				}
			}
		} else if si == len(s) {
			return true
		}
		if starPi < 0 || starSi >= len(s) {
			return false
		}
		_, w := utf8.DecodeRuneInString(s[starSi:])
		starSi += w
		si, pi = starSi, starPi+1
	}
}

// hasPrefix reports whether s starts with lit; with fold, lit is lower-case
// and the comparison ignores case.
func hasPrefix(s, lit string, fold bool) bool {
	if len(s) < len(lit) {
		return false
	}
	if !fold {
		return s[:len(lit)] == lit
	}
	return strings.EqualFold(s[:len(lit)], lit)
}

// arnPattern matches ARNs component by component, as ArnLike and the
// Resource element do: a wildcard in the region never swallows the account.
type arnPattern struct {
	raw   string
	whole *pattern   // the pattern is not an ARN (e.g. "*"): match the whole string
	parts [6]pattern // arn:partition:service:region:account:resource
}

func compileARN(s string, vars bool) arnPattern {
	a := arnPattern{raw: s}
	parts, ok := splitARN(s, true)
	if !ok {
		p := compilePattern(s, true, vars, false)
		a.whole = &p
		return a
	}
	for i, part := range parts {
		a.parts[i] = compilePattern(part, true, vars, false)
	}
	return a
}

func (a *arnPattern) match(s string, v *vctx) bool {
	if a.whole != nil {
		return a.whole.match(s, v)
	}
	parts, ok := splitARN(s, false)
	if !ok {
		return false
	}
	for i := range a.parts {
		if !a.parts[i].match(parts[i], v) {
			return false
		}
	}
	return true
}

// splitARN cuts s at its first five colons. In a policy pattern, colons
// inside ${...} (as in ${aws:username}) do not count.
func splitARN(s string, skipVars bool) ([6]string, bool) {
	var out [6]string
	n, start, depth := 0, 0, 0
	for i := 0; i < len(s) && n < 5; i++ {
		switch {
		case skipVars && s[i] == '$' && i+1 < len(s) && s[i+1] == '{':
			depth++
		case skipVars && s[i] == '}' && depth > 0:
			depth--
		case s[i] == ':' && depth == 0:
			out[n] = s[start:i]
			n++
			start = i + 1
		}
	}
	if n < 5 {
		return out, false
	}
	out[5] = s[start:]
	return out, true
}

package policy

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

type family uint8

const (
	fString family = iota
	fStringIgnoreCase
	fStringLike
	fNumeric
	fDate
	fBool
	fBinary
	fIP
	fARN
	fNull
)

type cmpOp uint8

const (
	cmpEq cmpOp = iota
	cmpLt
	cmpLe
	cmpGt
	cmpGe
)

type opInfo struct {
	family family
	cmp    cmpOp
	negate bool
}

// operators are the IAM condition operators without their ForAnyValue: /
// ForAllValues: qualifier and IfExists suffix. Names are case-sensitive, as
// IAM's are.
var operators = map[string]opInfo{
	"StringEquals":              {fString, cmpEq, false},
	"StringNotEquals":           {fString, cmpEq, true},
	"StringEqualsIgnoreCase":    {fStringIgnoreCase, cmpEq, false},
	"StringNotEqualsIgnoreCase": {fStringIgnoreCase, cmpEq, true},
	"StringLike":                {fStringLike, cmpEq, false},
	"StringNotLike":             {fStringLike, cmpEq, true},
	"NumericEquals":             {fNumeric, cmpEq, false},
	"NumericNotEquals":          {fNumeric, cmpEq, true},
	"NumericLessThan":           {fNumeric, cmpLt, false},
	"NumericLessThanEquals":     {fNumeric, cmpLe, false},
	"NumericGreaterThan":        {fNumeric, cmpGt, false},
	"NumericGreaterThanEquals":  {fNumeric, cmpGe, false},
	"DateEquals":                {fDate, cmpEq, false},
	"DateNotEquals":             {fDate, cmpEq, true},
	"DateLessThan":              {fDate, cmpLt, false},
	"DateLessThanEquals":        {fDate, cmpLe, false},
	"DateGreaterThan":           {fDate, cmpGt, false},
	"DateGreaterThanEquals":     {fDate, cmpGe, false},
	"Bool":                      {fBool, cmpEq, false},
	"BinaryEquals":              {fBinary, cmpEq, false},
	"IpAddress":                 {fIP, cmpEq, false},
	"NotIpAddress":              {fIP, cmpEq, true},
	"ArnEquals":                 {fARN, cmpEq, false},
	"ArnLike":                   {fARN, cmpEq, false},
	"ArnNotEquals":              {fARN, cmpEq, true},
	"ArnNotLike":                {fARN, cmpEq, true},
	"Null":                      {fNull, cmpEq, false},
}

type setOp uint8

const (
	setNone setOp = iota
	setAny        // ForAnyValue:
	setAll        // ForAllValues:
)

// condition is one (operator, key) pair of a Condition block with its
// values; a statement's conditions are ANDed, its values ORed.
type condition struct {
	op       string // as written, for messages
	key      string // lower-case: condition keys are case-insensitive
	info     opInfo
	set      setOp
	ifExists bool
	values   []cvalue
}

type cvalue struct {
	pat    pattern // String*, Bool (variables), Binary
	arn    arnPattern
	num    float64
	t      time.Time
	prefix netip.Prefix
	null   bool // Null: true means "the key is absent"
}

// parseOperator splits "ForAnyValue:StringLikeIfExists" into its parts.
func parseOperator(name string) (opInfo, setOp, bool, bool) {
	base, set := name, setNone
	if b, ok := strings.CutPrefix(base, "ForAnyValue:"); ok {
		base, set = b, setAny
	} else if b, ok := strings.CutPrefix(base, "ForAllValues:"); ok {
		base, set = b, setAll
	}
	if info, ok := operators[base]; ok {
		return info, set, false, true
	}
	if b, ok := strings.CutSuffix(base, "IfExists"); ok {
		if info, ok := operators[b]; ok && info.family != fNull {
			return info, set, true, true
		}
	}
	return opInfo{}, 0, false, false
}

// compileValue checks one policy value for its operator and prepares it.
// vars is true for Version 2012-10-17, where ${...} is a policy variable.
func compileValue(info opInfo, raw string, vars bool) (cvalue, string) {
	var v cvalue
	switch info.family {
	case fString:
		v.pat = compilePattern(raw, false, vars, false)
	case fStringIgnoreCase:
		v.pat = compilePattern(raw, false, vars, true)
	case fStringLike:
		v.pat = compilePattern(raw, true, vars, false)
	case fARN:
		v.arn = compileARN(raw, vars)
	case fBinary:
		v.pat = compilePattern(raw, false, false, false)
	case fBool:
		v.pat = compilePattern(raw, false, vars, true)
		if !v.pat.hasVars {
			if _, ok := parseBool(raw); !ok {
				return v, "is not a Boolean (true or false)"
			}
		}
	case fNull:
		b, ok := parseBool(raw)
		if !ok {
			return v, "is not true or false"
		}
		v.null = b
	case fNumeric:
		n, ok := parseNumber(raw)
		if !ok {
			return v, "is not a number"
		}
		v.num = n
	case fDate:
		t, ok := parseDate(raw)
		if !ok {
			return v, "is not an ISO 8601 date or epoch time"
		}
		v.t = t
	case fIP:
		p, ok := parsePrefix(raw)
		if !ok {
			return v, "is not an IP address or CIDR range"
		}
		v.prefix = p
	}
	return v, ""
}

func parseBool(s string) (bool, bool) {
	switch {
	case strings.EqualFold(s, "true"):
		return true, true
	case strings.EqualFold(s, "false"):
		return false, true
	}
	return false, false
}

func parseNumber(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n != n { // reject NaN
		return 0, false
	}
	return n, true
}

// parseDate accepts the W3C profile of ISO 8601 that IAM documents (year,
// year-month, date, date and time with minutes, seconds or fractions, with
// Z or an offset) and epoch seconds.
func parseDate(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	if allDigits(s) && len(s) != 4 { // a bare 4-digit value is a year
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		return time.Unix(n, 0).UTC(), true
	}
	for _, layout := range dateLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

var dateLayouts = []string{
	time.RFC3339Nano, // 2006-01-02T15:04:05.999999999Z07:00 (also without fraction)
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04:05", // no zone: UTC, as AWS treats it
	"2006-01-02",
	"2006-01",
	"2006",
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func parsePrefix(s string) (netip.Prefix, bool) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}

// eval decides one condition. The rules (IAM condition operator reference):
// a missing key makes positive operators false and negated ones true,
// except IfExists (true when missing) and Null (which tests presence);
// ForAllValues is true for a missing or empty key, ForAnyValue false.
// Multiple policy values are ORed for positive operators; a negated
// operator is the negation of its positive form, so its values are
// effectively ANDed ("matches none of them"). An unqualified operator on a
// key with several request values behaves as ForAnyValue.
func (c *condition) eval(v *vctx) bool {
	vals, _ := lookup(v.ctx, c.key)
	missing := len(vals) == 0
	if c.info.family == fNull {
		for i := range c.values {
			if c.values[i].null == missing {
				return true
			}
		}
		return false
	}
	if missing {
		switch {
		case c.ifExists:
			return true
		case c.set == setAll:
			return true
		case c.set == setAny:
			return false
		}
		return c.info.negate
	}
	switch c.set {
	case setAll:
		for _, rv := range vals {
			if c.matchAny(rv, v) == c.info.negate {
				return false
			}
		}
		return true
	case setAny:
		for _, rv := range vals {
			if c.matchAny(rv, v) != c.info.negate {
				return true
			}
		}
		return false
	}
	for _, rv := range vals {
		if c.matchAny(rv, v) {
			return !c.info.negate
		}
	}
	return c.info.negate
}

// matchAny reports whether the request value rv matches at least one policy
// value under the positive form of the operator.
func (c *condition) matchAny(rv string, v *vctx) bool {
	switch c.info.family {
	case fString, fStringIgnoreCase, fStringLike, fBinary, fBool:
		if c.info.family == fBool {
			if _, ok := parseBool(rv); !ok {
				return false
			}
		}
		for i := range c.values {
			if c.values[i].pat.match(rv, v) {
				return true
			}
		}
	case fARN:
		for i := range c.values {
			if c.values[i].arn.match(rv, v) {
				return true
			}
		}
	case fNumeric:
		n, ok := parseNumber(rv)
		if !ok {
			return false
		}
		for i := range c.values {
			if compare(c.info.cmp, cmpFloat(n, c.values[i].num)) {
				return true
			}
		}
	case fDate:
		t, ok := parseDate(rv)
		if !ok {
			return false
		}
		for i := range c.values {
			if compare(c.info.cmp, t.Compare(c.values[i].t)) {
				return true
			}
		}
	case fIP:
		a, err := netip.ParseAddr(strings.TrimSpace(rv))
		if err != nil {
			return false
		}
		a = a.Unmap().WithZone("")
		for i := range c.values {
			if c.values[i].prefix.Contains(a) {
				return true
			}
		}
	}
	return false
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compare(op cmpOp, c int) bool {
	switch op {
	case cmpLt:
		return c < 0
	case cmpLe:
		return c <= 0
	case cmpGt:
		return c > 0
	case cmpGe:
		return c >= 0
	}
	return c == 0
}

// lookup finds a context key case-insensitively. Lower-case keys in the
// request context take the fast path (one map lookup).
func lookup(ctx map[string][]string, key string) ([]string, bool) {
	if v, ok := ctx[key]; ok {
		return v, true
	}
	for k, v := range ctx {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

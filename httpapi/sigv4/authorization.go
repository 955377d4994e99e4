// Package sigv4 parses and verifies AWS Signature Version 4 request
// signatures as KMS clients send them (the Authorization header form). It
// knows nothing about Gin: it reads a *http.Request and the raw body.
//
// Every failure is a *kms.Error carrying the name and wording AWS uses, so
// clients that act on those names (and humans who search for the messages)
// see what they would see from AWS.
package sigv4

import (
	"strings"
	"time"

	"hsmkms/kms"
)

// Algorithm is the only signing algorithm accepted.
const Algorithm = "AWS4-HMAC-SHA256"

// Terminator ends every SigV4 credential scope.
const Terminator = "aws4_request"

// scopeDateLayout is the yyyymmdd date of a credential scope.
const scopeDateLayout = "20060102"

// Authorization is a parsed SigV4 Authorization header:
//
//	AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=<64 hex>
type Authorization struct {
	AccessKeyID   string
	Date          string   // yyyymmdd, from the credential scope
	Region        string   // from the credential scope
	Service       string   // from the credential scope
	SignedHeaders []string // lower-case, strictly increasing, never empty
	Signature     string   // 64 lower-case hex digits
}

// Scope returns the credential scope date/region/service/aws4_request.
func (a Authorization) Scope() string {
	return a.Date + "/" + a.Region + "/" + a.Service + "/" + Terminator
}

// String formats the header the way the AWS SDKs do. Parsing the result gives
// a back.
func (a Authorization) String() string {
	return Algorithm + " Credential=" + a.AccessKeyID + "/" + a.Scope() +
		", SignedHeaders=" + strings.Join(a.SignedHeaders, ";") +
		", Signature=" + a.Signature
}

func incomplete(msg string) *kms.Error {
	return &kms.Error{Code: kms.CodeIncompleteSignature, Message: msg}
}

// ParseAuthorization parses an Authorization header value strictly: the
// algorithm, then exactly the three parameters Credential, SignedHeaders and
// Signature (in any order, each once, separated by commas and optional
// spaces). Every failure is an IncompleteSignatureException.
func ParseAuthorization(header string) (Authorization, error) {
	rest, ok := strings.CutPrefix(header, Algorithm+" ")
	if !ok {
		return Authorization{}, incomplete("Authorization header must use the '" + Algorithm + "' algorithm.")
	}
	params := map[string]string{}
	if strings.Trim(rest, " ") == "" {
		rest = "" // no parameters at all: report each as missing below
	}
	for part := range strings.SplitSeq(rest, ",") {
		if rest == "" {
			break
		}
		part = strings.Trim(part, " ")
		name, value, ok := strings.Cut(part, "=")
		if !ok || value == "" {
			return Authorization{}, incomplete("Authorization header has a malformed parameter; expected Name=Value pairs separated by commas.")
		}
		switch name {
		case "Credential", "SignedHeaders", "Signature":
		default:
			return Authorization{}, incomplete("Authorization header has an unknown parameter; only 'Credential', 'SignedHeaders' and 'Signature' are allowed.")
		}
		if _, dup := params[name]; dup {
			return Authorization{}, incomplete("Authorization header repeats the '" + name + "' parameter.")
		}
		params[name] = value
	}
	var missing []string
	for _, name := range []string{"Credential", "Signature", "SignedHeaders"} {
		if _, ok := params[name]; !ok {
			missing = append(missing, "Authorization header requires '"+name+"' parameter.")
		}
	}
	if len(missing) > 0 {
		return Authorization{}, incomplete(strings.Join(missing, " "))
	}

	var a Authorization
	if err := a.parseCredential(params["Credential"]); err != nil {
		return Authorization{}, err
	}
	if err := a.parseSignedHeaders(params["SignedHeaders"]); err != nil {
		return Authorization{}, err
	}
	if err := a.parseSignature(params["Signature"]); err != nil {
		return Authorization{}, err
	}
	return a, nil
}

func (a *Authorization) parseCredential(cred string) error {
	parts := strings.Split(cred, "/")
	if len(parts) != 5 {
		return incomplete("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '" + echo(cred) + "'")
	}
	id, date, region, service, term := parts[0], parts[1], parts[2], parts[3], parts[4]
	if !isToken(id, 128, isKeyIDChar) {
		return incomplete("Credential has a malformed access key id.")
	}
	if _, err := time.Parse(scopeDateLayout, date); err != nil || len(date) != len(scopeDateLayout) {
		return incomplete("Credential has a malformed date; expected yyyyMMdd.")
	}
	if !isToken(region, 64, isScopeChar) || !isToken(service, 64, isScopeChar) {
		return incomplete("Credential has a malformed region or service.")
	}
	if term != Terminator {
		return incomplete("Credential should be scoped with a valid terminator: '" + Terminator + "', not '" + echo(term) + "'.")
	}
	a.AccessKeyID, a.Date, a.Region, a.Service = id, date, region, service
	return nil
}

// parseSignedHeaders requires the canonical form the SDKs send: lower-case
// names, sorted, no repeats. Accepting anything else would mean two header
// lists with one meaning, and a canonical request that differs from the
// client's.
func (a *Authorization) parseSignedHeaders(list string) error {
	names := strings.Split(list, ";")
	for i, name := range names {
		if !isToken(name, 256, isHeaderNameChar) {
			return incomplete("SignedHeaders must be lower-case header names separated by ';'.")
		}
		if i > 0 && names[i-1] >= name {
			return incomplete("SignedHeaders must be sorted and must not repeat a header.")
		}
	}
	a.SignedHeaders = names
	return nil
}

func (a *Authorization) parseSignature(sig string) error {
	if len(sig) != 64 || !isToken(sig, 64, isLowerHex) {
		return incomplete("Signature must be 64 lower-case hexadecimal digits.")
	}
	a.Signature = sig
	return nil
}

func isToken(s string, maxLen int, ok func(byte) bool) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isKeyIDChar(c byte) bool { return isAlnum(c) || c == '_' || c == '-' || c == '.' }

func isScopeChar(c byte) bool { return isAlnum(c) || c == '-' || c == '_' }

func isLowerHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }

// isHeaderNameChar accepts the RFC 9110 token characters, lower-case only.
func isHeaderNameChar(c byte) bool {
	if c >= 'A' && c <= 'Z' {
		return false
	}
	return isAlnum(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// echo bounds a client's value quoted back in an error message (which is
// also what the audit trail stores for an unauthenticated request).
func echo(v string) string {
	const limit = 64
	if len(v) <= limit {
		return v
	}
	return v[:limit] + "..."
}

package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
)

// canonicalRequest builds the SigV4 canonical request of r:
//
//	method \n canonical URI \n canonical query \n canonical headers \n signed headers \n payload hash
func canonicalRequest(r *http.Request, signedHeaders []string, payloadHash string) (string, error) {
	query, err := canonicalQuery(r.URL.RawQuery)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(r.URL))
	b.WriteByte('\n')
	b.WriteString(query)
	b.WriteByte('\n')
	for _, name := range signedHeaders {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(canonicalHeaderValue(r, name))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String(), nil
}

// canonicalURI normalises the path as AWS does for every service but S3
// (dot segments and repeated slashes removed, a trailing slash kept) and then
// URI-encodes the already-escaped path once more: non-S3 services sign the
// double-encoded form.
func canonicalURI(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	clean := path.Clean("/" + p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return uriEncode(clean, false)
}

// canonicalQuery sorts the parameters by encoded name, then value, and
// encodes both with the SigV4 rules.
func canonicalQuery(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	values, err := url.ParseQuery(raw)
	if err != nil {
		return "", err
	}
	type param struct{ name, value string }
	var params []param
	for name, vs := range values {
		for _, v := range vs {
			params = append(params, param{uriEncode(name, true), uriEncode(v, true)})
		}
	}
	sort.Slice(params, func(i, j int) bool {
		if params[i].name != params[j].name {
			return params[i].name < params[j].name
		}
		return params[i].value < params[j].value
	})
	parts := make([]string, len(params))
	for i, p := range params {
		parts[i] = p.name + "=" + p.value
	}
	return strings.Join(parts, "&"), nil
}

// canonicalHeaderValue returns the values of one signed header joined by
// commas, each trimmed with runs of spaces collapsed. Host is read from
// r.Host, where net/http moves it. A header the client signed but did not
// send contributes an empty value, which makes the signature not match.
func canonicalHeaderValue(r *http.Request, name string) string {
	if name == "host" {
		host := r.Host
		if host == "" {
			host = r.URL.Host
		}
		return collapseSpaces(host)
	}
	values := r.Header.Values(name)
	if len(values) == 0 && name == "content-length" && r.ContentLength > 0 {
		// A request built in-process (not read off the wire) carries its
		// length only in ContentLength; the transport would send it.
		return strconv.FormatInt(r.ContentLength, 10)
	}
	cleaned := make([]string, len(values))
	for i, v := range values {
		cleaned[i] = collapseSpaces(v)
	}
	return strings.Join(cleaned, ",")
}

// collapseSpaces trims s and replaces each run of spaces with one space, as
// the SDK signers do.
func collapseSpaces(s string) string {
	return strings.TrimSpace(strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == ' ' }), " "))
}

// uriEncode percent-encodes every byte except the unreserved characters
// A-Z a-z 0-9 - . _ ~ (and '/' unless encodeSlash), in upper-case hex.
func uriEncode(s string, encodeSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || (c == '/' && !encodeSlash) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// stringToSign is the second SigV4 step.
func stringToSign(amzDate, scope, canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return Algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
}

// signingKey derives the per-day, per-region, per-service key:
// HMAC chain "AWS4"+secret -> date -> region -> service -> "aws4_request".
func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, Terminator)
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

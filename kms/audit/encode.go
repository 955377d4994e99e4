package audit

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

// encodeEvent appends the JSON of e to dst: byte for byte what
// json.Marshal(e) produces (a test holds it to that), without reflection.
// Every request of the service passes through here, and encoding/json's
// reflective walk of the event and its parameter maps was a large share of
// the audit trail's CPU per request.
func encodeEvent(dst []byte, e *Event) ([]byte, error) {
	var err error
	dst = append(dst, `{"eventVersion":`...)
	dst = appendString(dst, e.EventVersion)
	dst = append(dst, `,"userIdentity":{"type":`...)
	u := &e.UserIdentity
	dst = appendString(dst, u.Type)
	dst = appendOptional(dst, `,"principalId":`, u.PrincipalID)
	dst = appendOptional(dst, `,"arn":`, u.ARN)
	dst = appendOptional(dst, `,"accountId":`, u.AccountID)
	dst = appendOptional(dst, `,"accessKeyId":`, u.AccessKeyID)
	dst = append(dst, `},"eventTime":`...)
	dst = appendString(dst, e.EventTime)
	dst = append(dst, `,"eventSource":`...)
	dst = appendString(dst, e.EventSource)
	dst = append(dst, `,"eventName":`...)
	dst = appendString(dst, e.EventName)
	dst = append(dst, `,"awsRegion":`...)
	dst = appendString(dst, e.AWSRegion)
	dst = append(dst, `,"sourceIPAddress":`...)
	dst = appendString(dst, e.SourceIPAddress)
	dst = append(dst, `,"userAgent":`...)
	dst = appendString(dst, e.UserAgent)
	dst = appendOptional(dst, `,"errorCode":`, e.ErrorCode)
	dst = appendOptional(dst, `,"errorMessage":`, e.ErrorMessage)
	dst = append(dst, `,"requestParameters":`...)
	if dst, err = appendMap(dst, e.RequestParameters); err != nil {
		return nil, err
	}
	dst = append(dst, `,"responseElements":`...)
	if dst, err = appendMap(dst, e.ResponseElements); err != nil {
		return nil, err
	}
	dst = append(dst, `,"requestID":`...)
	dst = appendString(dst, e.RequestID)
	dst = append(dst, `,"eventID":`...)
	dst = appendString(dst, e.EventID)
	dst = append(dst, `,"readOnly":`...)
	dst = strconv.AppendBool(dst, e.ReadOnly)
	if len(e.Resources) > 0 {
		dst = append(dst, `,"resources":[`...)
		for i, r := range e.Resources {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"accountId":`...)
			dst = appendString(dst, r.AccountID)
			dst = append(dst, `,"type":`...)
			dst = appendString(dst, r.Type)
			dst = append(dst, `,"ARN":`...)
			dst = appendString(dst, r.ARN)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"eventType":`...)
	dst = appendString(dst, e.EventType)
	dst = append(dst, `,"managementEvent":`...)
	dst = strconv.AppendBool(dst, e.ManagementEvent)
	dst = append(dst, `,"recipientAccountId":`...)
	dst = appendString(dst, e.RecipientAccountID)
	dst = append(dst, `,"eventCategory":`...)
	dst = appendString(dst, e.EventCategory)
	return append(dst, '}'), nil
}

// appendOptional appends member and s unless s is empty (omitempty).
func appendOptional(dst []byte, member, s string) []byte {
	if s == "" {
		return dst
	}
	return appendString(append(dst, member...), s)
}

// appendMap encodes a parameters map as encoding/json does: null for nil,
// keys sorted, values rendered by httpapi as json.RawMessage (already
// compact and HTML-escaped, since encoding/json made them) or nested maps.
// Anything else goes through encoding/json.
func appendMap(dst []byte, m map[string]any) ([]byte, error) {
	if m == nil {
		return append(dst, "null"...), nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		var err error
		switch v := m[k].(type) {
		case map[string]any:
			dst, err = appendMap(dst, v)
		case json.RawMessage:
			if v == nil {
				dst = append(dst, "null"...)
			} else if json.Valid(v) && isCompact(v) {
				dst = append(dst, v...)
			} else {
				dst, err = appendMarshalled(dst, v)
			}
		default:
			dst, err = appendMarshalled(dst, v)
		}
		if err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

func appendMarshalled(dst []byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(dst, b...), nil
}

// isCompact reports whether valid JSON b is already what encoding/json
// would emit for it: no insignificant white space, and none of the
// characters it escapes (<, >, &, U+2028, U+2029) left unescaped.
func isCompact(b []byte) bool {
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '<' || c == '>' || c == '&':
			return false
		case c == 0xE2 && i+2 < len(b) && b[i+1] == 0x80 && b[i+2]&^1 == 0xA8:
			return false
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			return false
		}
	}
	return true
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string exactly as encoding/json does
// with HTML escaping on: <, > and & as \u003c, \u003e, \u0026, control
// characters as short or \u00XX escapes, invalid UTF-8 as \ufffd, and
// U+2028 and U+2029 escaped.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// ReplaceDeletedPrincipal rewrites a policy document so that it no longer
// names a deleted user or role: every "AWS" value of a Principal or
// NotPrincipal that is arn becomes uniqueID, and (for a role) every
// session ARN of that role, sessionPrefix+NAME, becomes uniqueID:NAME. AWS
// shows a deleted principal this way, and it is what keeps a principal
// created later under the same name from inheriting the old one's access.
// sessionPrefix is "" for a user. changed is false when nothing was named;
// the document is then returned as it was. The rewritten document is
// re-encoded (compact JSON, keys in order).
func ReplaceDeletedPrincipal(doc, arn, sessionPrefix, uniqueID string) (out string, changed bool, err error) {
	// No raw-text shortcut: a document may spell the ARN with JSON
	// escapes ("user\/alice", "\u0061lice"), which only decoding sees.
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber() // numbers (condition values) as written
	var top map[string]any
	if err := dec.Decode(&top); err != nil {
		return doc, false, fmt.Errorf("policy: rewrite: %w", err)
	}
	replace := func(v string) (string, bool) {
		if v == arn {
			return uniqueID, true
		}
		if sessionPrefix != "" {
			if session, ok := strings.CutPrefix(v, sessionPrefix); ok && session != "" {
				return uniqueID + ":" + session, true
			}
		}
		return v, false
	}
	var stmts []any
	switch st := top["Statement"].(type) {
	case []any:
		stmts = st
	case map[string]any:
		stmts = []any{st}
	}
	for _, st := range stmts {
		m, _ := st.(map[string]any)
		for _, elem := range []string{"Principal", "NotPrincipal"} {
			p, _ := m[elem].(map[string]any)
			switch v := p["AWS"].(type) {
			case string:
				if r, ok := replace(v); ok {
					p["AWS"], changed = r, true
				}
			case []any:
				for i, x := range v {
					if s, isString := x.(string); isString {
						if r, ok := replace(s); ok {
							v[i], changed = r, true
						}
					}
				}
			}
		}
	}
	if !changed {
		return doc, false, nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(top); err != nil {
		return doc, false, fmt.Errorf("policy: rewrite: %w", err)
	}
	out = strings.TrimSuffix(b.String(), "\n")
	// A rewrite must never turn a working policy into one that fails to
	// parse, which would deny everything for good.
	if _, err := Parse(doc); err == nil {
		if _, err := Parse(out); err != nil {
			return doc, false, fmt.Errorf("policy: rewriting %s out of a policy would leave it invalid: %w", arn, err)
		}
	}
	return out, true, nil
}

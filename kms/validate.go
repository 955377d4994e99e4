package kms

import (
	"fmt"
	"strings"
)

// The helpers below produce AWS's validation messages. Member paths are the
// lowerCamelCase model names ("keyId", "plaintext"), as AWS writes them.

func requireString(member string, v *string, minLen, maxLen int) (string, error) {
	if v == nil {
		return "", validationf("Value null at '%s' failed to satisfy constraint: Member must not be null", member)
	}
	return *v, checkLength(member, *v, minLen, maxLen)
}

func optionalString(member string, v *string, minLen, maxLen int) (string, bool, error) {
	if v == nil {
		return "", false, nil
	}
	return *v, true, checkLength(member, *v, minLen, maxLen)
}

func checkLength(member, v string, minLen, maxLen int) error {
	n := len([]rune(v))
	if n < minLen {
		return validationf("Value '%s' at '%s' failed to satisfy constraint: Member must have length greater than or equal to %d", v, member, minLen)
	}
	if n > maxLen {
		return validationf("Value '%s' at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", truncateForMessage(v), member, maxLen)
	}
	return nil
}

// requireBlob checks a sensitive blob member; AWS leaves sensitive values out
// of the message ("Value at 'plaintext' ...").
func requireBlob(member string, v []byte, minLen, maxLen int) error {
	if v == nil {
		return validationf("Value null at '%s' failed to satisfy constraint: Member must not be null", member)
	}
	if len(v) < minLen {
		return validationf("Value at '%s' failed to satisfy constraint: Member must have length greater than or equal to %d", member, minLen)
	}
	if len(v) > maxLen {
		return validationf("Value at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", member, maxLen)
	}
	return nil
}

func checkRange(member string, v int32, lo, hi int32) error {
	if v < lo {
		return validationf("Value '%d' at '%s' failed to satisfy constraint: Member must have value greater than or equal to %d", v, member, lo)
	}
	if v > hi {
		return validationf("Value '%d' at '%s' failed to satisfy constraint: Member must have value less than or equal to %d", v, member, hi)
	}
	return nil
}

// optionalEnum checks an optional enum member and returns its value or def.
func optionalEnum(member string, v *string, def string, allowed []string) (string, error) {
	if v == nil {
		return def, nil
	}
	for _, a := range allowed {
		if *v == a {
			return a, nil
		}
	}
	return "", validationf("Value '%s' at '%s' failed to satisfy constraint: Member must satisfy enum value set: [%s]", truncateForMessage(*v), member, strings.Join(allowed, ", "))
}

// checkGrantTokens validates the shape of GrantTokens (at most 10, each
// 1..8192 characters); authorization opens them (grants.go).
func checkGrantTokens(tokens []string) error {
	if len(tokens) > 10 {
		return validationf("Value '%v' at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10", len(tokens))
	}
	for i, t := range tokens {
		if err := checkLength(fmt.Sprintf("grantTokens.%d.member", i+1), t, 1, 8192); err != nil {
			return err
		}
	}
	return nil
}

func truncateForMessage(v string) string {
	const max = 256
	r := []rune(v)
	if len(r) > max {
		return string(r[:max]) + "..."
	}
	return v
}

func isTrue(b *bool) bool { return b != nil && *b }

func errDryRun() error {
	return Errorf(CodeDryRun, "The request would have succeeded, but the DryRun option is set.")
}

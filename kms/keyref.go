package kms

import (
	"regexp"
	"strings"
)

// keyIDPattern matches the key ids this service issues: lower-case UUIDs.
var keyIDPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// accountPattern matches a 12-digit AWS account id.
var accountPattern = regexp.MustCompile(`^[0-9]{12}$`)

// refKind says which of the four AWS forms a KeyId value has.
type refKind int

const (
	refKeyID refKind = iota
	refKeyARN
	refAliasName
	refAliasARN
)

// keyRef is a parsed KeyId value.
type keyRef struct {
	raw       string
	kind      refKind
	accountID string // set for ARNs
	keyID     string // set for refKeyID and refKeyARN
	alias     string // "alias/..." for refAliasName and refAliasARN
}

func (r keyRef) isAlias() bool { return r.kind == refAliasName || r.kind == refAliasARN }

// parseKeyRef parses a KeyId in any of the forms AWS accepts: key id, key
// ARN, alias name, alias ARN. An ARN in another region is NotFoundException
// "Invalid arn REGION", as AWS answers; a value in no known form is
// NotFoundException "Invalid keyId '...'".
func (s *Service) parseKeyRef(v string) (keyRef, error) {
	r := keyRef{raw: v}
	switch {
	case strings.HasPrefix(v, "arn:"):
		parts := strings.SplitN(v, ":", 6)
		if len(parts) != 6 || parts[1] != "aws" || parts[2] != "kms" {
			return r, Errorf(CodeNotFound, "Invalid arn %s", v)
		}
		if parts[3] != s.cfg.Region {
			return r, Errorf(CodeNotFound, "Invalid arn %s", parts[3])
		}
		if !accountPattern.MatchString(parts[4]) {
			return r, Errorf(CodeNotFound, "Invalid arn %s", v)
		}
		r.accountID = parts[4]
		resource := parts[5]
		switch {
		case strings.HasPrefix(resource, "key/") && keyIDPattern.MatchString(resource[len("key/"):]):
			r.kind, r.keyID = refKeyARN, resource[len("key/"):]
		case strings.HasPrefix(resource, "alias/") && len(resource) > len("alias/"):
			r.kind, r.alias = refAliasARN, resource
		default:
			return r, Errorf(CodeNotFound, "Invalid arn %s", v)
		}
	case strings.HasPrefix(v, "alias/"):
		if len(v) == len("alias/") {
			return r, Errorf(CodeNotFound, "Invalid keyId '%s'", v)
		}
		r.kind, r.alias = refAliasName, v
	case keyIDPattern.MatchString(v):
		r.kind, r.keyID = refKeyID, v
	default:
		return r, Errorf(CodeNotFound, "Invalid keyId '%s'", v)
	}
	return r, nil
}

// keyARN returns the ARN of a key.
func (s *Service) keyARN(accountID, keyID string) string {
	return "arn:aws:kms:" + s.cfg.Region + ":" + accountID + ":key/" + keyID
}

// aliasARN returns the ARN of an alias; name includes "alias/".
func (s *Service) aliasARN(accountID, name string) string {
	return "arn:aws:kms:" + s.cfg.Region + ":" + accountID + ":" + name
}

package httpapi

// Per-operation request body limits. Every body is read before
// authentication (SigV4 hashes it), so the limit is what any unauthenticated
// client can make the server buffer per request: it is kept small, 64 KiB
// (DefaultMaxBodyBytes), except for the operations that carry a key or
// identity policy. AWS allows a Policy member of up to 131072 characters;
// JSON-escaped (\uXXXX is 6 bytes per character) and with the other members
// that needs up to about 800 KiB.
const PolicyMaxBodyBytes = 1 << 20

// largeBodyTargets are the X-Amz-Target values allowed PolicyMaxBodyBytes.
var largeBodyTargets = map[string]bool{
	targetPrefix + "CreateKey":                 true,
	targetPrefix + "PutKeyPolicy":              true,
	adminTargetPrefix + "AttachIdentityPolicy": true,
}

// bodyLimit is the body limit for a request with the given X-Amz-Target: the
// configured limit, raised to PolicyMaxBodyBytes for the policy operations.
func (s *server) bodyLimit(target string) int64 {
	if largeBodyTargets[target] {
		return max(s.maxBody, PolicyMaxBodyBytes)
	}
	return s.maxBody
}

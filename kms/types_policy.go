package kms

// Request and response shapes of the key-policy and grant operations.

// GetKeyPolicyInput is the GetKeyPolicy request.
type GetKeyPolicyInput struct {
	KeyId      *string `json:"KeyId"`
	PolicyName *string `json:"PolicyName"`
}

// GetKeyPolicyOutput is the GetKeyPolicy response.
type GetKeyPolicyOutput struct {
	Policy     string `json:"Policy"`
	PolicyName string `json:"PolicyName"`
}

// PutKeyPolicyInput is the PutKeyPolicy request.
type PutKeyPolicyInput struct {
	KeyId                          *string `json:"KeyId"`
	PolicyName                     *string `json:"PolicyName"`
	Policy                         *string `json:"Policy"`
	BypassPolicyLockoutSafetyCheck *bool   `json:"BypassPolicyLockoutSafetyCheck"`
}

// ListKeyPoliciesInput is the ListKeyPolicies request.
type ListKeyPoliciesInput struct {
	KeyId  *string `json:"KeyId"`
	Limit  *int32  `json:"Limit"`
	Marker *string `json:"Marker"`
}

// ListKeyPoliciesOutput is the ListKeyPolicies response.
type ListKeyPoliciesOutput struct {
	PolicyNames []string `json:"PolicyNames"`
	NextMarker  string   `json:"NextMarker,omitempty"`
	Truncated   bool     `json:"Truncated"`
}

// GrantConstraints are the encryption-context constraints of a grant. A
// nil map is no constraint; an empty one is a constraint (Equals {} allows
// only an empty encryption context), so it must survive a round trip.
type GrantConstraints struct {
	EncryptionContextEquals map[string]string `json:"EncryptionContextEquals,omitzero"`
	EncryptionContextSubset map[string]string `json:"EncryptionContextSubset,omitzero"`
}

// CreateGrantInput is the CreateGrant request.
type CreateGrantInput struct {
	KeyId             *string           `json:"KeyId"`
	GranteePrincipal  *string           `json:"GranteePrincipal"`
	RetiringPrincipal *string           `json:"RetiringPrincipal"`
	Operations        []string          `json:"Operations"`
	Constraints       *GrantConstraints `json:"Constraints"`
	GrantTokens       []string          `json:"GrantTokens"`
	Name              *string           `json:"Name"`
	DryRun            *bool             `json:"DryRun"`
}

// CreateGrantOutput is the CreateGrant response.
type CreateGrantOutput struct {
	GrantToken string `json:"GrantToken"`
	GrantId    string `json:"GrantId"`
}

// GrantListEntry is one grant in ListGrants and ListRetirableGrants.
type GrantListEntry struct {
	KeyId             string            `json:"KeyId"`
	GrantId           string            `json:"GrantId"`
	Name              string            `json:"Name,omitempty"`
	CreationDate      *Timestamp        `json:"CreationDate,omitempty"`
	GranteePrincipal  string            `json:"GranteePrincipal"`
	RetiringPrincipal string            `json:"RetiringPrincipal,omitempty"`
	IssuingAccount    string            `json:"IssuingAccount"`
	Operations        []string          `json:"Operations"`
	Constraints       *GrantConstraints `json:"Constraints,omitempty"`
}

// ListGrantsInput is the ListGrants request.
type ListGrantsInput struct {
	KeyId            *string `json:"KeyId"`
	Limit            *int32  `json:"Limit"`
	Marker           *string `json:"Marker"`
	GrantId          *string `json:"GrantId"`
	GranteePrincipal *string `json:"GranteePrincipal"`
}

// ListRetirableGrantsInput is the ListRetirableGrants request.
type ListRetirableGrantsInput struct {
	RetiringPrincipal *string `json:"RetiringPrincipal"`
	Limit             *int32  `json:"Limit"`
	Marker            *string `json:"Marker"`
}

// ListGrantsOutput is the ListGrants and ListRetirableGrants response.
type ListGrantsOutput struct {
	Grants     []GrantListEntry `json:"Grants"`
	NextMarker string           `json:"NextMarker,omitempty"`
	Truncated  bool             `json:"Truncated"`
}

// RetireGrantInput is the RetireGrant request.
type RetireGrantInput struct {
	GrantToken *string `json:"GrantToken"`
	KeyId      *string `json:"KeyId"`
	GrantId    *string `json:"GrantId"`
	DryRun     *bool   `json:"DryRun"`
}

// RevokeGrantInput is the RevokeGrant request.
type RevokeGrantInput struct {
	KeyId   *string `json:"KeyId"`
	GrantId *string `json:"GrantId"`
	DryRun  *bool   `json:"DryRun"`
}

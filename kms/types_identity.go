package kms

// Request and response shapes of the admin API (httpapi/admin*.go serves
// them as JSON 1.1 under X-Amz-Target "KmsAdmin.<Operation>") and of
// AssumeRole. Member names follow IAM where IAM has the concept.

// AccountInfo describes an account.
type AccountInfo struct {
	AccountId  string     `json:"AccountId"`
	Name       string     `json:"Name,omitempty"`
	Arn        string     `json:"Arn"` // the account root
	CreateDate *Timestamp `json:"CreateDate,omitempty"`
}

// UserInfo describes an IAM user.
type UserInfo struct {
	AccountId  string     `json:"AccountId"`
	UserName   string     `json:"UserName"`
	UserId     string     `json:"UserId"`
	Arn        string     `json:"Arn"`
	CreateDate *Timestamp `json:"CreateDate,omitempty"`
	Tags       []Tag      `json:"Tags,omitempty"`
}

// RoleInfo describes an IAM role.
type RoleInfo struct {
	AccountId                string     `json:"AccountId"`
	RoleName                 string     `json:"RoleName"`
	RoleId                   string     `json:"RoleId"`
	Arn                      string     `json:"Arn"`
	AssumeRolePolicyDocument string     `json:"AssumeRolePolicyDocument"`
	MaxSessionDuration       int32      `json:"MaxSessionDuration"`
	CreateDate               *Timestamp `json:"CreateDate,omitempty"`
	Tags                     []Tag      `json:"Tags,omitempty"`
}

// AccessKeyInfo describes an access key; SecretAccessKey is set only in the
// answer to CreateAccessKey.
type AccessKeyInfo struct {
	AccessKeyId     string     `json:"AccessKeyId"`
	SecretAccessKey string     `json:"SecretAccessKey,omitempty"`
	Status          string     `json:"Status"` // Active or Inactive
	UserName        string     `json:"UserName"`
	AccountId       string     `json:"AccountId"`
	CreateDate      *Timestamp `json:"CreateDate,omitempty"`
}

// IdentityPolicyInfo is a named identity policy.
type IdentityPolicyInfo struct {
	PolicyName     string `json:"PolicyName"`
	PolicyDocument string `json:"PolicyDocument"`
}

// CreateAccountInput: AccountId is chosen at random when absent.
type CreateAccountInput struct {
	AccountId *string `json:"AccountId,omitempty"`
	Name      *string `json:"Name,omitempty"`
}

type CreateAccountOutput struct {
	Account AccountInfo `json:"Account"`
}

// ListAccountsInput, ListUsersInput and ListRolesInput page like IAM's
// lists: MaxItems (1-1000, default 100) and the Marker of the previous
// page; the output says IsTruncated and gives the next Marker.
type ListAccountsInput struct {
	Marker   *string `json:"Marker,omitempty"`
	MaxItems *int32  `json:"MaxItems,omitempty"`
}

type ListAccountsOutput struct {
	Accounts    []AccountInfo `json:"Accounts"`
	IsTruncated bool          `json:"IsTruncated"`
	Marker      string        `json:"Marker,omitempty"`
}

// CreateUserInput: AccountId defaults to the caller's account (so for
// every operation naming a user or role).
type CreateUserInput struct {
	AccountId *string `json:"AccountId,omitempty"`
	UserName  *string `json:"UserName"`
	Tags      []Tag   `json:"Tags,omitempty"`
}

type CreateUserOutput struct {
	User UserInfo `json:"User"`
}

type DeleteUserInput struct {
	AccountId *string `json:"AccountId,omitempty"`
	UserName  *string `json:"UserName"`
}

type ListUsersInput struct {
	AccountId *string `json:"AccountId,omitempty"`
	Marker    *string `json:"Marker,omitempty"`
	MaxItems  *int32  `json:"MaxItems,omitempty"`
}

type ListUsersOutput struct {
	Users       []UserInfo `json:"Users"`
	IsTruncated bool       `json:"IsTruncated"`
	Marker      string     `json:"Marker,omitempty"`
}

type CreateRoleInput struct {
	AccountId                *string `json:"AccountId,omitempty"`
	RoleName                 *string `json:"RoleName"`
	AssumeRolePolicyDocument *string `json:"AssumeRolePolicyDocument"`
	// MaxSessionDuration in seconds, 3600 to 43200; default 3600.
	MaxSessionDuration *int32 `json:"MaxSessionDuration,omitempty"`
	Tags               []Tag  `json:"Tags,omitempty"`
}

type CreateRoleOutput struct {
	Role RoleInfo `json:"Role"`
}

type DeleteRoleInput struct {
	AccountId *string `json:"AccountId,omitempty"`
	RoleName  *string `json:"RoleName"`
}

type ListRolesInput struct {
	AccountId *string `json:"AccountId,omitempty"`
	Marker    *string `json:"Marker,omitempty"`
	MaxItems  *int32  `json:"MaxItems,omitempty"`
}

type ListRolesOutput struct {
	Roles       []RoleInfo `json:"Roles"`
	IsTruncated bool       `json:"IsTruncated"`
	Marker      string     `json:"Marker,omitempty"`
}

type CreateAccessKeyInput struct {
	AccountId *string `json:"AccountId,omitempty"`
	UserName  *string `json:"UserName"`
}

type CreateAccessKeyOutput struct {
	AccessKey AccessKeyInfo `json:"AccessKey"`
}

type DeleteAccessKeyInput struct {
	AccessKeyId *string `json:"AccessKeyId"`
}

type UpdateAccessKeyInput struct {
	AccessKeyId *string `json:"AccessKeyId"`
	Status      *string `json:"Status"`
}

type ListAccessKeysInput struct {
	AccountId *string `json:"AccountId,omitempty"`
	UserName  *string `json:"UserName"`
}

type ListAccessKeysOutput struct {
	AccessKeyMetadata []AccessKeyInfo `json:"AccessKeyMetadata"`
}

// AttachIdentityPolicyInput attaches (or replaces) a named inline policy,
// like IAM's PutUserPolicy / PutRolePolicy. PrincipalArn is a user or role
// ARN.
type AttachIdentityPolicyInput struct {
	PrincipalArn   *string `json:"PrincipalArn"`
	PolicyName     *string `json:"PolicyName"`
	PolicyDocument *string `json:"PolicyDocument"`
}

type DetachIdentityPolicyInput struct {
	PrincipalArn *string `json:"PrincipalArn"`
	PolicyName   *string `json:"PolicyName"`
}

type ListIdentityPoliciesInput struct {
	PrincipalArn *string `json:"PrincipalArn"`
}

type ListIdentityPoliciesOutput struct {
	Policies []IdentityPolicyInfo `json:"Policies"`
}

type TagPrincipalInput struct {
	PrincipalArn *string `json:"PrincipalArn"`
	Tags         []Tag   `json:"Tags"`
}

type UntagPrincipalInput struct {
	PrincipalArn *string  `json:"PrincipalArn"`
	TagKeys      []string `json:"TagKeys"`
}

// AssumeRoleInput is STS AssumeRole's request (httpapi/sts.go decodes the
// query protocol into it).
type AssumeRoleInput struct {
	RoleArn         string
	RoleSessionName string
	// DurationSeconds is 0 when absent (default 3600).
	DurationSeconds int
}

// AssumeRoleOutput is STS AssumeRole's result.
type AssumeRoleOutput struct {
	AccessKeyId     string
	SecretAccessKey string
	SessionToken    string
	Expiration      Timestamp
	AssumedRoleArn  string
	AssumedRoleId   string // ROLEID:SESSION
}

package kms

import (
	"context"
	"time"
)

// Principal is the authenticated caller of a request.
type Principal struct {
	AccountID string // 12 digits
	// ARN is the caller as policies name it: arn:aws:iam::ACCOUNT:root,
	// arn:aws:iam::ACCOUNT:user/NAME, or for temporary credentials
	// arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION.
	ARN string
	// Type is aws:PrincipalType: "Account" (root), "User" or "AssumedRole".
	Type        string
	AccessKeyID string
	// UserID is aws:userid (a unique id; for assumed roles ROLEID:SESSION).
	UserID string
	// Username is aws:username (users only).
	Username string
	// RoleARN is the IAM role of an assumed-role session; its identity
	// policies are the ones that apply.
	RoleARN string
	// Tags are the principal's tags (aws:PrincipalTag/KEY).
	Tags map[string]string
	// TokenIssueTime is when an assumed-role session's credentials were
	// issued (aws:TokenIssueTime): a Deny on sessions issued before a time
	// is how IAM revokes leaked session credentials. Zero otherwise.
	TokenIssueTime time.Time
}

// Principal types, as aws:PrincipalType reports them.
const (
	PrincipalAccount     = "Account"
	PrincipalUser        = "User"
	PrincipalAssumedRole = "AssumedRole"
)

// PolicyARN returns the ARN whose identity policies apply to the principal:
// the role for an assumed-role session, the principal itself otherwise.
func (p Principal) PolicyARN() string {
	if p.RoleARN != "" {
		return p.RoleARN
	}
	return p.ARN
}

type principalKey struct{}

// WithPrincipal returns a context that carries the authenticated caller.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the caller carried by ctx.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// RequestInfo is what the transport knows about a request that policies can
// test (aws:SourceIp, aws:SecureTransport, aws:RequestedRegion, user agent).
type RequestInfo struct {
	SourceIP        string
	SecureTransport bool
	UserAgent       string
	RequestID       string
	Region          string
}

type requestInfoKey struct{}

// WithRequestInfo returns a context that carries the request's transport facts.
func WithRequestInfo(ctx context.Context, ri RequestInfo) context.Context {
	return context.WithValue(ctx, requestInfoKey{}, ri)
}

// RequestInfoFrom returns the request's transport facts carried by ctx.
func RequestInfoFrom(ctx context.Context) (RequestInfo, bool) {
	ri, ok := ctx.Value(requestInfoKey{}).(RequestInfo)
	return ri, ok
}

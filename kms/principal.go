package kms

import "context"

// Principal is the authenticated caller of a request. Accounts, users and
// roles come with the identity work; today every access key belongs to one
// principal of one account.
type Principal struct {
	AccountID   string // 12 digits
	ARN         string // arn:aws:iam::ACCOUNT:root, user/NAME or role/NAME
	Type        string // "Root", "IAMUser", "AssumedRole"
	AccessKeyID string
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

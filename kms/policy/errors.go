package policy

import "fmt"

// Kind names the AWS error a policy problem becomes. The values are the AWS
// exception names so that the caller can map them one to one (this package
// cannot import kms, which imports it).
type Kind string

const (
	// KindMalformed: the document is not a valid policy
	// (MalformedPolicyDocumentException).
	KindMalformed Kind = "MalformedPolicyDocumentException"
	// KindTooLarge: the document is over the size limit
	// (LimitExceededException).
	KindTooLarge Kind = "LimitExceededException"
)

// Error is every error Parse and CheckSize return. Message is safe to show
// to the client: it only quotes the caller's own document.
type Error struct {
	Kind    Kind
	Message string
}

func (e *Error) Error() string { return string(e.Kind) + ": " + e.Message }

// Is lets callers test the kind with errors.Is(err, policy.ErrMalformed).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Kind == e.Kind
}

// Sentinels for errors.Is; they carry no message.
var (
	ErrMalformed = &Error{Kind: KindMalformed}
	ErrTooLarge  = &Error{Kind: KindTooLarge}
)

func malformed(format string, args ...any) *Error {
	return &Error{Kind: KindMalformed, Message: fmt.Sprintf(format, args...)}
}

// Messages AWS uses verbatim; tests and callers compare against them.
const (
	// MsgInvalidPrincipals is KMS's message for a principal it cannot accept.
	MsgInvalidPrincipals = "Policy contains a statement with one or more invalid principals."
	// MsgLockout is KMS's message when the new key policy would lock the
	// caller out of PutKeyPolicy.
	MsgLockout = "The new key policy will not allow you to update the key policy in the future."
	// MsgPrincipalInIdentityPolicy is IAM's message for a Principal in an
	// identity-based policy.
	MsgPrincipalInIdentityPolicy = "Policy document should not specify a principal."
)

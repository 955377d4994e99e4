package kms

import (
	"errors"
	"fmt"
)

// Code is an AWS KMS error name, sent to clients as the JSON "__type".
// Clients act on these names (SDKs retry ThrottlingException, the Encryption
// SDK reports InvalidCiphertextException), so they follow AWS exactly.
type Code string

// Error codes used by the service. Names follow AWS exactly.
const (
	CodeAlreadyExists        Code = "AlreadyExistsException"
	CodeDependencyTimeout    Code = "DependencyTimeoutException"
	CodeDisabled             Code = "DisabledException"
	CodeDryRun               Code = "DryRunOperationException"
	CodeIncorrectKey         Code = "IncorrectKeyException"
	CodeInvalidAliasName     Code = "InvalidAliasNameException"
	CodeInvalidArn           Code = "InvalidArnException"
	CodeInvalidCiphertext    Code = "InvalidCiphertextException"
	CodeInvalidGrantToken    Code = "InvalidGrantTokenException"
	CodeInvalidGrantId       Code = "InvalidGrantIdException"
	CodeMalformedPolicy      Code = "MalformedPolicyDocumentException"
	CodeInvalidKeyUsage      Code = "InvalidKeyUsageException"
	CodeInvalidMarker        Code = "InvalidMarkerException"
	CodeKeyUnavailable       Code = "KeyUnavailableException"
	CodeInternal             Code = "KMSInternalException"
	CodeInvalidState         Code = "KMSInvalidStateException"
	CodeLimitExceeded        Code = "LimitExceededException"
	CodeNotFound             Code = "NotFoundException"
	CodeTag                  Code = "TagException"
	CodeUnsupportedOperation Code = "UnsupportedOperationException"
	CodeValidation           Code = "ValidationException"
	CodeAccessDenied         Code = "AccessDeniedException"
	CodeThrottling           Code = "ThrottlingException"
	// CodeDeleteConflict is IAM's DeleteConflict, for the admin API: a
	// user or role still has access keys or policies.
	CodeDeleteConflict Code = "DeleteConflictException"

	// Authentication failures, detected in httpapi but named here so that
	// there is one list of codes and one mapping to HTTP.
	CodeMissingAuthenticationToken Code = "MissingAuthenticationTokenException"
	CodeIncompleteSignature        Code = "IncompleteSignatureException"
	CodeInvalidSignature           Code = "InvalidSignatureException"
	CodeUnrecognizedClient         Code = "UnrecognizedClientException"
	CodeExpiredToken               Code = "ExpiredTokenException"

	// Protocol-level failures.
	CodeSerialization    Code = "SerializationException"
	CodeUnknownOperation Code = "UnknownOperationException"
)

// ServerFault reports whether the error is the service's fault rather than
// the caller's; such errors are sent with a 5xx status so SDKs retry them.
func (c Code) ServerFault() bool {
	switch c {
	case CodeInternal, CodeKeyUnavailable, CodeDependencyTimeout:
		return true
	}
	return false
}

// Error is the one error type the service returns to its callers. Message is
// safe to show to the client; Cause is for logs only.
type Error struct {
	Code    Code
	Message string
	Cause   error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Cause)
	}
	if e.Message == "" {
		return string(e.Code)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Cause }

// Errorf returns an *Error with a formatted client-visible message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Internal wraps an unexpected failure. The client sees a generic message; the
// cause is kept for the log line that carries the request id.
func Internal(cause error) *Error {
	return &Error{Code: CodeInternal, Message: "The request failed due to an internal error.", Cause: cause}
}

// AsError converts any error into an *Error: an *Error anywhere in the chain
// is returned as is, anything else becomes KMSInternalException.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Internal(err)
}

// validationf builds the AWS "1 validation error detected" message.
func validationf(format string, args ...any) *Error {
	return &Error{Code: CodeValidation, Message: "1 validation error detected: " + fmt.Sprintf(format, args...)}
}

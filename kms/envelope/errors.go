package envelope

import (
	"errors"
	"fmt"

	"hsmkms/kms/envelope/format"
)

// Kind says what failed. Callers test with errors.Is against the Err*
// sentinels below, e.g. errors.Is(err, envelope.ErrBadSignature).
type Kind int

// The kinds of failure.
const (
	_ Kind = iota
	// KindWrongKey: no keyring could decrypt any encrypted data key (the
	// wrong KMS key, no permission, a data key or encryption context that
	// KMS refuses, a discovery filter that excludes every key).
	KindWrongKey
	// KindTamperedHeader: the header does not authenticate or its key
	// commitment does not match the data key.
	KindTamperedHeader
	// KindTamperedBody: a frame (or the non-framed block) does not
	// authenticate, or the frames are out of order.
	KindTamperedBody
	// KindBadSignature: the footer signature does not verify.
	KindBadSignature
	// KindTruncated: the stream ended before the message did.
	KindTruncated
	// KindMalformed: the bytes are not an ESDK message.
	KindMalformed
	// KindUnsupported: a well-formed message this library does not accept
	// (unknown suite, a suite the commitment policy forbids, limits).
	KindUnsupported
	// KindEncryptionContext: the message's encryption context does not
	// contain the pairs the caller required, or a caller's context uses
	// the reserved "aws-crypto-" prefix.
	KindEncryptionContext
	// KindKMS: a KMS call failed on encrypt (the cause is wrapped).
	KindKMS
	// KindInvalidArgument: the caller's options are invalid.
	KindInvalidArgument
)

var kindNames = map[Kind]string{
	KindWrongKey:          "unable to decrypt any data key (wrong key?)",
	KindTamperedHeader:    "header authentication failed (tampered header?)",
	KindTamperedBody:      "body authentication failed (tampered body?)",
	KindBadSignature:      "signature verification failed",
	KindTruncated:         "truncated message",
	KindMalformed:         "malformed message",
	KindUnsupported:       "unsupported message",
	KindEncryptionContext: "encryption context mismatch",
	KindKMS:               "KMS call failed",
	KindInvalidArgument:   "invalid argument",
}

func (k Kind) String() string { return kindNames[k] }

// Error is every error this package returns for a cryptographic or format
// failure. Its message never contains plaintext or key material.
type Error struct {
	Kind   Kind
	Detail string // what exactly, e.g. "frame 3"
	Err    error  // the cause, if any
}

func (e *Error) Error() string {
	s := "envelope: " + e.Kind.String()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches a sentinel of the same Kind (a sentinel has no Detail/Err).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind && t.Detail == "" && t.Err == nil
}

// Sentinels for errors.Is.
var (
	ErrWrongKey          = &Error{Kind: KindWrongKey}
	ErrTamperedHeader    = &Error{Kind: KindTamperedHeader}
	ErrTamperedBody      = &Error{Kind: KindTamperedBody}
	ErrBadSignature      = &Error{Kind: KindBadSignature}
	ErrTruncated         = &Error{Kind: KindTruncated}
	ErrMalformed         = &Error{Kind: KindMalformed}
	ErrUnsupported       = &Error{Kind: KindUnsupported}
	ErrEncryptionContext = &Error{Kind: KindEncryptionContext}
	ErrKMS               = &Error{Kind: KindKMS}
	ErrInvalidArgument   = &Error{Kind: KindInvalidArgument}
)

func newErr(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Detail: fmt.Sprintf(format, args...)}
}

// formatErr maps an error of the format package to an *Error; other errors
// (I/O, context) pass through unchanged.
func formatErr(err error) error {
	var e *Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e):
		return err
	case errors.Is(err, format.ErrTruncated):
		return &Error{Kind: KindTruncated, Detail: err.Error()}
	case errors.Is(err, format.ErrFrameOrder):
		return &Error{Kind: KindTamperedBody, Detail: err.Error()}
	case errors.Is(err, format.ErrMalformed):
		return &Error{Kind: KindMalformed, Detail: err.Error()}
	case errors.Is(err, format.ErrUnsupported):
		return &Error{Kind: KindUnsupported, Detail: err.Error()}
	}
	return err
}

package sigv4

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"hsmkms/kms"
)

// MaxSkew is how far the request time may be from the server's clock, as in
// AWS.
const MaxSkew = 15 * time.Minute

// amzDateLayout is the ISO 8601 basic format of X-Amz-Date.
const amzDateLayout = "20060102T150405Z"

// AWS's wording for the common failures; clients and people search for these.
const (
	msgMissingToken     = "Missing Authentication Token"
	msgInvalidToken     = "The security token included in the request is invalid."
	msgExpiredToken     = "The security token included in the request is expired"
	msgSignatureInvalid = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)

// KeySource finds the access key that signed a request. Unknown ids return
// an error wrapping kms.ErrStoreNotFound.
type KeySource interface {
	LookupAccessKey(ctx context.Context, id string) (kms.AccessKey, error)
}

// Verifier checks SigV4 signatures for one region and service.
type Verifier struct {
	Region  string // the only region a credential scope may name
	Service string // the signing name, "kms"
	Keys    KeySource
	Now     func() time.Time // defaults to time.Now
}

// Result is what verification learned. Authorization is set as soon as the
// header parsed (so failures can be logged with the claimed access key id);
// Key only when the signature is valid.
type Result struct {
	Authorization Authorization
	Key           kms.AccessKey
}

// Verify authenticates r, whose complete body is body. It returns the
// signing access key, or a *kms.Error with AWS's code and message.
func (v *Verifier) Verify(ctx context.Context, r *http.Request, body []byte) (Result, error) {
	var res Result
	header := r.Header.Get("Authorization")
	if header == "" {
		return res, &kms.Error{Code: kms.CodeMissingAuthenticationToken, Message: msgMissingToken}
	}
	if len(r.Header.Values("Authorization")) > 1 {
		// Two headers would leave it open which one was checked.
		return res, incomplete("Only one Authorization header is allowed.")
	}
	auth, err := ParseAuthorization(header)
	if err != nil {
		return res, err
	}
	res.Authorization = auth

	amzDate, signedAt, err := requestTime(r)
	if err != nil {
		return res, err
	}
	if !slices.Contains(auth.SignedHeaders, "host") {
		return res, incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	if err := checkSignedHeaders(r, auth.SignedHeaders); err != nil { // signedheaders.go
		return res, err
	}
	if err := v.checkScope(auth, amzDate); err != nil {
		return res, err
	}
	if err := v.checkSkew(amzDate, signedAt); err != nil {
		return res, err
	}

	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	if claimed := r.Header.Get("X-Amz-Content-Sha256"); claimed != "" && claimed != payloadHash {
		return res, &kms.Error{Code: kms.CodeInvalidSignature, Message: "The provided 'x-amz-content-sha256' header does not match what was computed."}
	}

	key, err := v.lookup(ctx, auth.AccessKeyID)
	if err != nil {
		return res, err
	}
	if err := v.checkSessionToken(r, key); err != nil {
		return res, err
	}
	canonical, err := canonicalRequest(r, auth.SignedHeaders, payloadHash)
	if err != nil {
		return res, &kms.Error{Code: kms.CodeInvalidSignature, Message: msgSignatureInvalid, Cause: err}
	}
	want := hmacSHA256(signingKey(key.Secret, auth.Date, auth.Region, auth.Service), stringToSign(amzDate, auth.Scope(), canonical))
	got, err := hex.DecodeString(auth.Signature)
	if err != nil || !hmac.Equal(want, got) {
		return res, &kms.Error{Code: kms.CodeInvalidSignature, Message: msgSignatureInvalid}
	}
	res.Key = key
	return res, nil
}

// requestTime returns the request time as X-Amz-Date spells it (the form
// the string to sign uses) and as a time. X-Amz-Date wins over Date.
func requestTime(r *http.Request) (string, time.Time, error) {
	if s := r.Header.Get("X-Amz-Date"); s != "" {
		t, err := time.Parse(amzDateLayout, s)
		if err != nil {
			return "", time.Time{}, incomplete("X-Amz-Date must be in the ISO 8601 basic format yyyyMMdd'T'HHmmss'Z'.")
		}
		return s, t, nil
	}
	if s := r.Header.Get("Date"); s != "" {
		t, err := http.ParseTime(s)
		if err != nil {
			return "", time.Time{}, incomplete("Date must be an HTTP date.")
		}
		t = t.UTC()
		return t.Format(amzDateLayout), t, nil
	}
	return "", time.Time{}, incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
}

func (v *Verifier) checkScope(auth Authorization, amzDate string) error {
	if auth.Service != v.Service {
		return &kms.Error{Code: kms.CodeInvalidSignature, Message: "Credential should be scoped to correct service: '" + v.Service + "'. "}
	}
	if auth.Region != v.Region {
		return &kms.Error{Code: kms.CodeInvalidSignature, Message: "Credential should be scoped to a valid region, not '" + auth.Region + "'. "}
	}
	if day := amzDate[:len(scopeDateLayout)]; auth.Date != day {
		return &kms.Error{Code: kms.CodeInvalidSignature, Message: fmt.Sprintf(
			"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			auth.Date, day, amzDate)}
	}
	return nil
}

func (v *Verifier) checkSkew(amzDate string, signedAt time.Time) error {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	t := now().UTC()
	switch {
	case signedAt.Before(t.Add(-MaxSkew)):
		return &kms.Error{Code: kms.CodeInvalidSignature, Message: fmt.Sprintf(
			"Signature expired: %s is now earlier than %s (%s - 15 min.)",
			amzDate, t.Add(-MaxSkew).Format(amzDateLayout), t.Format(amzDateLayout))}
	case signedAt.After(t.Add(MaxSkew)):
		return &kms.Error{Code: kms.CodeInvalidSignature, Message: fmt.Sprintf(
			"Signature not yet current: %s is still later than %s (%s + 15 min.)",
			amzDate, t.Add(MaxSkew).Format(amzDateLayout), t.Format(amzDateLayout))}
	}
	return nil
}

// checkSessionToken requires X-Amz-Security-Token exactly for temporary
// credentials, and the right one: a missing, unexpected or wrong token is
// the answer AWS gives for an unknown token, an expired session is
// ExpiredTokenException. The token is compared by hash in constant time
// (kms.AccessKey.SessionTokenMatches).
func (v *Verifier) checkSessionToken(r *http.Request, key kms.AccessKey) error {
	tokens := r.Header.Values("X-Amz-Security-Token")
	temporary := len(key.SessionTokenHash) > 0
	switch {
	case len(tokens) == 0 && !temporary:
		return nil
	case len(tokens) != 1 || !temporary || !key.SessionTokenMatches(tokens[0]):
		return &kms.Error{Code: kms.CodeUnrecognizedClient, Message: msgInvalidToken}
	}
	if !v.now().Before(key.Expiration) {
		return &kms.Error{Code: kms.CodeExpiredToken, Message: msgExpiredToken}
	}
	return nil
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// lookup maps "no such key" and "inactive key" to the answer AWS gives for
// an unknown access key id; other failures (the store is down) stay what
// they are, so the client sees a server fault and retries.
func (v *Verifier) lookup(ctx context.Context, id string) (kms.AccessKey, error) {
	key, err := v.Keys.LookupAccessKey(ctx, id)
	if errors.Is(err, kms.ErrStoreNotFound) || (err == nil && !key.Active) {
		return kms.AccessKey{}, &kms.Error{Code: kms.CodeUnrecognizedClient, Message: msgInvalidToken}
	}
	if err != nil {
		return kms.AccessKey{}, kms.AsError(err)
	}
	return key, nil
}

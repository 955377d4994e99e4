package sigv4

import (
	"net/http"
	"slices"
	"strings"
)

// checkSignedHeaders requires the signature to cover every header that
// selects or changes what the request does. Requiring only Host let a body
// captured from one signed request (a logging proxy, a trace) be replayed
// under another X-Amz-Target: DescribeKey's {"KeyId":...} is also a valid
// DisableKey or ScheduleKeyDeletion body.
//
// Required when present: Content-Type (it selects the protocol: JSON or the
// STS query form), and every X-Amz-* header (X-Amz-Target, X-Amz-Date,
// X-Amz-Security-Token...). X-Amz-Content-Sha256 is exempt because Verify
// checks it against the body itself. When the time comes from Date rather
// than X-Amz-Date, Date must be signed, or a captured signature would never
// age. Both botocore and the AWS SDK for Go v2 sign all of these (botocore
// signs every header but User-Agent, Expect, Transfer-Encoding and
// X-Amzn-Trace-Id).
func checkSignedHeaders(r *http.Request, signed []string) error {
	need := func(name string) error {
		if slices.Contains(signed, strings.ToLower(name)) {
			return nil
		}
		return incomplete("'" + name + "' must be a 'SignedHeader' in the AWS Authorization.")
	}
	if r.Header.Get("Content-Type") != "" {
		if err := need("Content-Type"); err != nil {
			return err
		}
	}
	if r.Header.Get("X-Amz-Date") == "" && r.Header.Get("Date") != "" {
		if err := need("Date"); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(r.Header))
	for name := range r.Header {
		names = append(names, name)
	}
	slices.Sort(names) // the first missing header reported is deterministic
	for _, name := range names {
		lower := strings.ToLower(name)
		if !strings.HasPrefix(lower, "x-amz-") || lower == "x-amz-content-sha256" {
			continue
		}
		if err := need(http.CanonicalHeaderKey(name)); err != nil {
			return err
		}
	}
	return nil
}

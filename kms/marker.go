package kms

import (
	"encoding/base64"
	"strings"
)

// Pagination markers are opaque to clients. They carry the sort key of the
// last item returned, behind a prefix so that a marker from elsewhere is
// recognised as invalid rather than silently restarting the listing.
const markerPrefix = "m1:"

func encodeMarker(last string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(markerPrefix + last))
}

func decodeMarker(m string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(m)
	if err != nil || !strings.HasPrefix(string(b), markerPrefix) || len(b) == len(markerPrefix) {
		return "", Errorf(CodeInvalidMarker, "The marker %q is not valid.", truncateForMessage(m))
	}
	return string(b[len(markerPrefix):]), nil
}

// pageParams validates Limit (1..max, default def) and Marker of a list
// operation and returns the limit and the sort key to continue after.
func pageParams(limit *int32, marker *string, max, def int32) (int, string, error) {
	return pageParamsOf("limit", limit, marker, max, def)
}

// pageParamsOf is pageParams for a limit member with another name (IAM's
// lists call it MaxItems).
func pageParamsOf(member string, limit *int32, marker *string, max, def int32) (int, string, error) {
	n := def
	if limit != nil {
		n = *limit
		if err := checkRange(member, n, 1, max); err != nil {
			return 0, "", err
		}
	}
	after := ""
	if marker != nil {
		if err := checkLength("marker", *marker, 1, 1024); err != nil {
			return 0, "", err
		}
		var err error
		if after, err = decodeMarker(*marker); err != nil {
			return 0, "", err
		}
	}
	return int(n), after, nil
}

package sigv4

import (
	"reflect"
	"strings"
	"testing"

	"hsmkms/kms"
)

const validHeader = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261126/us-east-1/kms/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" +
	"5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"

func TestParseAuthorization(t *testing.T) {
	t.Parallel()
	want := Authorization{
		AccessKeyID:   "AKIDEXAMPLE",
		Date:          "20261126",
		Region:        "us-east-1",
		Service:       "kms",
		SignedHeaders: []string{"content-type", "host", "x-amz-date", "x-amz-target"},
		Signature:     "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
	}
	for _, h := range []string{
		validHeader,
		strings.ReplaceAll(validHeader, ", ", ","),    // no spaces
		strings.ReplaceAll(validHeader, ", ", " ,  "), // extra spaces
		// parameters in another order
		"AWS4-HMAC-SHA256 Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Credential=AKIDEXAMPLE/20261126/us-east-1/kms/aws4_request",
	} {
		got, err := ParseAuthorization(h)
		if err != nil {
			t.Fatalf("ParseAuthorization(%q): %v", h, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ParseAuthorization(%q) = %+v, want %+v", h, got, want)
		}
	}
	if got := want.String(); got != validHeader {
		t.Errorf("String() = %q, want %q", got, validHeader)
	}
}

// malformedHeaders are Authorization values the parser must refuse; they
// also seed the fuzz test.
var malformedHeaders = map[string]string{
	"empty":                  "",
	"algorithm only":         "AWS4-HMAC-SHA256",
	"algorithm and space":    "AWS4-HMAC-SHA256 ",
	"sigv2":                  "AWS AKIDEXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
	"sigv4a":                 "AWS4-ECDSA-P256-SHA256 Credential=AKIDEXAMPLE/20261126/kms/aws4_request, SignedHeaders=host, Signature=00",
	"lower-case algorithm":   strings.Replace(validHeader, "AWS4-HMAC-SHA256", "aws4-hmac-sha256", 1),
	"missing credential":     "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=" + strings.Repeat("a", 64),
	"missing signed headers": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261126/us-east-1/kms/aws4_request, Signature=" + strings.Repeat("a", 64),
	"missing signature":      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261126/us-east-1/kms/aws4_request, SignedHeaders=host",
	"empty signature":        strings.Replace(validHeader, "Signature=5d", "Signature=", 1)[:strings.Index(validHeader, "Signature=")+len("Signature=")],
	"short signature":        validHeader[:len(validHeader)-2],
	"long signature":         validHeader + "00",
	"upper-case signature":   strings.ToUpper(validHeader[:0]) + validHeader[:len(validHeader)-64] + strings.ToUpper(validHeader[len(validHeader)-64:]),
	"non-hex signature":      validHeader[:len(validHeader)-1] + "g",
	"repeated parameter":     validHeader + ", Signature=" + strings.Repeat("a", 64),
	"unknown parameter":      validHeader + ", Foo=bar",
	"no equals":              "AWS4-HMAC-SHA256 Credential",
	"four credential parts":  strings.Replace(validHeader, "/us-east-1", "", 1),
	"six credential parts":   strings.Replace(validHeader, "/kms/", "/kms/x/", 1),
	"bad terminator":         strings.Replace(validHeader, "aws4_request", "aws4_reqest", 1),
	"bad scope date":         strings.Replace(validHeader, "20261126", "2026-11-26", 1),
	"impossible scope date":  strings.Replace(validHeader, "20261126", "20261356", 1),
	"empty access key":       strings.Replace(validHeader, "AKIDEXAMPLE", "", 1),
	"empty region":           strings.Replace(validHeader, "us-east-1", "", 1),
	"upper-case header name": strings.Replace(validHeader, "content-type", "Content-Type", 1),
	"unsorted headers":       strings.Replace(validHeader, "content-type;host", "host;content-type", 1),
	"repeated header":        strings.Replace(validHeader, "content-type;host", "host;host", 1),
	"empty header name":      strings.Replace(validHeader, "content-type;host", ";host", 1),
	"trailing comma":         validHeader + ",",
	"tab separated":          strings.Replace(validHeader, "AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA256\t", 1),
}

func TestParseAuthorizationRejectsMalformed(t *testing.T) {
	t.Parallel()
	for name, h := range malformedHeaders {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseAuthorization(h)
			assertError(t, err, kms.CodeIncompleteSignature, "", "")
		})
	}
}

func TestParseAuthorizationNamesMissingParameters(t *testing.T) {
	t.Parallel()
	_, err := ParseAuthorization("AWS4-HMAC-SHA256 ")
	assertError(t, err, kms.CodeIncompleteSignature,
		"Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter.", "")
}

// FuzzParseAuthorization: any input either parses or fails with
// IncompleteSignatureException, never panics; whatever parses formats back
// to a header that parses to the same value.
func FuzzParseAuthorization(f *testing.F) {
	f.Add(validHeader)
	for _, h := range malformedHeaders {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, header string) {
		a, err := ParseAuthorization(header)
		if err != nil {
			assertError(t, err, kms.CodeIncompleteSignature, "", "")
			return
		}
		again, err := ParseAuthorization(a.String())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", a.String(), err)
		}
		if !reflect.DeepEqual(a, again) {
			t.Fatalf("round trip: %+v != %+v", a, again)
		}
	})
}

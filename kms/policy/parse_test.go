package policy

import (
	"errors"
	"strings"
	"testing"
)

// The exact text AWS returns for the default key policy (reference, 5.1).
const awsDefaultPolicy111122223333 = "{\n" +
	"  \"Version\" : \"2012-10-17\",\n" +
	"  \"Id\" : \"key-default-1\",\n" +
	"  \"Statement\" : [ {\n" +
	"    \"Sid\" : \"Enable IAM User Permissions\",\n" +
	"    \"Effect\" : \"Allow\",\n" +
	"    \"Principal\" : {\n" +
	"      \"AWS\" : \"arn:aws:iam::111122223333:root\"\n" +
	"    },\n" +
	"    \"Action\" : \"kms:*\",\n" +
	"    \"Resource\" : \"*\"\n" +
	"  } ]\n" +
	"}"

func TestDefaultKeyPolicy(t *testing.T) {
	t.Parallel()
	got := DefaultKeyPolicy("111122223333")
	if got != awsDefaultPolicy111122223333 {
		t.Fatalf("default policy differs from AWS:\n%s\nwant:\n%s", got, awsDefaultPolicy111122223333)
	}
	p, err := Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if p.Version() != Version2012 || p.ID() != "key-default-1" || p.Len() != 1 || p.Doc() != got {
		t.Fatalf("parsed: version %q id %q len %d", p.Version(), p.ID(), p.Len())
	}
	if ps := p.Principals(); len(ps) != 1 || ps[0] != "arn:aws:iam::111122223333:root" {
		t.Fatalf("Principals = %v", ps)
	}
	r := p.Evaluate(&Request{Principal: alice, Action: "kms:Encrypt", Resource: keyARN})
	if r.Effect != Allow || !r.Delegated || r.Sid != "Enable IAM User Permissions" {
		t.Fatalf("got %+v", r)
	}
}

func TestParseAccepts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, doc string }{
		{"single statement object", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}}`},
		{"no version", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}`},
		{"2008 version", `{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}`},
		{"elements in any order", `{"Statement":[{"Resource":"*","Action":"kms:*","Principal":"*","Effect":"Deny","Sid":"x"}],"Id":"i","Version":"2012-10-17"}`},
		{"no Action is accepted in a key policy", `{"Statement":[{"Effect":"Allow","Principal":"*","Resource":"*"}]}`},
		{"no Resource is accepted in a key policy", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:Encrypt"}]}`},
		{"other principal types are kept", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"logs.amazonaws.com","Federated":"cognito-identity.amazonaws.com","CanonicalUser":"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"},"Action":"kms:*","Resource":"*"}]}`},
		{"principal forms", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":["111122223333","arn:aws:iam::111122223333:root","arn:aws:iam::111122223333:user/a/b/c","arn:aws:iam::111122223333:role/r","arn:aws:sts::111122223333:assumed-role/r/s","arn:aws-cn:iam::111122223333:user/x","arn:aws:sts::111122223333:federated-user/f"]},"Action":"kms:*","Resource":"*"}]}`},
		{"condition values of all JSON scalar types", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:a":["x",1,true]},"Bool":{"aws:SecureTransport":true},"NumericLessThan":{"kms:RotationPeriodInDays":1.5e2}}}]}`},
		{"every operator", allOperatorsDoc()},
		{"whitespace around", " \n\t{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"*\"}}\n "},
		{"NotPrincipal with Allow", `{"Statement":[{"Effect":"Allow","NotPrincipal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}]}`},
		{"empty Statement list", `{"Version":"2012-10-17","Statement":[]}`},
		{"empty Sid repeated", `{"Statement":[{"Sid":"","Effect":"Allow","Principal":"*","Action":"*","Resource":"*"},{"Sid":"","Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := Parse(tc.doc); err != nil {
				t.Fatalf("Parse: %v", err)
			}
		})
	}
}

func allOperatorsDoc() string {
	var conds []string
	for name, info := range operators {
		v := `"x"`
		switch info.family {
		case fNumeric:
			v = `"1"`
		case fDate:
			v = `"2024-01-01T00:00:00Z"`
		case fBool, fNull:
			v = `"true"`
		case fIP:
			v = `"10.0.0.0/8"`
		case fARN:
			v = `"arn:aws:iam::*:*"`
		}
		for _, n := range []string{name, "ForAnyValue:" + name, "ForAllValues:" + name} {
			conds = append(conds, `"`+n+`":{"aws:k":`+v+`}`)
			if info.family != fNull {
				conds = append(conds, `"`+n+`IfExists":{"aws:k":`+v+`}`)
			}
		}
	}
	return `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{` + strings.Join(conds, ",") + `}}]}`
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	const okStmt = `"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"`
	wrap := func(elems string) string { return `{"Version":"2012-10-17","Statement":[{` + elems + `}]}` }
	for _, tc := range []struct {
		name, doc string
		identity  bool
		want      string // exact message
	}{
		{"empty document", "", false, "The policy document is empty."},
		{"not JSON", "Version: 2012", false, "Policy contains invalid JSON: invalid character 'V' looking for beginning of value."},
		{"truncated JSON", `{"Statement":[`, false, "Policy contains invalid JSON: unexpected end of document."},
		{"trailing data", `{"Statement":{` + okStmt + `}} {}`, false, "Policy contains invalid JSON: unexpected data after the policy document."},
		{"top-level array", `[]`, false, "The policy document must be a JSON object, not an array."},
		{"unknown top-level element", `{"Statement":{` + okStmt + `},"Foo":1}`, false, `Policy contains an unknown element "Foo"; the policy elements are Version, Id and Statement.`},
		{"element names are case-sensitive", `{"statement":{` + okStmt + `}}`, false, `Policy contains an unknown element "statement"; the policy elements are Version, Id and Statement.`},
		{"duplicate element", `{"Statement":{` + okStmt + `,"Effect":"Deny"}}`, false, `Policy contains a duplicate "Effect" element.`},
		{"bad version", `{"Version":"2012-10-18","Statement":{` + okStmt + `}}`, false, `The policy Version must be "2012-10-17" or "2008-10-17".`},
		{"version not a string", `{"Version":2012,"Statement":{` + okStmt + `}}`, false, `The policy Version must be "2012-10-17" or "2008-10-17".`},
		{"Id not a string", `{"Id":1,"Statement":{` + okStmt + `}}`, false, "The policy Id must be a string."},
		{"no Statement", `{"Version":"2012-10-17"}`, false, "The policy document has no Statement element."},
		{"Statement is a string", `{"Statement":"x"}`, false, "The Statement element must be an object or a list of objects, not a string."},
		{"statement is not an object", `{"Statement":[1]}`, false, "The statement 1 must be an object, not a number."},
		{"unknown statement element", wrap(okStmt + `,"Actions":"kms:*"`), false, `Policy statement 1 contains an unknown element "Actions".`},
		{"unknown element names the Sid", wrap(`"Sid":"S1",` + okStmt + `,"Foo":1`), false, `Policy statement 1 (Sid "S1") contains an unknown element "Foo".`},
		{"missing Effect", wrap(`"Principal":"*","Action":"kms:*","Resource":"*"`), false, "Missing required field Effect in statement 1."},
		{"bad Effect", wrap(`"Effect":"allow","Principal":"*","Action":"kms:*","Resource":"*"`), false, `The Effect of statement 1 must be "Allow" or "Deny".`},
		{"Action and NotAction", wrap(okStmt + `,"NotAction":"kms:Decrypt"`), false, "Policy statement 1 contains both Action and NotAction."},
		{"Resource and NotResource", wrap(okStmt + `,"NotResource":"*"`), false, "Policy statement 1 contains both Resource and NotResource."},
		{"Principal and NotPrincipal", wrap(okStmt + `,"NotPrincipal":"*"`), false, "Policy statement 1 contains both Principal and NotPrincipal."},
		{"key policy statement without Principal", wrap(`"Effect":"Allow","Action":"kms:*","Resource":"*"`), false, "Policy statement 1 has no Principal or NotPrincipal; every key policy statement must name a principal."},
		{"identity policy with Principal", wrap(okStmt), true, MsgPrincipalInIdentityPolicy},
		{"identity policy with NotPrincipal", wrap(`"Effect":"Deny","NotPrincipal":"*","Action":"kms:*","Resource":"*"`), true, MsgPrincipalInIdentityPolicy},
		{"identity policy without Action", wrap(`"Effect":"Allow","Resource":"*"`), true, "Policy statement must contain actions (statement 1)."},
		{"identity policy without Resource", wrap(`"Effect":"Allow","Action":"kms:*"`), true, "Policy statement must contain resources (statement 1)."},
		{"action without vendor", wrap(`"Effect":"Allow","Principal":"*","Action":"Encrypt","Resource":"*"`), false, `Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.; "Encrypt" in statement 1 is not.`},
		{"empty action list", wrap(`"Effect":"Allow","Principal":"*","Action":[],"Resource":"*"`), false, "The Action element of statement 1 is an empty list."},
		{"empty action", wrap(`"Effect":"Allow","Principal":"*","Action":"","Resource":"*"`), false, "The Action element of statement 1 contains an empty string."},
		{"action not a string", wrap(`"Effect":"Allow","Principal":"*","Action":[1],"Resource":"*"`), false, "The Action element of statement 1 must contain only strings, not a number."},
		{"resource not an ARN", wrap(`"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"mykey"`), false, `Resource "mykey" in statement 1 must be "*" or an ARN.`},
		{"principal partial wildcard", wrap(`"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/*"},"Action":"kms:*","Resource":"*"`), false, MsgInvalidPrincipals},
		{"principal bad account", wrap(`"Effect":"Allow","Principal":{"AWS":"11112222333"},"Action":"kms:*","Resource":"*"`), false, MsgInvalidPrincipals},
		{"principal not iam", wrap(`"Effect":"Allow","Principal":{"AWS":"arn:aws:s3:::bucket"},"Action":"kms:*","Resource":"*"`), false, MsgInvalidPrincipals},
		{"principal unknown type", wrap(`"Effect":"Allow","Principal":{"Users":"x"},"Action":"kms:*","Resource":"*"`), false, MsgInvalidPrincipals},
		{"principal string other than star", wrap(`"Effect":"Allow","Principal":"111122223333","Action":"kms:*","Resource":"*"`), false, MsgInvalidPrincipals},
		{"principal empty object", wrap(`"Effect":"Allow","Principal":{},"Action":"kms:*","Resource":"*"`), false, MsgInvalidPrincipals},
		{"principal role with empty name", wrap(`"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/"},"Action":"kms:*","Resource":"*"`), false, MsgInvalidPrincipals},
		{"unknown condition operator", wrap(okStmt + `,"Condition":{"StringEqualz":{"aws:k":"v"}}`), false, `Policy statement 1 contains an unknown condition operator "StringEqualz".`},
		{"operator names are case-sensitive", wrap(okStmt + `,"Condition":{"stringequals":{"aws:k":"v"}}`), false, `Policy statement 1 contains an unknown condition operator "stringequals".`},
		{"Null has no IfExists", wrap(okStmt + `,"Condition":{"NullIfExists":{"aws:k":"true"}}`), false, `Policy statement 1 contains an unknown condition operator "NullIfExists".`},
		{"unknown set qualifier", wrap(okStmt + `,"Condition":{"ForSomeValues:StringEquals":{"aws:k":"v"}}`), false, `Policy statement 1 contains an unknown condition operator "ForSomeValues:StringEquals".`},
		{"condition not an object", wrap(okStmt + `,"Condition":[]`), false, "The Condition element of statement 1 must be an object."},
		{"operator without keys", wrap(okStmt + `,"Condition":{"StringEquals":{}}`), false, "Condition operator StringEquals in statement 1 must map condition keys to values."},
		{"condition key without vendor", wrap(okStmt + `,"Condition":{"StringEquals":{"SourceIp":"v"}}`), false, `Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.; condition key "SourceIp" in statement 1 is not.`},
		{"empty value list", wrap(okStmt + `,"Condition":{"StringEquals":{"aws:k":[]}}`), false, `Condition StringEquals "aws:k" in statement 1: the list of values is empty.`},
		{"null value", wrap(okStmt + `,"Condition":{"StringEquals":{"aws:k":null}}`), false, `Condition StringEquals "aws:k" in statement 1: values must be strings, numbers or Booleans, not null.`},
		{"object value", wrap(okStmt + `,"Condition":{"StringEquals":{"aws:k":{"a":"b"}}}`), false, `Condition StringEquals "aws:k" in statement 1: values must be strings, numbers or Booleans, not an object.`},
		{"numeric value not a number", wrap(okStmt + `,"Condition":{"NumericLessThan":{"kms:RotationPeriodInDays":"ten"}}`), false, `Condition NumericLessThan "kms:RotationPeriodInDays" in statement 1: value "ten" is not a number.`},
		{"date value not a date", wrap(okStmt + `,"Condition":{"DateLessThan":{"aws:CurrentTime":"tomorrow"}}`), false, `Condition DateLessThan "aws:CurrentTime" in statement 1: value "tomorrow" is not an ISO 8601 date or epoch time.`},
		{"bool value not a bool", wrap(okStmt + `,"Condition":{"Bool":{"aws:SecureTransport":"yes"}}`), false, `Condition Bool "aws:SecureTransport" in statement 1: value "yes" is not a Boolean (true or false).`},
		{"null value not a bool", wrap(okStmt + `,"Condition":{"Null":{"aws:k":"maybe"}}`), false, `Condition Null "aws:k" in statement 1: value "maybe" is not true or false.`},
		{"ip value not an ip", wrap(okStmt + `,"Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}`), false, `Condition IpAddress "aws:SourceIp" in statement 1: value "10.0.0.0/33" is not an IP address or CIDR range.`},
		{"duplicate Sid", `{"Statement":[{"Sid":"A",` + okStmt + `},{"Sid":"A",` + okStmt + `}]}`, false, `Statement IDs (SID) in a single policy must be unique; "A" appears more than once.`},
		{"Sid not a string", wrap(`"Sid":1,` + okStmt), false, "The Sid of statement 1 must be a string."},
		{"second statement named", `{"Statement":[{` + okStmt + `},{"Effect":"Allow","Principal":"*","Action":"kms","Resource":"*"}]}`, false, `Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.; "kms" in statement 2 is not.`},
		{"too deep", strings.Repeat("[", 40) + strings.Repeat("]", 40), false, "Policy contains invalid JSON: nested too deeply."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var opts []Option
			if tc.identity {
				opts = append(opts, AsIdentityPolicy())
			}
			p, err := Parse(tc.doc, opts...)
			if err == nil {
				t.Fatalf("Parse accepted it (%d statements)", p.Len())
			}
			var pe *Error
			if !errors.As(err, &pe) || pe.Kind != KindMalformed || !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %T %v is not a malformed-policy *Error", err, err)
			}
			if pe.Message != tc.want {
				t.Fatalf("message\n got %q\nwant %q", pe.Message, tc.want)
			}
		})
	}
}

func TestCheckSize(t *testing.T) {
	t.Parallel()
	if err := CheckSize(strings.Repeat("x", MaxKeyPolicySize), MaxKeyPolicySize); err != nil {
		t.Fatalf("32768 bytes rejected: %v", err)
	}
	err := CheckSize(strings.Repeat("x", MaxKeyPolicySize+1), MaxKeyPolicySize)
	if !errors.Is(err, ErrTooLarge) || errors.Is(err, ErrMalformed) {
		t.Fatalf("32769 bytes: %v", err)
	}
	var pe *Error
	if !errors.As(err, &pe) || pe.Kind != "LimitExceededException" {
		t.Fatalf("kind: %v", err)
	}
}

func TestValidCharacters(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"{\t\r\n}":  true,
		"café ÿ":    true,
		"\x00":      false,
		"snow ☃":    false,
		"bad \xff":  false,
		"\u007f ok": true,
	} {
		if got := ValidCharacters(s); got != want {
			t.Errorf("ValidCharacters(%q) = %v", s, got)
		}
	}
}

// An empty policy is the fail-closed stand-in for a stored document that no
// longer parses: as a key policy it must deny even when identity policies
// allow (a nil KeyPolicy would mean "no key", where identity decides alone).
func TestEmptyPolicyAllowsNothing(t *testing.T) {
	t.Parallel()
	empty := mustParse(t, `{"Version":"2012-10-17","Statement":[]}`)
	idAll := mustParse(t, doc(`{"Effect":"Allow","Action":"*","Resource":"*"}`), AsIdentityPolicy())
	for _, p := range []Principal{alice, rootA, bob} {
		req := &Request{Principal: p, Action: "kms:Decrypt", Resource: keyARN}
		if r := empty.Evaluate(req); r.Effect != NotApplicable {
			t.Fatalf("%s: Evaluate = %v", p.ARN, r.Effect)
		}
		d := Decide(Input{Request: req, KeyAccountID: acctA, KeyPolicy: empty, IdentityPolicies: []*Policy{idAll}})
		if d.Allowed || d.Reason != DeniedNoResourcePolicy {
			t.Fatalf("%s: %+v", p.ARN, d)
		}
	}
	if d := CheckLockout(empty, Input{Request: &Request{Principal: rootA, Resource: keyARN}, KeyAccountID: acctA}); d.Allowed {
		t.Fatal("an empty key policy passes the lockout check")
	}
}

package policy

import (
	"bytes"
	"encoding/json"
	"testing"
)

// fuzzRequests is a fixed set of requests every parsed document is
// evaluated against, to compare two parses of the same (or a re-encoded)
// document.
var fuzzRequests = []*Request{
	{Principal: alice, Action: "kms:Encrypt", Resource: keyARN},
	{Principal: rootA, Action: "kms:PutKeyPolicy", Resource: keyARN, Context: ctx{"kms:bypasspolicylockoutsafetycheck": {"false"}}},
	{Principal: bob, Action: "kms:Decrypt", Resource: keyARN, Context: ctx{
		"kms:encryptioncontext:dept": {"Finance"}, "kms:encryptioncontextkeys": {"Dept", "x"},
		"aws:sourceip": {"203.0.113.7"}, "aws:currenttime": {"2026-05-01T12:00:00Z"}, "aws:username": {"bob"},
		"aws:securetransport": {"true"}, "kms:rotationperiodindays": {"90"}, "aws:principalarn": {bob.ARN}}},
	{Principal: session, Action: "kms:GenerateDataKey", Resource: "*", Context: ctx{"aws:tagkeys": {}}},
	{Principal: logsSvc, Action: "KMS:ENCRYPT", Resource: "arn:aws:kms:eu-west-1:444455556666:key/x"},
}

func evalAll(p *Policy) []Result {
	out := make([]Result, len(fuzzRequests))
	for i, r := range fuzzRequests {
		out[i] = p.Evaluate(r)
	}
	return out
}

func sameResults(a, b []Result) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

// FuzzParse checks that the parser never panics, that it is deterministic,
// and that an accepted document re-encoded as JSON parses to a policy that
// decides every sample request the same way. Plain `go test` runs the seeds.
func FuzzParse(f *testing.F) {
	seeds := []string{
		DefaultKeyPolicy(acctA),
		consolePolicy,
		allOperatorsDoc(),
		`{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}}`,
		`{"Version":"2008-10-17","Statement":[{"Effect":"Deny","NotPrincipal":{"AWS":["111122223333","arn:aws:iam::111122223333:user/alice"]},"NotAction":"kms:Describe*","NotResource":"arn:aws:kms:*:111122223333:key/*"}]}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:Decrypt","Resource":"*","Condition":{"ForAnyValue:StringLike":{"kms:EncryptionContextKeys":["D*","?"]},"IpAddressIfExists":{"aws:SourceIp":["203.0.113.0/24","2001:db8::/32"]},"DateLessThan":{"aws:CurrentTime":1900000000},"StringEquals":{"kms:EncryptionContext:Owner":"${aws:username, 'x'}${*}"}}}]}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"arn:aws:kms:*:*:key/${aws:PrincipalTag/k}"}]}`,
		`{"Statement":[{"Sid":"A","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"},{"Sid":"A","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}`,
		`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEqualz":{"a:b":"c"}}}]}`,
		`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","NotAction":"kms:x","Resource":"*"}]}`,
		`{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/*"},"Action":"kms:*","Resource":"*"}]}`,
		`{"Statement":[`, `[]`, `null`, `{"Statement":{}} x`, `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"NumericEquals":{"a:b":"NaN"}}}]}`,
		`{"Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"a${","Condition":{"StringLike":{"a:b":"${a:b, 'x}${}${$}"}}}}`,
	}
	for _, s := range seeds {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, doc string, identity bool) {
		var opts []Option
		if identity {
			opts = append(opts, AsIdentityPolicy())
		}
		p1, err1 := Parse(doc, opts...)
		p2, err2 := Parse(doc, opts...)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("nondeterministic: %v vs %v", err1, err2)
		}
		if err1 != nil {
			if err1.Error() != err2.Error() {
				t.Fatalf("nondeterministic message: %q vs %q", err1, err2)
			}
			pe, ok := err1.(*Error)
			if !ok || pe.Kind != KindMalformed || pe.Message == "" {
				t.Fatalf("untyped or empty error: %#v", err1)
			}
			return
		}
		r1 := evalAll(p1)
		if !sameResults(r1, evalAll(p2)) {
			t.Fatal("two parses of one document decide differently")
		}
		for i, r := range r1 {
			if (r.Effect == NotApplicable) != (r.Statement < 0) || r.Statement >= p1.Len() {
				t.Fatalf("request %d: inconsistent result %+v", i, r)
			}
		}
		Decide(Input{Request: fuzzRequests[0], KeyAccountID: acctA, KeyPolicy: p1, IdentityPolicies: []*Policy{p1}})
		_ = p1.Principals()

		// Round trip: the same policy written differently (re-encoded JSON)
		// must parse and decide the same way.
		dec := json.NewDecoder(bytes.NewReader([]byte(doc)))
		dec.UseNumber()
		var tree any
		if err := dec.Decode(&tree); err != nil {
			t.Fatalf("accepted document is not JSON: %v", err)
		}
		re, err := json.Marshal(tree)
		if err != nil {
			t.Fatal(err)
		}
		p3, err := Parse(string(re), opts...)
		if err != nil {
			t.Fatalf("re-encoded document rejected: %v\n%s", err, re)
		}
		if !sameResults(r1, evalAll(p3)) {
			t.Fatalf("re-encoded document decides differently:\n%s\n%s", doc, re)
		}
	})
}

package policy

import (
	"testing"
)

// Benchmarks of the per-request cost. The machine is shared: compare the
// numbers of one run with each other (e.g. console policy vs default
// policy), not across runs.

func benchRequest() *Request {
	c := ctx{
		"kms:encryptioncontext:dept":  {"x"},
		"kms:encryptioncontext:owner": {"alice-1"},
		"kms:encryptioncontextkeys":   {"dept", "owner"},
		"kms:calleraccount":           {acctA},
		"aws:principalarn":            {alice.ARN},
		"aws:securetransport":         {"true"},
		"aws:sourceip":                {"203.0.113.7"},
		"aws:currenttime":             {"2026-05-01T12:00:00Z"},
	}
	return &Request{Principal: alice, Action: "kms:Decrypt", Resource: keyARN, Context: c}
}

func BenchmarkEvaluateDefaultPolicy(b *testing.B) {
	p := mustParse(b, DefaultKeyPolicy(acctA))
	req := benchRequest()
	b.ReportAllocs()
	for b.Loop() {
		if p.Evaluate(req).Effect != Allow {
			b.Fatal("not allowed")
		}
	}
}

// The console-style policy uses a policy variable, so it takes the slower
// substitution path in one statement.
func BenchmarkEvaluateConsolePolicy(b *testing.B) {
	p := mustParse(b, consolePolicy)
	req := benchRequest()
	req.Context["aws:username"] = []string{"alice"}
	b.ReportAllocs()
	for b.Loop() {
		if p.Evaluate(req).Effect != Allow {
			b.Fatal("not allowed")
		}
	}
}

// Conditions of every family, no variables: the zero-allocation path.
func BenchmarkEvaluateConditions(b *testing.B) {
	p := mustParse(b, doc(
		st("Deny", anyP, allKMS, anyRes, `"Condition":{"Bool":{"aws:SecureTransport":"false"}}`),
		st("Deny", anyP, allKMS, anyRes, `"Condition":{"NotIpAddress":{"aws:SourceIp":["203.0.113.0/24","2001:db8::/32"]}}`),
		st("Allow", `"Principal":{"AWS":["arn:aws:iam::111122223333:user/carol","arn:aws:iam::111122223333:user/alice"]}`,
			`"Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*"]`,
			`"Resource":"arn:aws:kms:*:111122223333:key/*"`,
			`"Condition":{"StringEquals":{"kms:CallerAccount":"111122223333"},"StringLike":{"kms:EncryptionContext:Dept":"x*"},`+
				`"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["dept","owner","project"]},`+
				`"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/*"},"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}`)))
	req := benchRequest()
	b.ReportAllocs()
	for b.Loop() {
		if p.Evaluate(req).Effect != Allow {
			b.Fatal("not allowed")
		}
	}
}

func BenchmarkDecideDelegated(b *testing.B) {
	key := mustParse(b, DefaultKeyPolicy(acctA))
	id := mustParse(b, doc(`{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"arn:aws:kms:*:111122223333:key/*"}`), AsIdentityPolicy())
	in := Input{Request: benchRequest(), KeyAccountID: acctA, KeyPolicy: key, IdentityPolicies: []*Policy{id}}
	b.ReportAllocs()
	for b.Loop() {
		if !Decide(in).Allowed {
			b.Fatal("not allowed")
		}
	}
}

func BenchmarkParseConsolePolicy(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(consolePolicy); err != nil {
			b.Fatal(err)
		}
	}
}

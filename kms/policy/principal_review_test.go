package policy

import "testing"

// TestServiceWildcardPrincipal: {"Service":"*"} is refused (Access
// Analyzer: "Unsupported wildcard in principal"); it used to match every
// user, role and root instead of services, in Principal and NotPrincipal.
// A wildcard entry of type Service, should one be built, names services
// only.
func TestServiceWildcardPrincipal(t *testing.T) {
	for _, doc := range []string{
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"*"},"Action":"kms:Encrypt","Resource":"*"}]}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","NotPrincipal":{"Service":"*"},"Action":"kms:Encrypt","Resource":"*"}]}`,
	} {
		if _, err := Parse(doc); err == nil {
			t.Errorf("accepted: %s", doc)
		}
	}
	user := Principal{ARN: "arn:aws:iam::111122223333:user/u", AccountID: "111122223333", Type: TypeUser}
	service := Principal{ARN: "ec2.amazonaws.com", Type: TypeService}
	e := principalEntry{kind: pAny, typ: "Service", value: "*"}
	if e.match(user) != matchNone || e.match(service) != matchDirect {
		t.Error("a Service wildcard matches users, or not services")
	}
	if notPrincipalExempts([]principalEntry{e}, user) {
		t.Error("NotPrincipal Service wildcard exempts users")
	}
	aws := principalEntry{kind: pAny, typ: "AWS", value: "*"}
	if aws.match(user) != matchDirect || aws.match(service) != matchNone {
		t.Error(`{"AWS":"*"} does not match users only`)
	}
}

package policy

import "testing"

// TestServiceWildcardPrincipal: a wildcard principal of type Service names
// services only; it used to match every user, role and root, in Principal
// and NotPrincipal. Stored policies with it still parse (a key must not be
// locked out by an upgrade); ServiceWildcard lets the put paths refuse it.
func TestServiceWildcardPrincipal(t *testing.T) {
	pol, err := Parse(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"*"},"Action":"kms:Encrypt","Resource":"*"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if !pol.ServiceWildcard() {
		t.Error("ServiceWildcard does not see it")
	}
	user := Principal{ARN: "arn:aws:iam::111122223333:user/u", AccountID: "111122223333", Type: TypeUser}
	req := &Request{Principal: user, Action: "kms:Encrypt", Resource: "arn:aws:kms:us-east-1:111122223333:key/k"}
	if r := pol.Evaluate(req); r.Effect == Allow {
		t.Error(`{"Service":"*"} allows a user`)
	}
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

package policy

import (
	"strings"
	"testing"
)

// TestReplaceDeletedPrincipal: a deleted user's ARN and a deleted role's
// session ARNs become unique ids, other principals and the rest of the
// document stay, and the result parses and names nobody new.
func TestReplaceDeletedPrincipal(t *testing.T) {
	const (
		alice = "arn:aws:iam::111122223333:user/alice"
		uid   = "AIDAABCDEFGHIJKLMNOPQ"
	)
	doc := `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":{"AWS":["` + alice + `","arn:aws:iam::111122223333:user/alice2"]},"Action":"kms:Decrypt","Resource":"*","Condition":{"NumericLessThan":{"kms:GrantConstraintType":1}}},
		{"Effect":"Deny","NotPrincipal":{"AWS":"` + alice + `"},"Action":"kms:Encrypt","Resource":"*"}]}`
	out, changed, err := ReplaceDeletedPrincipal(doc, alice, "", uid)
	if err != nil || !changed {
		t.Fatalf("changed %v, err %v", changed, err)
	}
	if strings.Contains(out, `"`+alice+`"`) || strings.Count(out, uid) != 2 || !strings.Contains(out, "user/alice2") || !strings.Contains(out, `"kms:GrantConstraintType":1`) {
		t.Fatalf("rewritten: %s", out)
	}
	p, err := Parse(out, WithName("key policy"))
	if err != nil {
		t.Fatalf("the rewritten policy does not parse: %v", err)
	}
	if got := p.Principals(); len(got) != 2 || got[0] != uid {
		t.Fatalf("principals %v", got)
	}
	d := Decide(Input{Request: &Request{Principal: Principal{ARN: alice, AccountID: "111122223333", Type: TypeUser}, Action: "kms:Decrypt", Resource: "*"}, KeyPolicy: p})
	if d.Allowed {
		t.Fatal("a new alice is allowed by the old alice's statement")
	}

	const role = "arn:aws:iam::111122223333:role/ops"
	sess := "arn:aws:sts::111122223333:assumed-role/ops/"
	doc = `{"Statement":{"Effect":"Allow","Principal":{"AWS":"` + sess + `night"},"Action":"kms:*","Resource":"*"}}`
	out, changed, err = ReplaceDeletedPrincipal(doc, role, sess, "AROAABCDEFGHIJKLMNOPQ")
	if err != nil || !changed || !strings.Contains(out, `"AROAABCDEFGHIJKLMNOPQ:night"`) {
		t.Fatalf("session: %s %v %v", out, changed, err)
	}
	if _, err := Parse(out); err != nil {
		t.Fatalf("the rewritten policy does not parse: %v", err)
	}
	if same, changed, _ := ReplaceDeletedPrincipal(doc, alice, "", uid); changed || same != doc {
		t.Fatal("a document not naming the principal was changed")
	}
}

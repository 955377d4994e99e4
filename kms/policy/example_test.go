package policy_test

import (
	"fmt"

	"hsmkms/kms/policy"
)

// How a service authorizes one call: parse (and cache) the key policy and
// the caller's identity policies, describe the request with its condition
// keys, decide, and turn a denial into AWS's AccessDeniedException text.
func ExampleDecide() {
	const keyARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	keyPolicy, err := policy.Parse(policy.DefaultKeyPolicy("111122223333"), policy.WithName("default"))
	if err != nil {
		panic(err)
	}
	encryptOnly, err := policy.Parse(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}}`,
		policy.AsIdentityPolicy(), policy.WithName("encrypt-only"))
	if err != nil {
		panic(err)
	}
	caller := policy.Principal{ARN: "arn:aws:iam::111122223333:user/alice", AccountID: "111122223333", Type: policy.TypeUser}
	for _, op := range []string{"Encrypt", "Decrypt"} {
		ctx := map[string][]string{
			policy.KeyEncryptionContextPrefix + "dept": {"finance"},
			policy.KeyEncryptionContextKeys:            {"dept"},
			policy.KeySecureTransport:                  {"true"},
		}
		policy.SetPrincipalKeys(ctx, caller)
		req := &policy.Request{Principal: caller, Action: "kms:" + op, Resource: keyARN, Context: ctx}
		d := policy.Decide(policy.Input{
			Request:          req,
			KeyAccountID:     "111122223333",
			KeyPolicy:        keyPolicy,
			IdentityPolicies: []*policy.Policy{encryptOnly},
		})
		if d.Allowed {
			fmt.Println(op, d.Reason, d.Statements[len(d.Statements)-1].Policy)
			continue
		}
		fmt.Println(d.Message(req))
	}
	// Output:
	// Encrypt AllowedByIdentityPolicy encrypt-only
	// User: arn:aws:iam::111122223333:user/alice is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab because no identity-based policy allows the kms:Decrypt action
}

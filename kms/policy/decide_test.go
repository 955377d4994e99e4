package policy

import (
	"testing"
)

// consolePolicy is shaped like the key policy the AWS console writes
// (root delegation, key administrators, key users, grants for AWS
// resources), plus a Deny on missing encryption context.
const consolePolicy = `{
  "Version": "2012-10-17",
  "Id": "key-consolepolicy-3",
  "Statement": [
    {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
    {"Sid": "Allow access for Key Administrators", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:role/Admin"},
     "Action": ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
                "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource",
                "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"],
     "Resource": "*"},
    {"Sid": "Allow use of the key", "Effect": "Allow",
     "Principal": {"AWS": ["arn:aws:iam::111122223333:user/alice", "arn:aws:iam::444455556666:root"]},
     "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
     "Resource": "*",
     "Condition": {"StringLike": {"kms:EncryptionContext:owner": "${aws:username, 'svc'}*"}}},
    {"Sid": "Allow attachment of persistent resources", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"},
     "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"], "Resource": "*",
     "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}},
    {"Sid": "Require context", "Effect": "Deny", "Principal": "*",
     "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*",
     "Condition": {"Null": {"kms:EncryptionContext:dept": "true"}}}
  ]
}`

func mustParse(t testing.TB, d string, opts ...Option) *Policy {
	t.Helper()
	p, err := Parse(d, opts...)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, d)
	}
	return p
}

func TestDecideTable(t *testing.T) {
	t.Parallel()
	def := DefaultKeyPolicy(acctA)
	idAllowAll := doc(`{"Effect":"Allow","Action":"kms:*","Resource":"*"}`)
	idAllowEncrypt := doc(`{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}`)
	idAllowDecryptOnly := doc(`{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}`)
	idDenyEncrypt := doc(`{"Effect":"Deny","Action":"kms:Encrypt","Resource":"*"}`)
	idAllowOtherKey := doc(`{"Effect":"Allow","Action":"kms:*","Resource":"` + keyB + `"}`)
	idAllowThisKey := doc(`{"Effect":"Allow","Action":"kms:*","Resource":"` + keyARN + `"}`)
	idListKeys := doc(`{"Effect":"Allow","Action":["kms:ListKeys","kms:CreateKey"],"Resource":"*"}`)
	keyAllowsAlice := doc(st("Allow", `"Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"}`, allKMS, anyRes))
	keyAllowsRoleAdmin := doc(st("Allow", `"Principal":{"AWS":"arn:aws:iam::111122223333:role/Admin"}`, allKMS, anyRes))
	keyNoAccount := doc(st("Allow", `"Principal":{"AWS":"arn:aws:iam::111122223333:user/carol"}`, allKMS, anyRes))
	keyStar := doc(st("Allow", anyP, allKMS, anyRes))
	keyDenyEncrypt := doc(st("Allow", `"Principal":{"AWS":"111122223333"}`, allKMS, anyRes), st("Deny", anyP, `"Action":"kms:Encrypt"`, anyRes))
	keyAllowsB := doc(st("Allow", `"Principal":{"AWS":"111122223333"}`, allKMS, anyRes), st("Allow", `"Principal":{"AWS":"arn:aws:iam::444455556666:root"}`, `"Action":["kms:Encrypt","kms:Decrypt","kms:DescribeKey"]`, anyRes))
	keyAllowsBob := doc(st("Allow", `"Principal":{"AWS":"111122223333"}`, allKMS, anyRes), st("Allow", `"Principal":{"AWS":"arn:aws:iam::444455556666:user/bob"}`, `"Action":["kms:Encrypt","kms:Decrypt"]`, anyRes))
	keyEncryptOnly := doc(st("Allow", `"Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"}`, `"Action":"kms:Encrypt"`, anyRes))
	keyECDeny := doc(st("Allow", `"Principal":{"AWS":"arn:aws:iam::111122223333:root"}`, allKMS, anyRes),
		st("Deny", anyP, `"Action":["kms:Encrypt","kms:Decrypt"]`, anyRes, `"Condition":{"StringNotEquals":{"kms:EncryptionContext:Dept":"Finance"}}`))

	cases := []struct {
		name      string
		key       string // "" means no key policy (IAM-only action)
		identity  []string
		principal Principal
		action    string
		ctx       ctx
		grant     bool
		want      Reason
		wantSid   string
	}{
		{name: "default policy, no identity policy", key: def, want: DeniedNoIdentityPolicy, wantSid: "Enable IAM User Permissions"},
		{name: "default policy, identity allows", key: def, identity: []string{idAllowEncrypt}, want: AllowedByIdentityPolicy},
		{name: "default policy, account root", key: def, principal: rootA, want: AllowedByKeyPolicy},
		{name: "default policy, identity allows another action", key: def, identity: []string{idAllowDecryptOnly}, want: DeniedNoIdentityPolicy},
		{name: "default policy, identity for another key", key: def, identity: []string{idAllowOtherKey}, want: DeniedNoIdentityPolicy},
		{name: "default policy, identity for this key", key: def, identity: []string{idAllowThisKey}, want: AllowedByIdentityPolicy},
		{name: "default policy, identity explicit deny", key: def, identity: []string{idAllowAll, idDenyEncrypt}, want: DeniedByIdentityPolicy},
		{name: "default policy, role session with role policy", key: def, principal: session, identity: []string{idAllowAll}, want: AllowedByIdentityPolicy},
		{name: "key policy names the user", key: keyAllowsAlice, want: AllowedByKeyPolicy},
		{name: "key policy names the user, identity denies", key: keyAllowsAlice, identity: []string{idDenyEncrypt}, want: DeniedByIdentityPolicy},
		{name: "key policy names the role", key: keyAllowsRoleAdmin, principal: session, want: AllowedByKeyPolicy},
		{name: "key policy names star", key: keyStar, want: AllowedByKeyPolicy},
		{name: "key policy without the account ignores identity policy", key: keyNoAccount, identity: []string{idAllowAll}, want: DeniedNoResourcePolicy},
		{name: "key policy without the account, root denied", key: keyNoAccount, principal: rootA, want: DeniedNoResourcePolicy},
		{name: "key policy explicit deny beats identity allow", key: keyDenyEncrypt, identity: []string{idAllowAll}, want: DeniedByResourcePolicy},
		{name: "key policy explicit deny for root", key: keyDenyEncrypt, principal: rootA, want: DeniedByResourcePolicy},
		{name: "key policy allows Encrypt not Decrypt: Encrypt", key: keyEncryptOnly, want: AllowedByKeyPolicy},
		{name: "key policy allows Encrypt not Decrypt: Decrypt", key: keyEncryptOnly, action: "kms:Decrypt", want: DeniedNoResourcePolicy},
		{name: "encryption context deny: mismatch", key: keyECDeny, principal: rootA, ctx: ctx{"kms:encryptioncontext:dept": {"HR"}}, want: DeniedByResourcePolicy},
		{name: "encryption context deny: match", key: keyECDeny, principal: rootA, ctx: ctx{"kms:encryptioncontext:dept": {"Finance"}}, want: AllowedByKeyPolicy},
		{name: "cross-account: key allows account, identity allows", key: keyAllowsB, principal: bob, identity: []string{idAllowAll}, want: AllowedByIdentityPolicy},
		{name: "cross-account: key allows account, no identity", key: keyAllowsB, principal: bob, want: DeniedNoIdentityPolicy},
		{name: "cross-account: key allows account, other action", key: keyAllowsB, principal: bob, action: "kms:ScheduleKeyDeletion", identity: []string{idAllowAll}, want: DeniedNoResourcePolicy},
		{name: "cross-account: key silent, identity allows", key: def, principal: bob, identity: []string{idAllowAll}, want: DeniedNoResourcePolicy},
		{name: "cross-account: key names the user, no identity", key: keyAllowsBob, principal: bob, want: DeniedNoIdentityPolicy},
		{name: "cross-account: key names the user, identity allows", key: keyAllowsBob, principal: bob, identity: []string{idAllowAll}, want: AllowedByKeyPolicy},
		{name: "cross-account: key star, no identity", key: keyStar, principal: bob, want: DeniedNoIdentityPolicy},
		{name: "cross-account: key star, identity allows", key: keyStar, principal: bob, identity: []string{idAllowEncrypt}, want: AllowedByKeyPolicy},
		{name: "cross-account: other account root", key: keyAllowsB, principal: rootB, want: AllowedByKeyPolicy},
		{name: "cross-account: identity deny", key: keyAllowsB, principal: bob, identity: []string{idAllowAll, idDenyEncrypt}, want: DeniedByIdentityPolicy},
		{name: "grant allows where policies do not", key: keyNoAccount, grant: true, want: AllowedByGrant},
		{name: "grant allows with default policy and no identity", key: def, grant: true, want: AllowedByGrant},
		{name: "grant does not beat key policy deny", key: keyDenyEncrypt, grant: true, want: DeniedByResourcePolicy},
		{name: "grant does not beat identity deny", key: def, identity: []string{idDenyEncrypt}, grant: true, want: DeniedByIdentityPolicy},
		{name: "grant cross-account", key: def, principal: bob, grant: true, want: AllowedByGrant},
		{name: "key policy allow preferred over grant", key: keyAllowsAlice, grant: true, want: AllowedByKeyPolicy},
		{name: "no key: identity allows ListKeys", identity: []string{idListKeys}, action: "kms:ListKeys", want: AllowedByIdentityPolicy},
		{name: "no key: no identity policy", action: "kms:ListKeys", want: DeniedNoIdentityPolicy},
		{name: "no key: root", principal: rootA, action: "kms:CreateKey", want: AllowedByIdentityPolicy},
		{name: "no key: identity denies", identity: []string{idListKeys, doc(`{"Effect":"Deny","Action":"kms:*","Resource":"*"}`)}, action: "kms:ListKeys", want: DeniedByIdentityPolicy},
		{name: "console policy: user with context", key: consolePolicy, action: "kms:Decrypt", ctx: ctx{"kms:encryptioncontext:dept": {"x"}, "kms:encryptioncontext:owner": {"alice-1"}, "aws:username": {"alice"}}, want: AllowedByKeyPolicy, wantSid: "Allow use of the key"},
		{name: "console policy: missing context denied", key: consolePolicy, action: "kms:Decrypt", ctx: ctx{"kms:encryptioncontext:owner": {"alice-1"}, "aws:username": {"alice"}}, want: DeniedByResourcePolicy, wantSid: "Require context"},
		{name: "console policy: wrong owner falls back to IAM", key: consolePolicy, action: "kms:Decrypt", ctx: ctx{"kms:encryptioncontext:dept": {"x"}, "kms:encryptioncontext:owner": {"carol"}, "aws:username": {"alice"}}, want: DeniedNoIdentityPolicy},
		{name: "console policy: admin role manages", key: consolePolicy, principal: session, action: "kms:PutKeyPolicy", want: AllowedByKeyPolicy, wantSid: "Allow access for Key Administrators"},
		{name: "console policy: admin role cannot decrypt without IAM", key: consolePolicy, principal: session, action: "kms:Decrypt", ctx: ctx{"kms:encryptioncontext:dept": {"x"}}, want: DeniedNoIdentityPolicy},
		{name: "console policy: grant for AWS resource", key: consolePolicy, action: "kms:CreateGrant", ctx: ctx{"kms:grantisforawsresource": {"true"}}, want: AllowedByKeyPolicy},
		{name: "console policy: grant not for AWS resource", key: consolePolicy, action: "kms:CreateGrant", ctx: ctx{"kms:grantisforawsresource": {"false"}}, want: DeniedNoIdentityPolicy},
		{name: "console policy: other account via default owner", key: consolePolicy, principal: bob, identity: []string{idAllowAll}, ctx: ctx{"kms:encryptioncontext:dept": {"x"}, "kms:encryptioncontext:owner": {"svc-batch"}}, want: AllowedByIdentityPolicy},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := Input{KeyAccountID: acctA, GrantAllows: tc.grant}
			if tc.key != "" {
				in.KeyPolicy = mustParse(t, tc.key, WithName("default"))
			}
			for i, d := range tc.identity {
				in.IdentityPolicies = append(in.IdentityPolicies, mustParse(t, d, AsIdentityPolicy(), WithName("id"+string(rune('0'+i)))))
			}
			req := &Request{Principal: tc.principal, Action: tc.action, Resource: keyARN, Context: tc.ctx}
			if req.Principal == (Principal{}) {
				req.Principal = alice
			}
			if req.Action == "" {
				req.Action = "kms:Encrypt"
			}
			if tc.key == "" {
				req.Resource = "*"
			}
			d := Decide(in.with(req))
			if d.Reason != tc.want {
				t.Fatalf("Reason = %v, want %v (%+v)", d.Reason, tc.want, d)
			}
			wantAllowed := tc.want == AllowedByKeyPolicy || tc.want == AllowedByIdentityPolicy || tc.want == AllowedByGrant
			if d.Allowed != wantAllowed {
				t.Fatalf("Allowed = %v", d.Allowed)
			}
			if tc.wantSid != "" {
				if len(d.Statements) == 0 || d.Statements[0].Sid != tc.wantSid {
					t.Fatalf("Statements = %+v, want Sid %q first", d.Statements, tc.wantSid)
				}
			}
			switch d.Reason {
			case DeniedByResourcePolicy, DeniedByIdentityPolicy:
				if len(d.Statements) != 1 || d.Statements[0].Effect != ExplicitDeny {
					t.Fatalf("explicit deny must name its statement: %+v", d.Statements)
				}
			case AllowedByIdentityPolicy:
				if tc.key != "" && len(d.Statements) != 2 {
					t.Fatalf("delegated allow must name key and identity statements: %+v", d.Statements)
				}
			}
			if d.Allowed != (d.Message(req) == "") {
				t.Fatalf("Message %q for Allowed=%v", d.Message(req), d.Allowed)
			}
		})
	}
}

func (in Input) with(r *Request) Input { in.Request = r; return in }

func TestAccessDeniedMessages(t *testing.T) {
	t.Parallel()
	u := "arn:aws:iam::111122223333:user/alice"
	for r, want := range map[Reason]string{
		DeniedNoResourcePolicy: "User: " + u + " is not authorized to perform: kms:Decrypt on resource: " + keyARN + " because no resource-based policy allows the kms:Decrypt action",
		DeniedNoIdentityPolicy: "User: " + u + " is not authorized to perform: kms:Decrypt on resource: " + keyARN + " because no identity-based policy allows the kms:Decrypt action",
		DeniedByResourcePolicy: "User: " + u + " is not authorized to perform: kms:Decrypt on resource: " + keyARN + " with an explicit deny in a resource-based policy",
		DeniedByIdentityPolicy: "User: " + u + " is not authorized to perform: kms:Decrypt on resource: " + keyARN + " with an explicit deny in an identity-based policy",
	} {
		if got := AccessDeniedMessage(u, "kms:Decrypt", keyARN, r); got != want {
			t.Errorf("%v:\n got %q\nwant %q", r, got, want)
		}
	}
	// Through Decide, for an IAM-only action the resource is "*".
	req := &Request{Principal: alice, Action: "kms:ListKeys", Resource: "*"}
	d := Decide(Input{Request: req})
	want := "User: " + u + " is not authorized to perform: kms:ListKeys on resource: * because no identity-based policy allows the kms:ListKeys action"
	if got := d.Message(req); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestCheckLockout(t *testing.T) {
	t.Parallel()
	idPut := mustParse(t, doc(`{"Effect":"Allow","Action":"kms:PutKeyPolicy","Resource":"*"}`), AsIdentityPolicy())
	cases := []struct {
		name      string
		newPolicy string
		principal Principal
		identity  []*Policy
		ok        bool
	}{
		{"default policy, root", DefaultKeyPolicy(acctA), rootA, nil, true},
		{"default policy, user with IAM permission", DefaultKeyPolicy(acctA), alice, []*Policy{idPut}, true},
		{"default policy, user without IAM permission", DefaultKeyPolicy(acctA), alice, nil, false},
		{"policy naming the caller for Put*", doc(st("Allow", `"Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"}`, `"Action":"kms:Put*"`, anyRes)), alice, nil, true},
		{"policy allowing the caller only Encrypt", doc(st("Allow", `"Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"}`, `"Action":"kms:Encrypt"`, anyRes)), alice, []*Policy{idPut}, false},
		{"policy denying PutKeyPolicy", doc(st("Allow", anyP, allKMS, anyRes), st("Deny", anyP, `"Action":"kms:PutKeyPolicy"`, anyRes)), rootA, nil, false},
		{"policy for another user", doc(st("Allow", `"Principal":{"AWS":"arn:aws:iam::111122223333:user/carol"}`, allKMS, anyRes)), rootA, nil, false},
		{"role session via role", doc(st("Allow", `"Principal":{"AWS":"arn:aws:iam::111122223333:role/Admin"}`, allKMS, anyRes)), session, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := mustParse(t, tc.newPolicy)
			// Whatever the request said, the check is about kms:PutKeyPolicy
			// and grants do not count.
			d := CheckLockout(p, Input{
				Request:          &Request{Principal: tc.principal, Action: "kms:CreateKey", Resource: keyARN},
				KeyAccountID:     acctA,
				IdentityPolicies: tc.identity,
				GrantAllows:      true,
			})
			if d.Allowed != tc.ok {
				t.Fatalf("Allowed = %v, want %v (%+v)", d.Allowed, tc.ok, d)
			}
		})
	}
}

func TestSetPrincipalKeys(t *testing.T) {
	t.Parallel()
	c := ctx{}
	SetPrincipalKeys(c, alice)
	if c[KeyPrincipalArn][0] != alice.ARN || c[KeyPrincipalType][0] != "User" || c[KeyUsername][0] != "alice" || c[KeyCallerAccount][0] != acctA {
		t.Fatalf("user keys: %v", c)
	}
	c = ctx{}
	SetPrincipalKeys(c, session)
	if c[KeyPrincipalArn][0] != session.RoleARN || c[KeyPrincipalType][0] != "AssumedRole" || c[KeyUsername] != nil {
		t.Fatalf("session keys: %v", c)
	}
	c = ctx{}
	SetPrincipalKeys(c, rootA)
	if c[KeyPrincipalType][0] != "Account" || c[KeyPrincipalAccount][0] != acctA {
		t.Fatalf("root keys: %v", c)
	}
	// The keys it sets are the ones policies use.
	p := mustParse(t, allowIf(`"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/*"},"StringEquals":{"aws:PrincipalType":"AssumedRole","kms:CallerAccount":"111122223333"}`))
	c = ctx{}
	SetPrincipalKeys(c, session)
	if r := p.Evaluate(&Request{Principal: session, Action: "kms:Encrypt", Resource: keyARN, Context: c}); r.Effect != Allow {
		t.Fatalf("got %v", r.Effect)
	}
}

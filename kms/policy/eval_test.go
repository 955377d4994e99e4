package policy

import (
	"fmt"
	"strings"
	"testing"
)

const (
	acctA  = "111122223333"
	acctB  = "444455556666"
	keyARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	keyB   = "arn:aws:kms:us-east-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321"
)

var (
	alice   = Principal{ARN: "arn:aws:iam::111122223333:user/alice", AccountID: acctA, Type: TypeUser}
	carol   = Principal{ARN: "arn:aws:iam::111122223333:user/carol", AccountID: acctA, Type: TypeUser}
	rootA   = Principal{ARN: "arn:aws:iam::111122223333:root", AccountID: acctA, Type: TypeRoot}
	bob     = Principal{ARN: "arn:aws:iam::444455556666:user/bob", AccountID: acctB, Type: TypeUser}
	rootB   = Principal{ARN: "arn:aws:iam::444455556666:root", AccountID: acctB, Type: TypeRoot}
	session = Principal{ARN: "arn:aws:sts::111122223333:assumed-role/Admin/s1", AccountID: acctA, Type: TypeAssumedRole,
		RoleARN: "arn:aws:iam::111122223333:role/Admin"}
	pathSession = Principal{ARN: "arn:aws:sts::111122223333:assumed-role/Ops/s2", AccountID: acctA, Type: TypeAssumedRole,
		RoleARN: "arn:aws:iam::111122223333:role/team/Ops"}
	logsSvc = Principal{ARN: "logs.amazonaws.com", Type: TypeService}
)

// doc wraps statements into a 2012-10-17 policy.
func doc(stmts ...string) string {
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(stmts, ",") + `]}`
}

// allowIf is an Allow-everything key policy statement with a Condition.
func allowIf(cond string) string {
	return doc(`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{` + cond + `}}`)
}

// st builds one statement from element fragments.
func st(effect string, elems ...string) string {
	return `{"Effect":"` + effect + `",` + strings.Join(elems, ",") + `}`
}

const (
	anyP   = `"Principal":"*"`
	allKMS = `"Action":"kms:*"`
	anyRes = `"Resource":"*"`
)

type ctx = map[string][]string

type evalCase struct {
	name      string
	doc       string
	principal Principal // zero: alice
	action    string    // "": kms:Encrypt
	resource  string    // "": keyARN
	ctx       ctx
	want      Effect
	wantStmt  int  // checked when >0 (1-based, to keep 0 meaning "not checked")
	delegated bool // expected Result.Delegated
}

func evalCases() []evalCase {
	ec := func(k, v string) ctx { return ctx{"kms:encryptioncontext:" + k: {v}} }
	one := func(k, v string) ctx { return ctx{k: {v}} }
	many := func(k string, v ...string) ctx { return ctx{k: v} }
	now := "2026-05-01T12:00:00Z"
	return []evalCase{
		// StringEquals
		{name: "StringEquals match", doc: allowIf(`"StringEquals":{"kms:EncryptionContext:Dept":"Finance"}`), ctx: ec("dept", "Finance"), want: Allow},
		{name: "StringEquals value is case-sensitive", doc: allowIf(`"StringEquals":{"kms:EncryptionContext:Dept":"Finance"}`), ctx: ec("dept", "finance"), want: NotApplicable},
		{name: "StringEquals missing key", doc: allowIf(`"StringEquals":{"kms:EncryptionContext:Dept":"Finance"}`), want: NotApplicable},
		{name: "StringEquals values ORed", doc: allowIf(`"StringEquals":{"kms:EncryptionContext:Dept":["HR","Finance"]}`), ctx: ec("dept", "Finance"), want: Allow},
		{name: "StringEquals key name case-insensitive", doc: allowIf(`"StringEquals":{"KMS:ENCRYPTIONCONTEXT:DEPT":"Finance"}`), ctx: ec("dept", "Finance"), want: Allow},
		{name: "StringEquals request key in mixed case", doc: allowIf(`"StringEquals":{"kms:EncryptionContext:Dept":"Finance"}`), ctx: ctx{"kms:EncryptionContext:DEPT": {"Finance"}}, want: Allow},
		{name: "StringEquals star is literal", doc: allowIf(`"StringEquals":{"kms:EncryptionContext:Dept":"*"}`), ctx: ec("dept", "Finance"), want: NotApplicable},
		{name: "StringEquals star literal matches star", doc: allowIf(`"StringEquals":{"kms:EncryptionContext:Dept":"*"}`), ctx: ec("dept", "*"), want: Allow},
		{name: "StringEquals JSON number value", doc: allowIf(`"StringEquals":{"kms:EncryptionContext:n":42}`), ctx: ec("n", "42"), want: Allow},
		{name: "StringEquals empty value", doc: allowIf(`"StringEquals":{"kms:EncryptionContext:n":""}`), ctx: ec("n", ""), want: Allow},
		// StringNotEquals
		{name: "StringNotEquals differs", doc: allowIf(`"StringNotEquals":{"kms:CallerAccount":"444455556666"}`), ctx: one("kms:calleraccount", acctA), want: Allow},
		{name: "StringNotEquals equal", doc: allowIf(`"StringNotEquals":{"kms:CallerAccount":"111122223333"}`), ctx: one("kms:calleraccount", acctA), want: NotApplicable},
		{name: "StringNotEquals missing key is true", doc: allowIf(`"StringNotEquals":{"kms:CallerAccount":"111122223333"}`), want: Allow},
		{name: "StringNotEquals matches one of the values", doc: allowIf(`"StringNotEquals":{"kms:KeySpec":["RSA_2048","SYMMETRIC_DEFAULT"]}`), ctx: one("kms:keyspec", "SYMMETRIC_DEFAULT"), want: NotApplicable},
		{name: "StringNotEquals matches none of the values", doc: allowIf(`"StringNotEquals":{"kms:KeySpec":["RSA_2048","SYMMETRIC_DEFAULT"]}`), ctx: one("kms:keyspec", "HMAC_256"), want: Allow},
		// StringEqualsIgnoreCase / StringNotEqualsIgnoreCase
		{name: "StringEqualsIgnoreCase other case", doc: allowIf(`"StringEqualsIgnoreCase":{"kms:EncryptionContext:Dept":"FINANCE"}`), ctx: ec("dept", "finance"), want: Allow},
		{name: "StringEqualsIgnoreCase mismatch", doc: allowIf(`"StringEqualsIgnoreCase":{"kms:EncryptionContext:Dept":"FINANCE"}`), ctx: ec("dept", "hr"), want: NotApplicable},
		{name: "StringEqualsIgnoreCase missing", doc: allowIf(`"StringEqualsIgnoreCase":{"kms:EncryptionContext:Dept":"FINANCE"}`), want: NotApplicable},
		{name: "StringNotEqualsIgnoreCase same ignoring case", doc: allowIf(`"StringNotEqualsIgnoreCase":{"kms:EncryptionContext:Dept":"FINANCE"}`), ctx: ec("dept", "Finance"), want: NotApplicable},
		{name: "StringNotEqualsIgnoreCase different", doc: allowIf(`"StringNotEqualsIgnoreCase":{"kms:EncryptionContext:Dept":"FINANCE"}`), ctx: ec("dept", "HR"), want: Allow},
		{name: "StringNotEqualsIgnoreCase missing", doc: allowIf(`"StringNotEqualsIgnoreCase":{"kms:EncryptionContext:Dept":"FINANCE"}`), want: Allow},
		// StringLike / StringNotLike
		{name: "StringLike star", doc: allowIf(`"StringLike":{"kms:EncryptionContext:Dept":"Fin*"}`), ctx: ec("dept", "Finance"), want: Allow},
		{name: "StringLike question mark", doc: allowIf(`"StringLike":{"kms:EncryptionContext:Dept":"F?nance"}`), ctx: ec("dept", "Finance"), want: Allow},
		{name: "StringLike question mark needs one char", doc: allowIf(`"StringLike":{"kms:EncryptionContext:Dept":"F?nance"}`), ctx: ec("dept", "Fnance"), want: NotApplicable},
		{name: "StringLike star matches empty", doc: allowIf(`"StringLike":{"kms:EncryptionContext:Dept":"*"}`), ctx: ec("dept", ""), want: Allow},
		{name: "StringLike is case-sensitive", doc: allowIf(`"StringLike":{"kms:EncryptionContext:Dept":"fin*"}`), ctx: ec("dept", "Finance"), want: NotApplicable},
		{name: "StringLike missing", doc: allowIf(`"StringLike":{"kms:EncryptionContext:Dept":"*"}`), want: NotApplicable},
		{name: "StringLike several stars", doc: allowIf(`"StringLike":{"kms:EncryptionContext:p":"a*b*c"}`), ctx: ec("p", "aXXbYYc"), want: Allow},
		{name: "StringLike several stars order", doc: allowIf(`"StringLike":{"kms:EncryptionContext:p":"a*b*c"}`), ctx: ec("p", "aXXcYYb"), want: NotApplicable},
		{name: "StringLike backtracking", doc: allowIf(`"StringLike":{"kms:EncryptionContext:p":"*ab"}`), ctx: ec("p", "aaab"), want: Allow},
		{name: "StringLike question mark is one rune", doc: allowIf(`"StringLike":{"kms:EncryptionContext:p":"caf?"}`), ctx: ec("p", "café"), want: Allow},
		{name: "StringNotLike matching", doc: allowIf(`"StringNotLike":{"kms:EncryptionContext:Dept":"Fin*"}`), ctx: ec("dept", "Finance"), want: NotApplicable},
		{name: "StringNotLike not matching", doc: allowIf(`"StringNotLike":{"kms:EncryptionContext:Dept":"Fin*"}`), ctx: ec("dept", "HR"), want: Allow},
		{name: "StringNotLike missing", doc: allowIf(`"StringNotLike":{"kms:EncryptionContext:Dept":"Fin*"}`), want: Allow},
		// Numeric
		{name: "NumericEquals", doc: allowIf(`"NumericEquals":{"kms:RotationPeriodInDays":10}`), ctx: one("kms:rotationperiodindays", "10"), want: Allow},
		{name: "NumericEquals decimal", doc: allowIf(`"NumericEquals":{"kms:RotationPeriodInDays":"10"}`), ctx: one("kms:rotationperiodindays", "10.0"), want: Allow},
		{name: "NumericEquals differs", doc: allowIf(`"NumericEquals":{"kms:RotationPeriodInDays":"10"}`), ctx: one("kms:rotationperiodindays", "11"), want: NotApplicable},
		{name: "NumericNotEquals differs", doc: allowIf(`"NumericNotEquals":{"kms:RotationPeriodInDays":"10"}`), ctx: one("kms:rotationperiodindays", "11"), want: Allow},
		{name: "NumericNotEquals equal", doc: allowIf(`"NumericNotEquals":{"kms:RotationPeriodInDays":"10"}`), ctx: one("kms:rotationperiodindays", "10"), want: NotApplicable},
		{name: "NumericLessThan", doc: allowIf(`"NumericLessThan":{"kms:ScheduleKeyDeletionPendingWindowInDays":"30"}`), ctx: one("kms:schedulekeydeletionpendingwindowindays", "7"), want: Allow},
		{name: "NumericLessThan equal", doc: allowIf(`"NumericLessThan":{"kms:ScheduleKeyDeletionPendingWindowInDays":"30"}`), ctx: one("kms:schedulekeydeletionpendingwindowindays", "30"), want: NotApplicable},
		{name: "NumericLessThanEquals equal", doc: allowIf(`"NumericLessThanEquals":{"kms:ScheduleKeyDeletionPendingWindowInDays":"30"}`), ctx: one("kms:schedulekeydeletionpendingwindowindays", "30"), want: Allow},
		{name: "NumericLessThanEquals greater", doc: allowIf(`"NumericLessThanEquals":{"kms:ScheduleKeyDeletionPendingWindowInDays":"30"}`), ctx: one("kms:schedulekeydeletionpendingwindowindays", "31"), want: NotApplicable},
		{name: "NumericGreaterThan", doc: allowIf(`"NumericGreaterThan":{"kms:ScheduleKeyDeletionPendingWindowInDays":7}`), ctx: one("kms:schedulekeydeletionpendingwindowindays", "8"), want: Allow},
		{name: "NumericGreaterThan equal", doc: allowIf(`"NumericGreaterThan":{"kms:ScheduleKeyDeletionPendingWindowInDays":7}`), ctx: one("kms:schedulekeydeletionpendingwindowindays", "7"), want: NotApplicable},
		{name: "NumericGreaterThanEquals equal", doc: allowIf(`"NumericGreaterThanEquals":{"kms:ScheduleKeyDeletionPendingWindowInDays":7}`), ctx: one("kms:schedulekeydeletionpendingwindowindays", "7"), want: Allow},
		{name: "NumericGreaterThanEquals less", doc: allowIf(`"NumericGreaterThanEquals":{"kms:ScheduleKeyDeletionPendingWindowInDays":7}`), ctx: one("kms:schedulekeydeletionpendingwindowindays", "6.5"), want: NotApplicable},
		{name: "NumericLessThan missing", doc: allowIf(`"NumericLessThan":{"kms:RotationPeriodInDays":"30"}`), want: NotApplicable},
		{name: "NumericNotEquals missing", doc: allowIf(`"NumericNotEquals":{"kms:RotationPeriodInDays":"30"}`), want: Allow},
		{name: "NumericEquals request not a number", doc: allowIf(`"NumericEquals":{"kms:RotationPeriodInDays":"30"}`), ctx: one("kms:rotationperiodindays", "thirty"), want: NotApplicable},
		{name: "NumericEquals values ORed", doc: allowIf(`"NumericEquals":{"kms:RotationPeriodInDays":[90,180,365]}`), ctx: one("kms:rotationperiodindays", "180"), want: Allow},
		// Date
		{name: "DateLessThan", doc: allowIf(`"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}`), ctx: one("aws:currenttime", now), want: Allow},
		{name: "DateLessThan after", doc: allowIf(`"DateLessThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}`), ctx: one("aws:currenttime", now), want: NotApplicable},
		{name: "DateGreaterThan epoch policy value", doc: allowIf(`"DateGreaterThan":{"aws:CurrentTime":"1700000000"}`), ctx: one("aws:currenttime", now), want: Allow},
		{name: "DateEquals ISO against epoch request", doc: allowIf(`"DateEquals":{"aws:EpochTime":"2024-01-01T00:00:00Z"}`), ctx: one("aws:epochtime", "1704067200"), want: Allow},
		{name: "DateNotEquals", doc: allowIf(`"DateNotEquals":{"aws:CurrentTime":"2024-01-01T00:00:00Z"}`), ctx: one("aws:currenttime", now), want: Allow},
		{name: "DateNotEquals equal", doc: allowIf(`"DateNotEquals":{"aws:CurrentTime":"2026-05-01T12:00:00Z"}`), ctx: one("aws:currenttime", now), want: NotApplicable},
		{name: "DateLessThanEquals equal", doc: allowIf(`"DateLessThanEquals":{"aws:CurrentTime":"2026-05-01T12:00:00Z"}`), ctx: one("aws:currenttime", now), want: Allow},
		{name: "DateGreaterThanEquals equal", doc: allowIf(`"DateGreaterThanEquals":{"aws:CurrentTime":"2026-05-01T12:00:00Z"}`), ctx: one("aws:currenttime", now), want: Allow},
		{name: "DateGreaterThanEquals before", doc: allowIf(`"DateGreaterThanEquals":{"aws:CurrentTime":"2026-05-01T12:00:01Z"}`), ctx: one("aws:currenttime", now), want: NotApplicable},
		{name: "DateEquals with offset", doc: allowIf(`"DateEquals":{"aws:CurrentTime":"2026-05-01T14:00:00+02:00"}`), ctx: one("aws:currenttime", now), want: Allow},
		{name: "DateGreaterThan date only", doc: allowIf(`"DateGreaterThan":{"aws:CurrentTime":"2026-05-01"}`), ctx: one("aws:currenttime", now), want: Allow},
		{name: "DateLessThan fractional seconds", doc: allowIf(`"DateLessThan":{"aws:CurrentTime":"2026-05-01T12:00:00.5Z"}`), ctx: one("aws:currenttime", now), want: Allow},
		{name: "DateLessThan missing", doc: allowIf(`"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}`), want: NotApplicable},
		{name: "DateLessThanEquals kms:ValidTo", doc: allowIf(`"DateLessThanEquals":{"kms:ValidTo":"2030-12-31T23:59:59Z"}`), ctx: one("kms:validto", "1893456000"), want: Allow},
		// Bool
		{name: "Bool true", doc: allowIf(`"Bool":{"aws:SecureTransport":"true"}`), ctx: one("aws:securetransport", "true"), want: Allow},
		{name: "Bool true vs false", doc: allowIf(`"Bool":{"aws:SecureTransport":"true"}`), ctx: one("aws:securetransport", "false"), want: NotApplicable},
		{name: "Bool JSON boolean", doc: allowIf(`"Bool":{"kms:GrantIsForAWSResource":true}`), ctx: one("kms:grantisforawsresource", "true"), want: Allow},
		{name: "Bool missing", doc: allowIf(`"Bool":{"aws:SecureTransport":"false"}`), want: NotApplicable},
		{name: "Bool case-insensitive", doc: allowIf(`"Bool":{"aws:SecureTransport":"True"}`), ctx: one("aws:securetransport", "TRUE"), want: Allow},
		{name: "BoolIfExists missing", doc: allowIf(`"BoolIfExists":{"kms:BypassPolicyLockoutSafetyCheck":"false"}`), want: Allow},
		{name: "Bool request not a boolean", doc: allowIf(`"Bool":{"aws:SecureTransport":"true"}`), ctx: one("aws:securetransport", "yes"), want: NotApplicable},
		// IP
		{name: "IpAddress in range", doc: allowIf(`"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}`), ctx: one("aws:sourceip", "203.0.113.7"), want: Allow},
		{name: "IpAddress out of range", doc: allowIf(`"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}`), ctx: one("aws:sourceip", "198.51.100.1"), want: NotApplicable},
		{name: "IpAddress single address is /32", doc: allowIf(`"IpAddress":{"aws:SourceIp":"203.0.113.7"}`), ctx: one("aws:sourceip", "203.0.113.7"), want: Allow},
		{name: "IpAddress single address other", doc: allowIf(`"IpAddress":{"aws:SourceIp":"203.0.113.7"}`), ctx: one("aws:sourceip", "203.0.113.8"), want: NotApplicable},
		{name: "IpAddress IPv6", doc: allowIf(`"IpAddress":{"aws:SourceIp":"2001:DB8:1234:5678::/64"}`), ctx: one("aws:sourceip", "2001:db8:1234:5678::1"), want: Allow},
		{name: "IpAddress IPv6 out of range", doc: allowIf(`"IpAddress":{"aws:SourceIp":"2001:DB8:1234:5678::/64"}`), ctx: one("aws:sourceip", "2001:db8:1234:5679::1"), want: NotApplicable},
		{name: "IpAddress mixed list", doc: allowIf(`"IpAddress":{"aws:SourceIp":["203.0.113.0/24","2001:DB8:1234:5678::/64"]}`), ctx: one("aws:sourceip", "2001:db8:1234:5678::abcd"), want: Allow},
		{name: "IpAddress IPv4-mapped request", doc: allowIf(`"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}`), ctx: one("aws:sourceip", "::ffff:203.0.113.9"), want: Allow},
		{name: "IpAddress unmasked CIDR", doc: allowIf(`"IpAddress":{"aws:SourceIp":"10.1.2.3/8"}`), ctx: one("aws:sourceip", "10.200.0.1"), want: Allow},
		{name: "NotIpAddress outside", doc: allowIf(`"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}`), ctx: one("aws:sourceip", "192.168.1.1"), want: Allow},
		{name: "NotIpAddress inside", doc: allowIf(`"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}`), ctx: one("aws:sourceip", "10.1.2.3"), want: NotApplicable},
		{name: "IpAddress missing", doc: allowIf(`"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}`), want: NotApplicable},
		{name: "NotIpAddress missing", doc: allowIf(`"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}`), want: Allow},
		// ARN
		{name: "ArnEquals exact", doc: allowIf(`"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/Admin"}`), ctx: one("aws:principalarn", "arn:aws:iam::111122223333:role/Admin"), want: Allow},
		{name: "ArnLike wildcard resource part", doc: allowIf(`"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/*"}`), ctx: one("aws:principalarn", "arn:aws:iam::111122223333:role/Admin"), want: Allow},
		{name: "ArnLike star stays within a component", doc: allowIf(`"ArnLike":{"aws:SourceArn":"arn:aws:someservice:*:111122223333:finance/*"}`), ctx: one("aws:sourcearn", "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"), want: NotApplicable},
		{name: "StringLike star crosses colons", doc: allowIf(`"StringLike":{"aws:SourceArn":"arn:aws:someservice:*:111122223333:finance/*"}`), ctx: one("aws:sourcearn", "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"), want: Allow},
		{name: "ArnNotEquals different", doc: allowIf(`"ArnNotEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/Admin"}`), ctx: one("aws:principalarn", "arn:aws:iam::111122223333:user/alice"), want: Allow},
		{name: "ArnNotLike matching", doc: allowIf(`"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:*"}`), ctx: one("aws:principalarn", "arn:aws:iam::111122223333:user/alice"), want: NotApplicable},
		{name: "ArnLike request not an ARN", doc: allowIf(`"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:*"}`), ctx: one("aws:principalarn", "alice"), want: NotApplicable},
		{name: "ArnLike missing", doc: allowIf(`"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:*"}`), want: NotApplicable},
		{name: "ArnNotLike missing", doc: allowIf(`"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:*"}`), want: Allow},
		{name: "ArnLike case-sensitive", doc: allowIf(`"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/Alice"}`), ctx: one("aws:principalarn", "arn:aws:iam::111122223333:user/alice"), want: NotApplicable},
		// Null
		{name: "Null true and key missing", doc: allowIf(`"Null":{"kms:EncryptionContextKeys":"true"}`), want: Allow},
		{name: "Null true and key present", doc: allowIf(`"Null":{"kms:EncryptionContextKeys":"true"}`), ctx: many("kms:encryptioncontextkeys", "a"), want: NotApplicable},
		{name: "Null false and key present", doc: allowIf(`"Null":{"kms:EncryptionContextKeys":false}`), ctx: many("kms:encryptioncontextkeys", "a"), want: Allow},
		{name: "Null false and key missing", doc: allowIf(`"Null":{"kms:EncryptionContextKeys":"false"}`), want: NotApplicable},
		{name: "Null true and key empty", doc: allowIf(`"Null":{"kms:EncryptionContextKeys":"true"}`), ctx: many("kms:encryptioncontextkeys"), want: Allow},
		// IfExists
		{name: "StringEqualsIfExists missing", doc: allowIf(`"StringEqualsIfExists":{"kms:ViaService":"s3.us-east-1.amazonaws.com"}`), want: Allow},
		{name: "StringEqualsIfExists present mismatch", doc: allowIf(`"StringEqualsIfExists":{"kms:ViaService":"s3.us-east-1.amazonaws.com"}`), ctx: one("kms:viaservice", "ec2.us-east-1.amazonaws.com"), want: NotApplicable},
		{name: "StringEqualsIfExists present match", doc: allowIf(`"StringEqualsIfExists":{"kms:ViaService":"s3.us-east-1.amazonaws.com"}`), ctx: one("kms:viaservice", "s3.us-east-1.amazonaws.com"), want: Allow},
		{name: "StringNotEqualsIfExists missing", doc: allowIf(`"StringNotEqualsIfExists":{"kms:ViaService":"s3.us-east-1.amazonaws.com"}`), want: Allow},
		{name: "StringNotEqualsIfExists present equal", doc: allowIf(`"StringNotEqualsIfExists":{"kms:ViaService":"s3.us-east-1.amazonaws.com"}`), ctx: one("kms:viaservice", "s3.us-east-1.amazonaws.com"), want: NotApplicable},
		{name: "NumericLessThanIfExists missing", doc: allowIf(`"NumericLessThanIfExists":{"kms:RotationPeriodInDays":"100"}`), want: Allow},
		{name: "NumericLessThanIfExists present too big", doc: allowIf(`"NumericLessThanIfExists":{"kms:RotationPeriodInDays":"100"}`), ctx: one("kms:rotationperiodindays", "365"), want: NotApplicable},
		{name: "ArnLikeIfExists missing", doc: allowIf(`"ArnLikeIfExists":{"aws:PrincipalArn":"arn:aws:iam::*:role/*"}`), want: Allow},
		{name: "IpAddressIfExists present outside", doc: allowIf(`"IpAddressIfExists":{"aws:SourceIp":"10.0.0.0/8"}`), ctx: one("aws:sourceip", "192.0.2.1"), want: NotApplicable},
		{name: "DateLessThanIfExists missing", doc: allowIf(`"DateLessThanIfExists":{"kms:ValidTo":"2030-01-01T00:00:00Z"}`), want: Allow},
		{name: "StringLikeIfExists present match", doc: allowIf(`"StringLikeIfExists":{"kms:RequestAlias":"alias/app-*"}`), ctx: one("kms:requestalias", "alias/app-prod"), want: Allow},
		// Set operators
		{name: "ForAnyValue one matches", doc: allowIf(`"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":"Dept"}`), ctx: many("kms:encryptioncontextkeys", "Dept", "Project"), want: Allow},
		{name: "ForAnyValue none matches", doc: allowIf(`"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":"Dept"}`), ctx: many("kms:encryptioncontextkeys", "Team", "Project"), want: NotApplicable},
		{name: "ForAnyValue missing is false", doc: allowIf(`"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":"Dept"}`), want: NotApplicable},
		{name: "ForAnyValue empty set is false", doc: allowIf(`"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":"Dept"}`), ctx: many("kms:encryptioncontextkeys"), want: NotApplicable},
		{name: "ForAllValues subset", doc: allowIf(`"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["Dept","Project"]}`), ctx: many("kms:encryptioncontextkeys", "Dept"), want: Allow},
		{name: "ForAllValues one outside", doc: allowIf(`"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["Dept","Project"]}`), ctx: many("kms:encryptioncontextkeys", "Dept", "Other"), want: NotApplicable},
		{name: "ForAllValues missing is true", doc: allowIf(`"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["Dept","Project"]}`), want: Allow},
		{name: "ForAllValues empty set is true", doc: allowIf(`"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["Dept","Project"]}`), ctx: many("kms:encryptioncontextkeys"), want: Allow},
		{name: "ForAllValues StringLike", doc: allowIf(`"ForAllValues:StringLike":{"aws:TagKeys":"Created*"}`), ctx: many("aws:tagkeys", "CreatedBy", "CreatedAt"), want: Allow},
		{name: "ForAnyValue StringNotEquals some other", doc: allowIf(`"ForAnyValue:StringNotEquals":{"aws:TagKeys":"a"}`), ctx: many("aws:tagkeys", "a", "b"), want: Allow},
		{name: "ForAnyValue StringNotEquals all equal", doc: allowIf(`"ForAnyValue:StringNotEquals":{"aws:TagKeys":"a"}`), ctx: many("aws:tagkeys", "a"), want: NotApplicable},
		{name: "ForAllValues StringNotEquals none listed", doc: allowIf(`"ForAllValues:StringNotEquals":{"aws:TagKeys":["a","b"]}`), ctx: many("aws:tagkeys", "c", "d"), want: Allow},
		{name: "ForAllValues StringNotEquals one listed", doc: allowIf(`"ForAllValues:StringNotEquals":{"aws:TagKeys":["a","b"]}`), ctx: many("aws:tagkeys", "c", "a"), want: NotApplicable},
		{name: "ForAnyValue IfExists missing", doc: allowIf(`"ForAnyValue:StringEqualsIfExists":{"aws:TagKeys":"a"}`), want: Allow},
		{name: "ForAllValues GrantOperations subset", doc: allowIf(`"ForAllValues:StringEquals":{"kms:GrantOperations":["Decrypt","Encrypt"]}`), ctx: many("kms:grantoperations", "Decrypt"), want: Allow},
		{name: "ForAllValues GrantOperations extra", doc: allowIf(`"ForAllValues:StringEquals":{"kms:GrantOperations":["Decrypt","Encrypt"]}`), ctx: many("kms:grantoperations", "Decrypt", "ReEncryptFrom"), want: NotApplicable},
		{name: "ForAnyValue StringEqualsIgnoreCase", doc: allowIf(`"ForAnyValue:StringEqualsIgnoreCase":{"kms:ResourceAliases":"alias/PROD"}`), ctx: many("kms:resourcealiases", "alias/dev", "alias/prod"), want: Allow},
		{name: "ForAnyValue ArnLike", doc: allowIf(`"ForAnyValue:ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/*"}`), ctx: many("aws:principalarn", "arn:aws:iam::111122223333:user/x", "arn:aws:iam::111122223333:role/y"), want: Allow},
		{name: "unqualified operator on several values acts as any", doc: allowIf(`"StringEquals":{"aws:TagKeys":"b"}`), ctx: many("aws:tagkeys", "a", "b"), want: Allow},
		{name: "unqualified negated operator on several values", doc: allowIf(`"StringNotEquals":{"aws:TagKeys":"b"}`), ctx: many("aws:tagkeys", "a", "b"), want: NotApplicable},
		// Several keys and operators are ANDed
		{name: "two keys both match", doc: allowIf(`"StringEquals":{"kms:EncryptionContext:a":"1","kms:EncryptionContext:b":"2"}`), ctx: ctx{"kms:encryptioncontext:a": {"1"}, "kms:encryptioncontext:b": {"2"}}, want: Allow},
		{name: "two keys one mismatch", doc: allowIf(`"StringEquals":{"kms:EncryptionContext:a":"1","kms:EncryptionContext:b":"2"}`), ctx: ctx{"kms:encryptioncontext:a": {"1"}, "kms:encryptioncontext:b": {"3"}}, want: NotApplicable},
		{name: "two operators both hold", doc: allowIf(`"StringEquals":{"kms:CallerAccount":"111122223333"},"Bool":{"aws:SecureTransport":"true"}`), ctx: ctx{"kms:calleraccount": {acctA}, "aws:securetransport": {"true"}}, want: Allow},
		{name: "two operators one fails", doc: allowIf(`"StringEquals":{"kms:CallerAccount":"111122223333"},"Bool":{"aws:SecureTransport":"true"}`), ctx: ctx{"kms:calleraccount": {acctA}, "aws:securetransport": {"false"}}, want: NotApplicable},
		{name: "encryption context key part case-insensitive", doc: allowIf(`"StringEquals":{"kms:EncryptionContext:Department":"IT"}`), ctx: ctx{"kms:encryptioncontext:DEPARTMENT": {"IT"}}, want: Allow},
		// Policy variables
		{name: "variable resolves", doc: allowIf(`"StringEquals":{"kms:EncryptionContext:owner":"${aws:username}"}`), ctx: ctx{"kms:encryptioncontext:owner": {"alice"}, "aws:username": {"alice"}}, want: Allow},
		{name: "variable differs", doc: allowIf(`"StringEquals":{"kms:EncryptionContext:owner":"${aws:username}"}`), ctx: ctx{"kms:encryptioncontext:owner": {"bob"}, "aws:username": {"alice"}}, want: NotApplicable},
		{name: "unresolved variable voids the statement", doc: allowIf(`"StringNotEquals":{"kms:EncryptionContext:owner":"${aws:username}"}`), ctx: ec("owner", "bob"), want: NotApplicable},
		{name: "variable default", doc: allowIf(`"StringEquals":{"kms:EncryptionContext:owner":"${aws:username, 'nobody'}"}`), ctx: ec("owner", "nobody"), want: Allow},
		{name: "variable name case-insensitive", doc: allowIf(`"StringEquals":{"kms:EncryptionContext:owner":"${AWS:UserName}"}`), ctx: ctx{"kms:encryptioncontext:owner": {"alice"}, "aws:username": {"alice"}}, want: Allow},
		{name: "2008 version has no variables", doc: `{"Version":"2008-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:owner":"${aws:username}"}}}}`, ctx: ctx{"kms:encryptioncontext:owner": {"${aws:username}"}, "aws:username": {"alice"}}, want: Allow},
		{name: "variable escape star is literal", doc: allowIf(`"StringLike":{"kms:EncryptionContext:p":"a${*}"}`), ctx: ec("p", "a*"), want: Allow},
		{name: "variable escape star is not a wildcard", doc: allowIf(`"StringLike":{"kms:EncryptionContext:p":"a${*}"}`), ctx: ec("p", "ab"), want: NotApplicable},
		{name: "variable value star is not a wildcard", doc: allowIf(`"StringLike":{"kms:EncryptionContext:p":"${aws:username}"}`), ctx: ctx{"kms:encryptioncontext:p": {"alice"}, "aws:username": {"*"}}, want: NotApplicable},
		{name: "variable in StringLike with wildcard", doc: allowIf(`"StringLike":{"kms:EncryptionContext:path":"home/${aws:username}/*"}`), ctx: ctx{"kms:encryptioncontext:path": {"home/alice/x"}, "aws:username": {"alice"}}, want: Allow},
		{name: "variable in Resource", doc: doc(st("Allow", anyP, allKMS, `"Resource":"arn:aws:kms:us-east-1:111122223333:key/${aws:PrincipalTag/key}"`)), ctx: ctx{"aws:principaltag/key": {"1234abcd-12ab-34cd-56ef-1234567890ab"}}, want: Allow},
		{name: "variable in Resource unresolved", doc: doc(st("Allow", anyP, allKMS, `"Resource":"arn:aws:kms:us-east-1:111122223333:key/${aws:PrincipalTag/key}"`)), want: NotApplicable},
		// Actions
		{name: "kms:* any action", doc: doc(st("Allow", anyP, allKMS, anyRes)), action: "kms:ScheduleKeyDeletion", want: Allow},
		{name: "kms:Generate* prefix", doc: doc(st("Allow", anyP, `"Action":"kms:Generate*"`, anyRes)), action: "kms:GenerateDataKeyWithoutPlaintext", want: Allow},
		{name: "kms:Generate* other action", doc: doc(st("Allow", anyP, `"Action":"kms:Generate*"`, anyRes)), action: "kms:Encrypt", want: NotApplicable},
		{name: "action case-insensitive", doc: doc(st("Allow", anyP, `"Action":"KMS:encrypt"`, anyRes)), action: "kms:Encrypt", want: Allow},
		{name: "action wildcard case-insensitive", doc: doc(st("Allow", anyP, `"Action":"kms:generate*"`, anyRes)), action: "kms:GenerateMac", want: Allow},
		{name: "action star", doc: doc(st("Allow", anyP, `"Action":"*"`, anyRes)), action: "kms:Decrypt", want: Allow},
		{name: "action list", doc: doc(st("Allow", anyP, `"Action":["kms:Encrypt","kms:Decrypt"]`, anyRes)), action: "kms:Decrypt", want: Allow},
		{name: "action list miss", doc: doc(st("Allow", anyP, `"Action":["kms:Encrypt","kms:Decrypt"]`, anyRes)), action: "kms:ReEncryptFrom", want: NotApplicable},
		{name: "action ReEncrypt*", doc: doc(st("Allow", anyP, `"Action":"kms:ReEncrypt*"`, anyRes)), action: "kms:ReEncryptTo", want: Allow},
		{name: "action question mark", doc: doc(st("Allow", anyP, `"Action":"kms:?ncrypt"`, anyRes)), action: "kms:Encrypt", want: Allow},
		{name: "other service action", doc: doc(st("Allow", anyP, `"Action":"s3:*"`, anyRes)), action: "kms:Encrypt", want: NotApplicable},
		{name: "service prefix must match whole", doc: doc(st("Allow", anyP, `"Action":"km:*"`, anyRes)), action: "kms:Encrypt", want: NotApplicable},
		{name: "NotAction other action", doc: doc(st("Allow", anyP, `"NotAction":"kms:Decrypt"`, anyRes)), action: "kms:Encrypt", want: Allow},
		{name: "NotAction listed action", doc: doc(st("Allow", anyP, `"NotAction":"kms:Decrypt"`, anyRes)), action: "kms:Decrypt", want: NotApplicable},
		{name: "NotAction wildcard", doc: doc(st("Allow", anyP, `"NotAction":["kms:*Key*"]`, anyRes)), action: "kms:Encrypt", want: Allow},
		{name: "NotAction wildcard listed", doc: doc(st("Allow", anyP, `"NotAction":["kms:*Key*"]`, anyRes)), action: "kms:DescribeKey", want: NotApplicable},
		{name: "NotAction case-insensitive", doc: doc(st("Allow", anyP, `"NotAction":"KMS:DECRYPT"`, anyRes)), action: "kms:Decrypt", want: NotApplicable},
		// Resources
		{name: "Resource exact key ARN", doc: doc(st("Allow", anyP, allKMS, `"Resource":"`+keyARN+`"`)), want: Allow},
		{name: "Resource other key", doc: doc(st("Allow", anyP, allKMS, `"Resource":"`+keyB+`"`)), want: NotApplicable},
		{name: "Resource region wildcard", doc: doc(st("Allow", anyP, allKMS, `"Resource":"arn:aws:kms:*:111122223333:key/*"`)), want: Allow},
		{name: "Resource other account", doc: doc(st("Allow", anyP, allKMS, `"Resource":"arn:aws:kms:us-east-1:444455556666:key/*"`)), want: NotApplicable},
		{name: "Resource question marks", doc: doc(st("Allow", anyP, allKMS, `"Resource":"arn:aws:kms:us-east-1:111122223333:key/1234????-*"`)), want: Allow},
		{name: "Resource is case-sensitive", doc: doc(st("Allow", anyP, allKMS, `"Resource":"arn:aws:kms:us-east-1:111122223333:key/1234ABCD-12ab-34cd-56ef-1234567890ab"`)), want: NotApplicable},
		{name: "Resource alias pattern does not match key", doc: doc(st("Allow", anyP, allKMS, `"Resource":"arn:aws:kms:us-east-1:111122223333:alias/*"`)), want: NotApplicable},
		{name: "NotResource other key", doc: doc(st("Allow", anyP, allKMS, `"NotResource":"`+keyB+`"`)), want: Allow},
		{name: "NotResource the key", doc: doc(st("Allow", anyP, allKMS, `"NotResource":"`+keyARN+`"`)), want: NotApplicable},
		{name: "NotResource star", doc: doc(st("Allow", anyP, allKMS, `"NotResource":"*"`)), want: NotApplicable},
		{name: "Resource star with no resource", doc: doc(st("Allow", anyP, allKMS, anyRes)), action: "kms:ListKeys", resource: "*", want: Allow},
		{name: "Resource key pattern with no resource", doc: doc(st("Allow", anyP, allKMS, `"Resource":"arn:aws:kms:*:*:key/*"`)), action: "kms:ListKeys", resource: "*", want: NotApplicable},
		{name: "statement without Action is ineffective", doc: doc(st("Allow", anyP, anyRes)), want: NotApplicable},
		{name: "statement without Resource is ineffective", doc: doc(st("Allow", anyP, allKMS)), want: NotApplicable},
		// Principals
		{name: "Principal star string", doc: doc(st("Allow", anyP, allKMS, anyRes)), want: Allow},
		{name: "Principal AWS star", doc: doc(st("Allow", `"Principal":{"AWS":"*"}`, allKMS, anyRes)), principal: bob, want: Allow},
		{name: "Principal bare account id", doc: doc(st("Allow", `"Principal":{"AWS":"111122223333"}`, allKMS, anyRes)), want: Allow, delegated: true},
		{name: "Principal account root", doc: doc(st("Allow", `"Principal":{"AWS":"arn:aws:iam::111122223333:root"}`, allKMS, anyRes)), want: Allow, delegated: true},
		{name: "Principal other account root", doc: doc(st("Allow", `"Principal":{"AWS":"arn:aws:iam::444455556666:root"}`, allKMS, anyRes)), want: NotApplicable},
		{name: "Principal user ARN", doc: doc(st("Allow", `"Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"}`, allKMS, anyRes)), want: Allow},
		{name: "Principal other user", doc: doc(st("Allow", `"Principal":{"AWS":"arn:aws:iam::111122223333:user/carol"}`, allKMS, anyRes)), want: NotApplicable},
		{name: "Principal user ARN is case-sensitive", doc: doc(st("Allow", `"Principal":{"AWS":"arn:aws:iam::111122223333:user/Alice"}`, allKMS, anyRes)), want: NotApplicable},
		{name: "Principal role names its sessions", doc: doc(st("Allow", `"Principal":{"AWS":"arn:aws:iam::111122223333:role/Admin"}`, allKMS, anyRes)), principal: session, want: Allow},
		{name: "Principal role with path", doc: doc(st("Allow", `"Principal":{"AWS":"arn:aws:iam::111122223333:role/team/Ops"}`, allKMS, anyRes)), principal: pathSession, want: Allow},
		{name: "Principal other role", doc: doc(st("Allow", `"Principal":{"AWS":"arn:aws:iam::111122223333:role/Other"}`, allKMS, anyRes)), principal: session, want: NotApplicable},
		{name: "Principal assumed-role session", doc: doc(st("Allow", `"Principal":{"AWS":"arn:aws:sts::111122223333:assumed-role/Admin/s1"}`, allKMS, anyRes)), principal: session, want: Allow},
		{name: "Principal other session", doc: doc(st("Allow", `"Principal":{"AWS":"arn:aws:sts::111122223333:assumed-role/Admin/s9"}`, allKMS, anyRes)), principal: session, want: NotApplicable},
		{name: "Principal list", doc: doc(st("Allow", `"Principal":{"AWS":["arn:aws:iam::111122223333:user/carol","arn:aws:iam::111122223333:user/alice"]}`, allKMS, anyRes)), want: Allow},
		{name: "Principal account root and user prefers direct", doc: doc(st("Allow", `"Principal":{"AWS":["111122223333","arn:aws:iam::111122223333:user/alice"]}`, allKMS, anyRes)), want: Allow},
		{name: "Principal service", doc: doc(st("Allow", `"Principal":{"Service":"logs.amazonaws.com"}`, allKMS, anyRes)), principal: logsSvc, want: Allow},
		{name: "Principal service does not name users", doc: doc(st("Allow", `"Principal":{"Service":"logs.amazonaws.com"}`, allKMS, anyRes)), want: NotApplicable},
		{name: "Principal AWS star does not name services", doc: doc(st("Allow", `"Principal":{"AWS":"*"}`, allKMS, anyRes)), principal: logsSvc, want: NotApplicable},
		{name: "Principal star names services", doc: doc(st("Allow", anyP, allKMS, anyRes)), principal: logsSvc, want: Allow},
		{name: "Principal account does not name other accounts' users", doc: doc(st("Allow", `"Principal":{"AWS":"111122223333"}`, allKMS, anyRes)), principal: bob, want: NotApplicable},
		{name: "Principal AWS and Service", doc: doc(st("Allow", `"Principal":{"AWS":"arn:aws:iam::111122223333:user/carol","Service":"logs.amazonaws.com"}`, allKMS, anyRes)), principal: logsSvc, want: Allow},
		// NotPrincipal
		{name: "Deny NotPrincipal exempts listed user with account", doc: doc(st("Allow", anyP, allKMS, anyRes), st("Deny", `"NotPrincipal":{"AWS":["arn:aws:iam::111122223333:root","arn:aws:iam::111122223333:user/alice"]}`, allKMS, anyRes)), want: Allow, wantStmt: 1},
		{name: "Deny NotPrincipal denies other user", doc: doc(st("Allow", anyP, allKMS, anyRes), st("Deny", `"NotPrincipal":{"AWS":["arn:aws:iam::111122223333:root","arn:aws:iam::111122223333:user/alice"]}`, allKMS, anyRes)), principal: carol, want: ExplicitDeny, wantStmt: 2},
		{name: "Deny NotPrincipal without the account denies the user", doc: doc(st("Allow", anyP, allKMS, anyRes), st("Deny", `"NotPrincipal":{"AWS":"arn:aws:iam::111122223333:user/alice"}`, allKMS, anyRes)), want: ExplicitDeny},
		{name: "Deny NotPrincipal account exempts root", doc: doc(st("Allow", anyP, allKMS, anyRes), st("Deny", `"NotPrincipal":{"AWS":"111122223333"}`, allKMS, anyRes)), principal: rootA, want: Allow},
		{name: "Deny NotPrincipal account alone does not exempt users", doc: doc(st("Allow", anyP, allKMS, anyRes), st("Deny", `"NotPrincipal":{"AWS":"111122223333"}`, allKMS, anyRes)), want: ExplicitDeny},
		{name: "Deny NotPrincipal role and account exempt the session", doc: doc(st("Allow", anyP, allKMS, anyRes), st("Deny", `"NotPrincipal":{"AWS":["arn:aws:iam::111122223333:root","arn:aws:iam::111122223333:role/Admin"]}`, allKMS, anyRes)), principal: session, want: Allow},
		{name: "Deny NotPrincipal star exempts all", doc: doc(st("Allow", anyP, allKMS, anyRes), st("Deny", `"NotPrincipal":{"AWS":"*"}`, allKMS, anyRes)), principal: bob, want: Allow},
		{name: "Deny NotPrincipal other account's user", doc: doc(st("Allow", anyP, allKMS, anyRes), st("Deny", `"NotPrincipal":{"AWS":["arn:aws:iam::111122223333:root","arn:aws:iam::111122223333:user/alice"]}`, allKMS, anyRes)), principal: bob, want: ExplicitDeny},
		{name: "Allow NotPrincipal everyone else", doc: doc(st("Allow", `"NotPrincipal":{"AWS":["arn:aws:iam::444455556666:root","arn:aws:iam::444455556666:user/bob"]}`, allKMS, anyRes)), want: Allow},
		{name: "Allow NotPrincipal listed", doc: doc(st("Allow", `"NotPrincipal":{"AWS":["arn:aws:iam::444455556666:root","arn:aws:iam::444455556666:user/bob"]}`, allKMS, anyRes)), principal: bob, want: NotApplicable},
		// Explicit deny beats allow
		{name: "deny beats allow", doc: doc(st("Allow", anyP, allKMS, anyRes), st("Deny", anyP, `"Action":"kms:Decrypt"`, anyRes)), action: "kms:Decrypt", want: ExplicitDeny, wantStmt: 2},
		{name: "deny for other action leaves allow", doc: doc(st("Allow", anyP, allKMS, anyRes), st("Deny", anyP, `"Action":"kms:Decrypt"`, anyRes)), action: "kms:Encrypt", want: Allow, wantStmt: 1},
		{name: "deny condition not met", doc: doc(st("Allow", anyP, allKMS, anyRes), st("Deny", anyP, allKMS, anyRes, `"Condition":{"Bool":{"aws:SecureTransport":"false"}}`)), ctx: one("aws:securetransport", "true"), want: Allow},
		{name: "deny condition met", doc: doc(st("Allow", anyP, allKMS, anyRes), st("Deny", anyP, allKMS, anyRes, `"Condition":{"Bool":{"aws:SecureTransport":"false"}}`)), ctx: one("aws:securetransport", "false"), want: ExplicitDeny},
		{name: "deny encryption context mismatch", doc: doc(st("Allow", anyP, allKMS, anyRes), st("Deny", anyP, `"Action":["kms:Encrypt","kms:Decrypt"]`, anyRes, `"Condition":{"StringNotEquals":{"kms:EncryptionContext:Dept":"Finance"}}`)), ctx: ec("dept", "HR"), want: ExplicitDeny},
		{name: "deny encryption context missing", doc: doc(st("Allow", anyP, allKMS, anyRes), st("Deny", anyP, `"Action":["kms:Encrypt","kms:Decrypt"]`, anyRes, `"Condition":{"StringNotEquals":{"kms:EncryptionContext:Dept":"Finance"}}`)), want: ExplicitDeny},
		{name: "deny encryption context match", doc: doc(st("Allow", anyP, allKMS, anyRes), st("Deny", anyP, `"Action":["kms:Encrypt","kms:Decrypt"]`, anyRes, `"Condition":{"StringNotEquals":{"kms:EncryptionContext:Dept":"Finance"}}`)), ctx: ec("dept", "Finance"), want: Allow},
		{name: "deny first statement", doc: doc(st("Deny", anyP, allKMS, anyRes), st("Allow", anyP, allKMS, anyRes)), want: ExplicitDeny, wantStmt: 1},
		{name: "direct allow preferred over delegated", doc: doc(st("Allow", `"Principal":{"AWS":"111122223333"}`, allKMS, anyRes), st("Allow", `"Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"}`, allKMS, anyRes)), want: Allow, wantStmt: 2},
		{name: "empty condition block", doc: doc(st("Allow", anyP, allKMS, anyRes, `"Condition":{}`)), want: Allow},
	}
}

func TestEvaluateTable(t *testing.T) {
	t.Parallel()
	cases := evalCases()
	seen := map[string]bool{}
	for _, tc := range cases {
		if seen[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := Parse(tc.doc)
			if err != nil {
				t.Fatalf("Parse: %v\n%s", err, tc.doc)
			}
			req := &Request{Principal: tc.principal, Action: tc.action, Resource: tc.resource, Context: tc.ctx}
			if req.Principal == (Principal{}) {
				req.Principal = alice
			}
			if req.Action == "" {
				req.Action = "kms:Encrypt"
			}
			if req.Resource == "" {
				req.Resource = keyARN
			}
			got := p.Evaluate(req)
			if got.Effect != tc.want {
				t.Fatalf("Effect = %v, want %v\n%s", got.Effect, tc.want, tc.doc)
			}
			if tc.wantStmt > 0 && got.Statement != tc.wantStmt-1 {
				t.Errorf("Statement = %d, want %d", got.Statement, tc.wantStmt-1)
			}
			if got.Effect == NotApplicable && got.Statement != -1 {
				t.Errorf("Statement = %d for NotApplicable", got.Statement)
			}
			if got.Delegated != tc.delegated {
				t.Errorf("Delegated = %v, want %v", got.Delegated, tc.delegated)
			}
		})
	}
	if len(cases) < 150 {
		t.Errorf("only %d evaluation cases", len(cases))
	}
	t.Logf("%d evaluation cases", len(cases))
}

func TestEvaluateReportsSid(t *testing.T) {
	t.Parallel()
	p, err := Parse(doc(`{"Sid":"AllowUse","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}`,
		`{"Sid":"NoDecrypt","Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*"}`))
	if err != nil {
		t.Fatal(err)
	}
	r := p.Evaluate(&Request{Principal: alice, Action: "kms:Decrypt", Resource: keyARN})
	if r.Effect != ExplicitDeny || r.Sid != "NoDecrypt" || r.Statement != 1 {
		t.Fatalf("got %+v", r)
	}
	r = p.Evaluate(&Request{Principal: alice, Action: "kms:Encrypt", Resource: keyARN})
	if r.Effect != Allow || r.Sid != "AllowUse" || r.Statement != 0 {
		t.Fatalf("got %+v", r)
	}
}

// TestConcurrentEvaluate runs one parsed policy from many goroutines; under
// -race it proves a cached *Policy needs no locking.
func TestConcurrentEvaluate(t *testing.T) {
	t.Parallel()
	p, err := Parse(consolePolicy)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	for g := 0; g < 8; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; i < 200; i++ {
				req := &Request{Principal: alice, Action: "kms:Decrypt", Resource: keyARN,
					Context: ctx{"kms:encryptioncontext:dept": {fmt.Sprint("d", i%3)}, "aws:username": {"alice"}}}
				p.Evaluate(req)
			}
		}()
	}
	for g := 0; g < 8; g++ {
		<-done
	}
}

package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"unicode"
)

// fieldList is an allow-list of the members of a decoded request or
// response that may appear in an audit event, by Go field name; a dotted
// name reaches into a nested struct ("AccessKey.AccessKeyId").
type fieldList []string

// auditFields lists, per operation, what requestParameters and
// responseElements keep. It is an allow-list on purpose: a member added to
// a request or response type later is left out of the audit trail until
// someone decides it is safe. Plaintexts, data keys, ciphertext blobs,
// messages, signatures, MACs, grant tokens, import tokens, wrapped key
// material and secrets are never listed; key ids, algorithms, encryption
// contexts and grant ids are. A test checks that every name resolves and
// that no []byte member is listed (renderFields refuses them anyway).
var auditFields = map[string]struct{ request, response fieldList }{
	"CreateKey": {
		fieldList{"Description", "KeyUsage", "CustomerMasterKeySpec", "KeySpec", "Origin", "CustomKeyStoreId",
			"BypassPolicyLockoutSafetyCheck", "Tags", "MultiRegion", "Policy"},
		fieldList{"KeyMetadata"},
	},
	"DescribeKey":                     {fieldList{"KeyId"}, nil},
	"ListKeys":                        {fieldList{"Limit", "Marker"}, nil},
	"UpdateKeyDescription":            {fieldList{"KeyId", "Description"}, nil},
	"Encrypt":                         {fieldList{"KeyId", "EncryptionContext", "EncryptionAlgorithm", "DryRun"}, nil},
	"Decrypt":                         {fieldList{"KeyId", "EncryptionContext", "EncryptionAlgorithm", "DryRun"}, nil},
	"ReEncrypt":                       {fieldList{"SourceKeyId", "DestinationKeyId", "SourceEncryptionContext", "DestinationEncryptionContext", "SourceEncryptionAlgorithm", "DestinationEncryptionAlgorithm", "DryRun"}, nil},
	"GenerateDataKey":                 {fieldList{"KeyId", "EncryptionContext", "NumberOfBytes", "KeySpec", "DryRun"}, nil},
	"GenerateDataKeyWithoutPlaintext": {fieldList{"KeyId", "EncryptionContext", "NumberOfBytes", "KeySpec", "DryRun"}, nil},
	"GenerateRandom":                  {fieldList{"NumberOfBytes", "CustomKeyStoreId"}, nil},
	"EnableKey":                       {fieldList{"KeyId"}, nil},
	"DisableKey":                      {fieldList{"KeyId"}, nil},
	"ScheduleKeyDeletion":             {fieldList{"KeyId", "PendingWindowInDays"}, fieldList{"KeyId", "DeletionDate", "KeyState", "PendingWindowInDays"}},
	"CancelKeyDeletion":               {fieldList{"KeyId"}, fieldList{"KeyId"}},
	"CreateAlias":                     {fieldList{"AliasName", "TargetKeyId"}, nil},
	"UpdateAlias":                     {fieldList{"AliasName", "TargetKeyId"}, nil},
	"DeleteAlias":                     {fieldList{"AliasName"}, nil},
	"ListAliases":                     {fieldList{"KeyId", "Limit", "Marker"}, nil},
	"TagResource":                     {fieldList{"KeyId", "Tags"}, nil},
	"UntagResource":                   {fieldList{"KeyId", "TagKeys"}, nil},
	"ListResourceTags":                {fieldList{"KeyId", "Limit", "Marker"}, nil},
	"EnableKeyRotation":               {fieldList{"KeyId", "RotationPeriodInDays"}, nil},
	"DisableKeyRotation":              {fieldList{"KeyId"}, nil},
	"GetKeyRotationStatus":            {fieldList{"KeyId"}, nil},
	"RotateKeyOnDemand":               {fieldList{"KeyId"}, fieldList{"KeyId"}},
	"ListKeyRotations":                {fieldList{"KeyId", "IncludeKeyMaterial", "Limit", "Marker"}, nil},
	"GetParametersForImport":          {fieldList{"KeyId", "WrappingAlgorithm", "WrappingKeySpec"}, fieldList{"KeyId", "ParametersValidTo"}},
	"ImportKeyMaterial":               {fieldList{"KeyId", "ValidTo", "ExpirationModel", "ImportType", "KeyMaterialDescription", "KeyMaterialId"}, fieldList{"KeyId", "KeyMaterialId"}},
	"DeleteImportedKeyMaterial":       {fieldList{"KeyId", "KeyMaterialId"}, fieldList{"KeyId", "KeyMaterialId"}},

	"Sign":                                {fieldList{"KeyId", "MessageType", "SigningAlgorithm", "DryRun"}, nil},
	"Verify":                              {fieldList{"KeyId", "MessageType", "SigningAlgorithm", "DryRun"}, fieldList{"SignatureValid"}},
	"GetPublicKey":                        {fieldList{"KeyId"}, nil},
	"GenerateMac":                         {fieldList{"KeyId", "MacAlgorithm", "DryRun"}, nil},
	"VerifyMac":                           {fieldList{"KeyId", "MacAlgorithm", "DryRun"}, fieldList{"MacValid"}},
	"GenerateDataKeyPair":                 {fieldList{"KeyId", "EncryptionContext", "KeyPairSpec", "DryRun"}, fieldList{"KeyPairSpec"}},
	"GenerateDataKeyPairWithoutPlaintext": {fieldList{"KeyId", "EncryptionContext", "KeyPairSpec", "DryRun"}, fieldList{"KeyPairSpec"}},

	"GetKeyPolicy":        {fieldList{"KeyId", "PolicyName"}, nil},
	"PutKeyPolicy":        {fieldList{"KeyId", "PolicyName", "Policy", "BypassPolicyLockoutSafetyCheck"}, nil},
	"ListKeyPolicies":     {fieldList{"KeyId", "Limit", "Marker"}, nil},
	"CreateGrant":         {fieldList{"KeyId", "GranteePrincipal", "RetiringPrincipal", "Operations", "Constraints", "Name", "DryRun"}, fieldList{"GrantId"}},
	"ListGrants":          {fieldList{"KeyId", "Limit", "Marker", "GrantId", "GranteePrincipal"}, nil},
	"ListRetirableGrants": {fieldList{"RetiringPrincipal", "Limit", "Marker"}, nil},
	"RetireGrant":         {fieldList{"KeyId", "GrantId", "DryRun"}, nil},
	"RevokeGrant":         {fieldList{"KeyId", "GrantId", "DryRun"}, nil},

	// CloudTrail's AssumeRole record, without the secret access key and
	// the session token.
	"STS.AssumeRole": {fieldList{"RoleArn", "RoleSessionName", "DurationSeconds"},
		fieldList{"AccessKeyId", "Expiration", "AssumedRoleArn", "AssumedRoleId"}},

	adminTargetPrefix + "CreateAccount":        {fieldList{"AccountId", "Name"}, fieldList{"Account.AccountId", "Account.Arn"}},
	adminTargetPrefix + "ListAccounts":         {fieldList{"MaxItems", "Marker"}, nil},
	adminTargetPrefix + "CreateUser":           {fieldList{"AccountId", "UserName", "Tags"}, fieldList{"User.Arn", "User.UserId"}},
	adminTargetPrefix + "DeleteUser":           {fieldList{"AccountId", "UserName"}, nil},
	adminTargetPrefix + "ListUsers":            {fieldList{"AccountId", "MaxItems", "Marker"}, nil},
	adminTargetPrefix + "CreateRole":           {fieldList{"AccountId", "RoleName", "AssumeRolePolicyDocument", "MaxSessionDuration", "Tags"}, fieldList{"Role.Arn", "Role.RoleId"}},
	adminTargetPrefix + "DeleteRole":           {fieldList{"AccountId", "RoleName"}, nil},
	adminTargetPrefix + "ListRoles":            {fieldList{"AccountId", "MaxItems", "Marker"}, nil},
	adminTargetPrefix + "CreateAccessKey":      {fieldList{"AccountId", "UserName"}, fieldList{"AccessKey.AccessKeyId", "AccessKey.Status"}},
	adminTargetPrefix + "DeleteAccessKey":      {fieldList{"AccessKeyId"}, nil},
	adminTargetPrefix + "UpdateAccessKey":      {fieldList{"AccessKeyId", "Status"}, nil},
	adminTargetPrefix + "ListAccessKeys":       {fieldList{"AccountId", "UserName"}, nil},
	adminTargetPrefix + "AttachIdentityPolicy": {fieldList{"PrincipalArn", "PolicyName", "PolicyDocument"}, nil},
	adminTargetPrefix + "DetachIdentityPolicy": {fieldList{"PrincipalArn", "PolicyName"}, nil},
	adminTargetPrefix + "ListIdentityPolicies": {fieldList{"PrincipalArn"}, nil},
	adminTargetPrefix + "TagPrincipal":         {fieldList{"PrincipalArn", "Tags"}, nil},
	adminTargetPrefix + "UntagPrincipal":       {fieldList{"PrincipalArn", "TagKeys"}, nil},
	adminTargetPrefix + "LookupEvents":         {fieldList{"StartTime", "EndTime", "EventName", "KeyId", "Principal", "ErrorCode", "MaxResults", "NextToken"}, nil},
	adminTargetPrefix + "VerifyAuditTrail":     {nil, fieldList{"OK"}},
}

var bytesType = reflect.TypeFor[[]byte]()

// renderFields returns the allowed members of v (a pointer to a decoded
// request or response struct) as CloudTrail-style lowerCamel keys, or nil
// when none is present. Absent (nil) members are left out. []byte members
// are refused whatever the list says: blobs are where plaintexts, keys and
// signatures live.
func renderFields(v any, fields fieldList) map[string]any {
	if v == nil || len(fields) == 0 {
		return nil
	}
	root := reflect.ValueOf(v)
	var out map[string]any
	for _, path := range fields {
		parts := splitPath(path)
		val, ok := fieldByParts(root, parts)
		if !ok || val.Type() == bytesType || isAbsent(val) {
			continue
		}
		raw, err := marshalAuditField(val.Interface())
		if err != nil {
			continue
		}
		if out == nil {
			out = map[string]any{}
		}
		put(out, parts, json.RawMessage(raw))
	}
	return out
}

// maxAuditField bounds one rendered member of an audit event: a key
// policy's AWS limit (32 KB) fits, while a refused request cannot make a
// megabyte event (a 1 MiB policy document was stored whole, six times
// larger with HTML escapes) that fills the disk and every lookup page.
const maxAuditField = 32 << 10

// marshalAuditField encodes a member without HTML escapes; one longer than
// maxAuditField is recorded as its length and SHA-256 instead.
func marshalAuditField(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	raw := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	if len(raw) <= maxAuditField {
		return raw, nil
	}
	sum := sha256.Sum256(raw)
	return json.Marshal(map[string]any{"truncated": true, "length": len(raw), "sha256": hex.EncodeToString(sum[:])})
}

// pathPart is one step of a dotted field path: the Go field name and its
// CloudTrail spelling.
type pathPart struct{ name, key string }

// pathCache holds the split form of every path rendered so far: the
// allow-lists are fixed, so splitting and re-spelling them per request was
// pure waste.
var pathCache sync.Map // string -> []pathPart

func splitPath(path string) []pathPart {
	if p, ok := pathCache.Load(path); ok {
		return p.([]pathPart)
	}
	names := strings.Split(path, ".")
	parts := make([]pathPart, len(names))
	for i, n := range names {
		parts[i] = pathPart{name: n, key: lowerCamel(n)}
	}
	pathCache.Store(path, parts)
	return parts
}

// fieldByPath follows a dotted path of exported field names through
// pointers and structs.
func fieldByPath(v reflect.Value, path string) (reflect.Value, bool) {
	return fieldByParts(v, splitPath(path))
}

type fieldKey struct {
	t    reflect.Type
	name string
}

// fieldIndexes caches reflect's field lookup by name, which searches the
// struct's fields (and allocates) on every call.
var fieldIndexes sync.Map // fieldKey -> []int, nil when absent

func fieldByParts(v reflect.Value, parts []pathPart) (reflect.Value, bool) {
	for _, p := range parts {
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}, false
			}
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, false
		}
		k := fieldKey{v.Type(), p.name}
		idx, ok := fieldIndexes.Load(k)
		if !ok {
			var found []int
			if f, ok := k.t.FieldByName(p.name); ok {
				found = f.Index
			}
			idx, _ = fieldIndexes.LoadOrStore(k, found)
		}
		index := idx.([]int)
		if index == nil {
			return reflect.Value{}, false
		}
		// An embedded pointer on the way may be nil: FieldByIndexErr
		// says so instead of panicking.
		f, err := v.FieldByIndexErr(index)
		if err != nil {
			return reflect.Value{}, false
		}
		v = f
	}
	return v, true
}

func isAbsent(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
		return v.IsNil()
	case reflect.String:
		return v.Len() == 0
	case reflect.Int, reflect.Int32, reflect.Int64:
		// Non-pointer numbers are 0 when the request left them out
		// (DurationSeconds, MaxSessionDuration).
		return v.Int() == 0
	}
	return false
}

func put(m map[string]any, path []pathPart, v any) {
	k := path[0].key
	if len(path) == 1 {
		m[k] = v
		return
	}
	sub, ok := m[k].(map[string]any)
	if !ok {
		sub = map[string]any{}
		m[k] = sub
	}
	put(sub, path[1:], v)
}

// lowerCamel turns a Go field name into CloudTrail's member spelling
// (KeyId -> keyId, AWSAccountId -> aWSAccountId is avoided: leading
// capitals are lowered up to the last one before a lower-case letter).
func lowerCamel(s string) string {
	r := []rune(s)
	for i := 0; i < len(r); i++ {
		if !unicode.IsUpper(r[i]) {
			break
		}
		if i > 0 && i+1 < len(r) && unicode.IsLower(r[i+1]) {
			break
		}
		r[i] = unicode.ToLower(r[i])
	}
	return string(r)
}

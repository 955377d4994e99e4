package httpapi

import (
	"strings"

	"hsmkms/kms"
)

// targetPrefix is the X-Amz-Target namespace of KMS operations.
const targetPrefix = "TrentService."

// operationTable is the one list of operations the API serves: the AWS
// operation name (as in X-Amz-Target) to its handler. Adding an operation
// is adding a line here; a test pins the list.
func operationTable(s *kms.Service) map[string]handlerFunc {
	return map[string]handlerFunc{
		"CreateKey":                       op(s.CreateKey),
		"DescribeKey":                     op(s.DescribeKey),
		"ListKeys":                        op(s.ListKeys),
		"UpdateKeyDescription":            op(s.UpdateKeyDescription),
		"Encrypt":                         op(s.Encrypt),
		"Decrypt":                         op(s.Decrypt),
		"ReEncrypt":                       op(s.ReEncrypt),
		"GenerateDataKey":                 op(s.GenerateDataKey),
		"GenerateDataKeyWithoutPlaintext": op(s.GenerateDataKeyWithoutPlaintext),
		"GenerateRandom":                  op(s.GenerateRandom),
		"EnableKey":                       op(s.EnableKey),
		"DisableKey":                      op(s.DisableKey),
		"ScheduleKeyDeletion":             op(s.ScheduleKeyDeletion),
		"CancelKeyDeletion":               op(s.CancelKeyDeletion),
		"CreateAlias":                     op(s.CreateAlias),
		"UpdateAlias":                     op(s.UpdateAlias),
		"DeleteAlias":                     op(s.DeleteAlias),
		"ListAliases":                     op(s.ListAliases),
		"TagResource":                     op(s.TagResource),
		"UntagResource":                   op(s.UntagResource),
		"ListResourceTags":                op(s.ListResourceTags),
		"EnableKeyRotation":               op(s.EnableKeyRotation),
		"DisableKeyRotation":              op(s.DisableKeyRotation),
		"GetKeyRotationStatus":            op(s.GetKeyRotationStatus),
		"RotateKeyOnDemand":               op(s.RotateKeyOnDemand),
		"ListKeyRotations":                op(s.ListKeyRotations),
		"GetParametersForImport":          op(s.GetParametersForImport),
		"ImportKeyMaterial":               op(s.ImportKeyMaterial),
		"DeleteImportedKeyMaterial":       op(s.DeleteImportedKeyMaterial),

		// Key policies and grants.
		"GetKeyPolicy":        op(s.GetKeyPolicy),
		"PutKeyPolicy":        op(s.PutKeyPolicy),
		"ListKeyPolicies":     op(s.ListKeyPolicies),
		"CreateGrant":         op(s.CreateGrant),
		"ListGrants":          op(s.ListGrants),
		"ListRetirableGrants": op(s.ListRetirableGrants),
		"RetireGrant":         op(s.RetireGrant),
		"RevokeGrant":         op(s.RevokeGrant),

		// Asymmetric and HMAC keys.
		"Sign":                                op(s.Sign),
		"Verify":                              op(s.Verify),
		"GetPublicKey":                        op(s.GetPublicKey),
		"GenerateMac":                         op(s.GenerateMac),
		"VerifyMac":                           op(s.VerifyMac),
		"GenerateDataKeyPair":                 op(s.GenerateDataKeyPair),
		"GenerateDataKeyPairWithoutPlaintext": op(s.GenerateDataKeyPairWithoutPlaintext),
	}
}

// lookupOperation resolves an X-Amz-Target header to an operation name and
// handler. A missing header, another service's prefix and an unknown name
// are all UnknownOperationException, as AWS answers.
func (s *server) lookupOperation(target string) (string, handlerFunc, error) {
	if target == "" {
		return "", nil, kms.Errorf(kms.CodeUnknownOperation, "Missing X-Amz-Target header.")
	}
	name, ok := strings.CutPrefix(target, targetPrefix)
	if !ok {
		return "", nil, kms.Errorf(kms.CodeUnknownOperation, "X-Amz-Target must name a %s operation.", strings.TrimSuffix(targetPrefix, "."))
	}
	handle, ok := s.operations[name]
	if !ok {
		return "", nil, kms.Errorf(kms.CodeUnknownOperation, "Unknown operation.")
	}
	return name, handle, nil
}

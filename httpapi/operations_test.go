package httpapi

import (
	"slices"
	"testing"
)

// TestOperationTable pins the operations the API serves.
func TestOperationTable(t *testing.T) {
	t.Parallel()
	want := []string{
		"Sign", "Verify", "GetPublicKey", "GenerateMac", "VerifyMac", "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext",
		"EnableKeyRotation", "DisableKeyRotation", "GetKeyRotationStatus", "RotateKeyOnDemand", "ListKeyRotations", "GetParametersForImport", "ImportKeyMaterial", "DeleteImportedKeyMaterial",
		"CancelKeyDeletion", "CreateAlias", "CreateKey", "Decrypt", "DeleteAlias",
		"DescribeKey", "DisableKey", "EnableKey", "Encrypt", "GenerateDataKey",
		"GenerateDataKeyWithoutPlaintext", "GenerateRandom", "ListAliases", "ListKeys",
		"ListResourceTags", "ReEncrypt", "ScheduleKeyDeletion", "TagResource",
		"UntagResource", "UpdateAlias", "UpdateKeyDescription",
		"GetKeyPolicy", "PutKeyPolicy", "ListKeyPolicies", "CreateGrant", "ListGrants",
		"ListRetirableGrants", "RetireGrant", "RevokeGrant",
	}
	table := operationTable(newTestService(t))
	var got []string
	for name, handle := range table {
		if handle == nil {
			t.Errorf("operation %s has no handler", name)
		}
		got = append(got, name)
	}
	slices.Sort(got)
	slices.Sort(want) // lines are added by several changes; order them here
	if !slices.Equal(got, want) {
		t.Errorf("operations = %v\nwant %v", got, want)
	}
}

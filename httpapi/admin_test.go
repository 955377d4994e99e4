package httpapi

import (
	"maps"
	"slices"
	"testing"
)

// TestAdminOperationTable pins the admin API and the STS actions.
func TestAdminOperationTable(t *testing.T) {
	t.Parallel()
	want := []string{
		"AttachIdentityPolicy", "CreateAccessKey", "CreateAccount", "CreateRole", "CreateUser",
		"DeleteAccessKey", "DeleteRole", "DeleteUser", "DetachIdentityPolicy", "ListAccessKeys",
		"ListAccounts", "ListIdentityPolicies", "ListRoles", "ListUsers", "TagPrincipal",
		"UntagPrincipal", "UpdateAccessKey",
	}
	if got := slices.Sorted(maps.Keys(adminOperationTable(nil))); !slices.Equal(got, want) {
		t.Errorf("admin operations = %v\nwant %v", got, want)
	}
	if got := slices.Sorted(maps.Keys(stsOperationTable(nil))); !slices.Equal(got, []string{"AssumeRole", "GetCallerIdentity"}) {
		t.Errorf("STS actions = %v", got)
	}
}

package kms

// The admin API: accounts, users, roles, access keys, identity policies and
// principal tags. httpapi serves these methods under X-Amz-Target
// "KmsAdmin.<Operation>" (httpapi/admin.go).
//
// Who may call it: the bootstrap admin user, for every account; and, within
// their own account only, principals whose identity policies allow the
// action "kmsadmin:<Operation>" (adminauth.go). CreateAccount and
// ListAccounts span accounts, so only the bootstrap admin may call them.
// Everyone else gets AccessDeniedException in AWS's message shape.

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"hsmkms/kms/policy"
)

// IAM-like limits.
const (
	maxIdentityPolicies     = 10    // inline policies per user or role
	maxIdentityPolicyBytes  = 10240 // IAM's inline role policy size
	maxTrustPolicyBytes     = 2048  // IAM's default trust policy size
	maxAccessKeysPerUser    = 2     // IAM's AccessKeysPerUser quota
	maxTagsPerPrincipal     = 50    // IAM's tags per user or role
	defaultMaxSessionSecond = 3600
	maxMaxSessionSeconds    = 43200
)

// internalAccount (internalkey.go) owns the service's own keys; no real
// account may take its id.

// AdminCreateAccount creates an account.
func (s *Service) AdminCreateAccount(ctx context.Context, in *CreateAccountInput) (*CreateAccountOutput, error) {
	if err := s.authorizeAdmin(ctx, "CreateAccount", "", "*"); err != nil {
		return nil, err
	}
	name, _, err := optionalString("name", in.Name, 0, 256)
	if err != nil {
		return nil, err
	}
	rec := AccountRecord{Name: name, CreatedAt: s.now().UTC()}
	if in.AccountId != nil {
		if !accountIDPattern.MatchString(*in.AccountId) || *in.AccountId == internalAccount {
			return nil, validationf("Value at 'accountId' failed to satisfy constraint: Member must be 12 digits")
		}
		rec.ID = *in.AccountId
		if err := s.store.CreateAccount(ctx, rec); err != nil {
			return nil, storeError(err, "", fmt.Sprintf("Account %s already exists.", rec.ID))
		}
	} else {
		// A random id collides with probability ~n/9e11; retry a few times.
		for i := 0; ; i++ {
			if rec.ID, err = newAccountID(); err != nil {
				return nil, Internal(err)
			}
			err = s.store.CreateAccount(ctx, rec)
			if err == nil || !errors.Is(err, ErrStoreAlreadyExists) || i == 5 {
				break
			}
		}
		if err != nil {
			return nil, storeError(err, "", "")
		}
	}
	s.log.InfoContext(ctx, "account created", "account", rec.ID, "by", principalARNOf(ctx))
	return &CreateAccountOutput{Account: accountInfo(rec)}, nil
}

// AdminListAccounts lists the accounts, a page at a time (IAM-style
// Marker and MaxItems).
func (s *Service) AdminListAccounts(ctx context.Context, in *ListAccountsInput) (*ListAccountsOutput, error) {
	if err := s.authorizeAdmin(ctx, "ListAccounts", "", "*"); err != nil {
		return nil, err
	}
	limit, after, err := pageParamsOf("maxItems", in.MaxItems, in.Marker, 1000, 100)
	if err != nil {
		return nil, err
	}
	recs, err := s.store.ListAccounts(ctx, after, limit+1)
	if err != nil {
		return nil, Internal(err)
	}
	out := &ListAccountsOutput{Accounts: []AccountInfo{}}
	for i, r := range recs {
		if i == limit {
			out.IsTruncated, out.Marker = true, encodeMarker(recs[i-1].ID)
			break
		}
		out.Accounts = append(out.Accounts, accountInfo(r))
	}
	return out, nil
}

func accountInfo(r AccountRecord) AccountInfo {
	return AccountInfo{AccountId: r.ID, Name: r.Name, Arn: accountRootARN(r.ID), CreateDate: NewTimestamp(r.CreatedAt)}
}

// targetAccount returns the account an operation acts on: the one given, or
// the caller's.
func targetAccount(ctx context.Context, given *string) (string, error) {
	if given != nil {
		if !accountIDPattern.MatchString(*given) {
			return "", validationf("Value at 'accountId' failed to satisfy constraint: Member must be 12 digits")
		}
		return *given, nil
	}
	p, err := caller(ctx)
	if err != nil {
		return "", err
	}
	return p.AccountID, nil
}

func requireIAMName(member string, v *string) (string, error) {
	name, err := requireString(member, v, 1, 64)
	if err != nil {
		return "", err
	}
	if !iamNamePattern.MatchString(name) {
		return "", validationf("Value at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+", member)
	}
	return name, nil
}

// requireAccount answers NotFoundException for an account that does not exist.
func (s *Service) requireAccount(ctx context.Context, account string) error {
	_, err := s.store.GetAccount(ctx, account)
	return storeError(err, fmt.Sprintf("Account %s does not exist.", account), "")
}

// AdminCreateUser creates an IAM user.
func (s *Service) AdminCreateUser(ctx context.Context, in *CreateUserInput) (*CreateUserOutput, error) {
	account, err := targetAccount(ctx, in.AccountId)
	if err != nil {
		return nil, err
	}
	name, err := requireIAMName("userName", in.UserName)
	if err != nil {
		return nil, err
	}
	arn := userARN(account, name)
	tags, err := validatePrincipalTags(in.Tags)
	if err != nil {
		return nil, err
	}
	if err := s.authorizeCreatePrincipal(ctx, "CreateUser", account, arn, tags); err != nil {
		return nil, err
	}
	rec, err := s.createPrincipal(ctx, PrincipalRecord{ARN: arn, AccountID: account, Kind: KindUser, Name: name}, tags)
	if err != nil {
		return nil, err
	}
	return &CreateUserOutput{User: userInfo(rec, tags)}, nil
}

// authorizeCreatePrincipal authorizes CreateUser or CreateRole with the
// request's tags as aws:RequestTag/K and aws:TagKeys, and, when there are
// tags, kmsadmin:TagPrincipal too, as IAM asks iam:TagUser/iam:TagRole of
// a creation with tags: otherwise a Deny on tagging (the guard of
// tag-based access) is dodged by tagging at creation.
func (s *Service) authorizeCreatePrincipal(ctx context.Context, op, account, arn string, tags []TagRecord) error {
	conds := requestTagConds(tags)
	if err := s.authorizeAdminWith(ctx, op, account, arn, conds); err != nil {
		return err
	}
	if len(tags) == 0 {
		return nil
	}
	return s.authorizeAdminWith(ctx, "TagPrincipal", account, arn, conds)
}

// createPrincipal stores a new user or role with its tags.
func (s *Service) createPrincipal(ctx context.Context, rec PrincipalRecord, tags []TagRecord) (PrincipalRecord, error) {
	if err := s.requireAccount(ctx, rec.AccountID); err != nil {
		return PrincipalRecord{}, err
	}
	prefix, what := "AIDA", "User"
	if rec.Kind == KindRole {
		prefix, what = "AROA", "Role"
	}
	uid, err := newUniqueID(prefix)
	if err != nil {
		return PrincipalRecord{}, Internal(err)
	}
	rec.UniqueID, rec.CreatedAt = uid, s.now().UTC()
	if err := s.store.CreatePrincipal(ctx, rec); err != nil {
		return PrincipalRecord{}, storeError(err, fmt.Sprintf("Account %s does not exist.", rec.AccountID),
			fmt.Sprintf("%s with name %s already exists.", what, rec.Name))
	}
	if len(tags) > 0 {
		if err := s.store.PutPrincipalTags(ctx, rec.ARN, tags, maxTagsPerPrincipal); err != nil {
			return PrincipalRecord{}, Internal(err)
		}
	}
	s.log.InfoContext(ctx, strings.ToLower(what)+" created", "arn", rec.ARN, "by", principalARNOf(ctx))
	return rec, nil
}

func userInfo(r PrincipalRecord, tags []TagRecord) UserInfo {
	return UserInfo{AccountId: r.AccountID, UserName: r.Name, UserId: r.UniqueID, Arn: r.ARN,
		CreateDate: NewTimestamp(r.CreatedAt), Tags: wireTags(tags)}
}

func roleInfo(r PrincipalRecord, tags []TagRecord) RoleInfo {
	return RoleInfo{AccountId: r.AccountID, RoleName: r.Name, RoleId: r.UniqueID, Arn: r.ARN,
		AssumeRolePolicyDocument: r.TrustPolicy, MaxSessionDuration: int32(r.MaxSessionSeconds),
		CreateDate: NewTimestamp(r.CreatedAt), Tags: wireTags(tags)}
}

func wireTags(tags []TagRecord) []Tag {
	var out []Tag
	for _, t := range tags {
		out = append(out, Tag{TagKey: &t.Key, TagValue: &t.Value})
	}
	return out
}

// AdminDeleteUser deletes a user and its tags. As in IAM, a user that
// still has access keys or identity policies is not deleted
// (DeleteConflictException): deleting it would silently cut off whoever
// uses those keys, so they are removed first, on purpose. The bootstrap
// admin cannot be deleted: it is the way back in.
func (s *Service) AdminDeleteUser(ctx context.Context, in *DeleteUserInput) (*Empty, error) {
	account, err := targetAccount(ctx, in.AccountId)
	if err != nil {
		return nil, err
	}
	name, err := requireIAMName("userName", in.UserName)
	if err != nil {
		return nil, err
	}
	return s.deletePrincipal(ctx, "DeleteUser", account, KindUser, name)
}

// AdminDeleteRole deletes a role with its tags and sessions; as in IAM, a
// role with identity policies is not deleted (DeleteConflictException).
func (s *Service) AdminDeleteRole(ctx context.Context, in *DeleteRoleInput) (*Empty, error) {
	account, err := targetAccount(ctx, in.AccountId)
	if err != nil {
		return nil, err
	}
	name, err := requireIAMName("roleName", in.RoleName)
	if err != nil {
		return nil, err
	}
	return s.deletePrincipal(ctx, "DeleteRole", account, KindRole, name)
}

func (s *Service) deletePrincipal(ctx context.Context, op, account, kind, name string) (*Empty, error) {
	arn, what := userARN(account, name), "user"
	if kind == KindRole {
		arn, what = roleARN(account, name), "role"
	}
	if err := s.authorizeAdmin(ctx, op, account, arn); err != nil {
		return nil, err
	}
	rec, err := s.getPrincipal(ctx, arn, kind)
	if err != nil {
		return nil, err
	}
	if admin, _ := s.bootstrapAdminARN(ctx); rec.ARN == admin {
		return nil, Errorf(CodeValidation, "The bootstrap admin user cannot be deleted.")
	}
	if err := s.checkNothingAttached(ctx, rec); err != nil {
		return nil, err
	}
	if err := s.store.DeletePrincipal(ctx, rec.ARN); err != nil {
		return nil, storeError(err, fmt.Sprintf("The %s with name %s cannot be found.", what, name), "")
	}
	s.invalidateCredentials()
	s.InvalidateIdentity(rec.ARN)
	s.authz.invalidateAllKeys() // the store replaced its name by its unique id in key policies and grants
	s.log.InfoContext(ctx, what+" deleted", "arn", rec.ARN, "by", principalARNOf(ctx))
	return &Empty{}, nil
}

// checkNothingAttached refuses to delete a principal that still has
// access keys (users) or identity policies, with IAM's messages. A key or
// policy added between this check and the delete is still removed with
// the principal, as before: the check is a guard against mistakes, not a
// lock.
func (s *Service) checkNothingAttached(ctx context.Context, rec PrincipalRecord) error {
	if rec.Kind == KindUser {
		keys, err := s.store.ListAccessKeys(ctx, rec.ARN)
		if err != nil {
			return Internal(err)
		}
		if len(keys) > 0 {
			return Errorf(CodeDeleteConflict, "Cannot delete entity, must delete access keys first.")
		}
	}
	ps, err := s.store.IdentityPolicies(ctx, rec.ARN)
	if err != nil {
		return Internal(err)
	}
	if len(ps) > 0 {
		return Errorf(CodeDeleteConflict, "Cannot delete entity, must detach all policies first.")
	}
	return nil
}

// getPrincipal reads a user or role by ARN; IAM names are unique
// case-insensitively but ARNs keep the stored case, so a miss on the exact
// ARN is NotFoundException.
func (s *Service) getPrincipal(ctx context.Context, arn, kind string) (PrincipalRecord, error) {
	rec, err := s.store.GetPrincipal(ctx, arn)
	if err == nil && rec.Kind != kind {
		err = ErrStoreNotFound
	}
	if err != nil {
		_, _, name, _ := parseIAMARN(arn)
		return PrincipalRecord{}, storeError(err, fmt.Sprintf("The %s with name %s cannot be found.", kind, name), "")
	}
	return rec, nil
}

// AdminListUsers lists the users of an account.
func (s *Service) AdminListUsers(ctx context.Context, in *ListUsersInput) (*ListUsersOutput, error) {
	users, next, err := listPrincipals(ctx, s, "ListUsers", in.AccountId, KindUser, in.Marker, in.MaxItems, userInfo)
	if err != nil {
		return nil, err
	}
	return &ListUsersOutput{Users: users, IsTruncated: next != "", Marker: next}, nil
}

// listPrincipals is ListUsers and ListRoles (op): it authorizes the
// caller on the account (the given one or the caller's) and lists a page
// of its users or roles, by name, with their tags, rendered by info; next
// is the marker of the next page, "" after the last.
func listPrincipals[T any](ctx context.Context, s *Service, op string, accountID *string, kind string, marker *string, maxItems *int32, info func(PrincipalRecord, []TagRecord) T) (page []T, next string, err error) {
	account, err := targetAccount(ctx, accountID)
	if err != nil {
		return nil, "", err
	}
	if err := s.authorizeAdmin(ctx, op, account, accountRootARN(account)); err != nil {
		return nil, "", err
	}
	limit, after, err := pageParamsOf("maxItems", maxItems, marker, 1000, 100)
	if err != nil {
		return nil, "", err
	}
	recs, err := s.store.ListPrincipals(ctx, account, kind, after, limit+1)
	if err != nil {
		return nil, "", Internal(err)
	}
	page = make([]T, 0, min(len(recs), limit))
	for i, r := range recs {
		if i == limit {
			return page, encodeMarker(recs[i-1].Name), nil
		}
		tags, err := s.store.PrincipalTags(ctx, r.ARN)
		if err != nil {
			return nil, "", Internal(err)
		}
		page = append(page, info(r, tags))
	}
	return page, "", nil
}

// AdminCreateRole creates a role with its trust policy.
func (s *Service) AdminCreateRole(ctx context.Context, in *CreateRoleInput) (*CreateRoleOutput, error) {
	account, err := targetAccount(ctx, in.AccountId)
	if err != nil {
		return nil, err
	}
	name, err := requireIAMName("roleName", in.RoleName)
	if err != nil {
		return nil, err
	}
	arn := roleARN(account, name)
	tags, err := validatePrincipalTags(in.Tags)
	if err != nil {
		return nil, err
	}
	if err := s.authorizeCreatePrincipal(ctx, "CreateRole", account, arn, tags); err != nil {
		return nil, err
	}
	doc, err := requireString("assumeRolePolicyDocument", in.AssumeRolePolicyDocument, 1, maxTrustPolicyBytes)
	if err != nil {
		return nil, err
	}
	if err := s.validateTrustPolicy(ctx, doc); err != nil {
		return nil, err
	}
	maxSession := int32(defaultMaxSessionSecond)
	if in.MaxSessionDuration != nil {
		maxSession = *in.MaxSessionDuration
		if err := checkRange("maxSessionDuration", maxSession, defaultMaxSessionSecond, maxMaxSessionSeconds); err != nil {
			return nil, err
		}
	}
	rec, err := s.createPrincipal(ctx, PrincipalRecord{ARN: arn, AccountID: account, Kind: KindRole, Name: name,
		TrustPolicy: doc, MaxSessionSeconds: int(maxSession)}, tags)
	if err != nil {
		return nil, err
	}
	return &CreateRoleOutput{Role: roleInfo(rec, tags)}, nil
}

// AdminListRoles lists the roles of an account.
func (s *Service) AdminListRoles(ctx context.Context, in *ListRolesInput) (*ListRolesOutput, error) {
	roles, next, err := listPrincipals(ctx, s, "ListRoles", in.AccountId, KindRole, in.Marker, in.MaxItems, roleInfo)
	if err != nil {
		return nil, err
	}
	return &ListRolesOutput{Roles: roles, IsTruncated: next != "", Marker: next}, nil
}

// AdminCreateAccessKey creates an access key for a user and returns its
// secret: the only time it is ever shown.
func (s *Service) AdminCreateAccessKey(ctx context.Context, in *CreateAccessKeyInput) (*CreateAccessKeyOutput, error) {
	account, rec, err := s.adminUser(ctx, "CreateAccessKey", in.AccountId, in.UserName)
	if err != nil {
		return nil, err
	}
	existing, err := s.store.ListAccessKeys(ctx, rec.ARN)
	if err != nil {
		return nil, Internal(err)
	}
	// Two concurrent creations may both pass this check; the quota is a
	// guard against accumulation, not a security boundary.
	if len(existing) >= maxAccessKeysPerUser {
		return nil, Errorf(CodeLimitExceeded, "Cannot exceed quota for AccessKeysPerUser: %d", maxAccessKeysPerUser)
	}
	key, err := s.createAccessKey(ctx, account, rec.ARN)
	if err != nil {
		return nil, AsError(err)
	}
	s.log.InfoContext(ctx, "access key created", "access_key_id", key.ID, "user", rec.ARN, "by", principalARNOf(ctx))
	info := accessKeyInfo(key, rec.Name)
	info.SecretAccessKey = key.Secret
	return &CreateAccessKeyOutput{AccessKey: info}, nil
}

func accessKeyInfo(k AccessKey, userName string) AccessKeyInfo {
	status := "Inactive"
	if k.Active {
		status = "Active"
	}
	return AccessKeyInfo{AccessKeyId: k.ID, Status: status, UserName: userName, AccountId: k.AccountID, CreateDate: NewTimestamp(k.CreatedAt)}
}

// accessKeyForAdmin reads an access key (without opening its secret) and
// checks the caller may administer it.
func (s *Service) accessKeyForAdmin(ctx context.Context, op string, id *string) (AccessKey, error) {
	keyID, err := requireString("accessKeyId", id, 16, 128)
	if err != nil {
		return AccessKey{}, err
	}
	k, err := s.store.GetAccessKey(ctx, keyID)
	if err != nil {
		// An unknown id names no account: say NotFound only to callers who
		// may run op in their own account, AccessDenied to the rest.
		p, perr := caller(ctx)
		if perr != nil {
			return AccessKey{}, perr
		}
		if aerr := s.authorizeAdmin(ctx, op, p.AccountID, accountRootARN(p.AccountID)); aerr != nil {
			return AccessKey{}, aerr
		}
		return AccessKey{}, storeError(err, fmt.Sprintf("The Access Key with id %s cannot be found.", keyID), "")
	}
	if err := s.authorizeAdmin(ctx, op, k.AccountID, k.PrincipalARN); err != nil {
		return AccessKey{}, err
	}
	return k, nil
}

// AdminDeleteAccessKey deletes an access key.
func (s *Service) AdminDeleteAccessKey(ctx context.Context, in *DeleteAccessKeyInput) (*Empty, error) {
	k, err := s.accessKeyForAdmin(ctx, "DeleteAccessKey", in.AccessKeyId)
	if err != nil {
		return nil, err
	}
	if adminKey, err := s.store.GetSetting(ctx, settingAdminKeyID); err == nil && adminKey == k.ID {
		// Deleting it would leave the credentials file pointing nowhere;
		// deactivating is allowed once another key exists.
		return nil, Errorf(CodeValidation, "The bootstrap admin access key cannot be deleted; create another key and set this one Inactive instead.")
	}
	if err := s.store.DeleteAccessKey(ctx, k.ID); err != nil {
		return nil, storeError(err, fmt.Sprintf("The Access Key with id %s cannot be found.", k.ID), "")
	}
	s.invalidateCredentials()
	s.log.InfoContext(ctx, "access key deleted", "access_key_id", k.ID, "by", principalARNOf(ctx))
	return &Empty{}, nil
}

// AdminUpdateAccessKey sets an access key Active or Inactive.
func (s *Service) AdminUpdateAccessKey(ctx context.Context, in *UpdateAccessKeyInput) (*Empty, error) {
	k, err := s.accessKeyForAdmin(ctx, "UpdateAccessKey", in.AccessKeyId)
	if err != nil {
		return nil, err
	}
	status, err := optionalEnum("status", in.Status, "", []string{"Active", "Inactive"})
	if err != nil {
		return nil, err
	}
	if status == "" {
		return nil, validationf("Value null at 'status' failed to satisfy constraint: Member must not be null")
	}
	if err := s.store.SetAccessKeyActive(ctx, k.ID, status == "Active"); err != nil {
		return nil, storeError(err, fmt.Sprintf("The Access Key with id %s cannot be found.", k.ID), "")
	}
	s.invalidateCredentials()
	s.log.InfoContext(ctx, "access key status changed", "access_key_id", k.ID, "status", status, "by", principalARNOf(ctx))
	return &Empty{}, nil
}

// AdminListAccessKeys lists a user's access keys, without secrets.
func (s *Service) AdminListAccessKeys(ctx context.Context, in *ListAccessKeysInput) (*ListAccessKeysOutput, error) {
	_, rec, err := s.adminUser(ctx, "ListAccessKeys", in.AccountId, in.UserName)
	if err != nil {
		return nil, err
	}
	keys, err := s.store.ListAccessKeys(ctx, rec.ARN)
	if err != nil {
		return nil, Internal(err)
	}
	out := &ListAccessKeysOutput{AccessKeyMetadata: []AccessKeyInfo{}}
	for _, k := range keys {
		out.AccessKeyMetadata = append(out.AccessKeyMetadata, accessKeyInfo(k, rec.Name))
	}
	return out, nil
}

// principalForAdmin parses a PrincipalArn member, checks the caller may run
// op on it, and reads it.
func (s *Service) principalForAdmin(ctx context.Context, op string, v *string) (PrincipalRecord, error) {
	return s.principalForAdminWith(ctx, op, v, nil)
}

// principalForAdminWith is principalForAdmin with the request's condition
// keys (authorizeAdminWith).
func (s *Service) principalForAdminWith(ctx context.Context, op string, v *string, conds map[string][]string) (PrincipalRecord, error) {
	arn, err := requireString("principalArn", v, 20, 2048)
	if err != nil {
		return PrincipalRecord{}, err
	}
	account, kind, _, ok := parseIAMARN(arn)
	if !ok {
		return PrincipalRecord{}, Errorf(CodeInvalidArn, "PrincipalArn must be a user or role ARN: arn:aws:iam::ACCOUNT:user/NAME or arn:aws:iam::ACCOUNT:role/NAME.")
	}
	if err := s.authorizeAdminWith(ctx, op, account, arn, conds); err != nil {
		return PrincipalRecord{}, err
	}
	return s.getPrincipal(ctx, arn, kind)
}

// AdminAttachIdentityPolicy attaches or replaces a named identity policy.
func (s *Service) AdminAttachIdentityPolicy(ctx context.Context, in *AttachIdentityPolicyInput) (*Empty, error) {
	rec, err := s.principalForAdmin(ctx, "AttachIdentityPolicy", in.PrincipalArn)
	if err != nil {
		return nil, err
	}
	name, err := requireString("policyName", in.PolicyName, 1, 128)
	if err != nil {
		return nil, err
	}
	if !policyNamePattern.MatchString(name) {
		return nil, validationf("Value at 'policyName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+")
	}
	doc, err := requireString("policyDocument", in.PolicyDocument, 1, maxIdentityPolicyBytes)
	if err != nil {
		return nil, err
	}
	if err := validateIdentityPolicy(doc); err != nil {
		return nil, err
	}
	err = s.store.PutIdentityPolicy(ctx, rec.ARN, NamedPolicy{Name: name, Document: doc}, maxIdentityPolicies)
	if errors.Is(err, ErrStoreExhausted) {
		return nil, Errorf(CodeLimitExceeded, "Cannot exceed quota for PoliciesPerPrincipal: %d", maxIdentityPolicies)
	}
	if err != nil {
		return nil, storeError(err, fmt.Sprintf("The %s %s cannot be found.", rec.Kind, rec.ARN), "")
	}
	s.InvalidateIdentity(rec.ARN)
	s.log.InfoContext(ctx, "identity policy attached", "arn", rec.ARN, "policy", name, "by", principalARNOf(ctx))
	return &Empty{}, nil
}

// AdminDetachIdentityPolicy removes a named identity policy.
func (s *Service) AdminDetachIdentityPolicy(ctx context.Context, in *DetachIdentityPolicyInput) (*Empty, error) {
	rec, err := s.principalForAdmin(ctx, "DetachIdentityPolicy", in.PrincipalArn)
	if err != nil {
		return nil, err
	}
	name, err := requireString("policyName", in.PolicyName, 1, 128)
	if err != nil {
		return nil, err
	}
	if err := s.store.DeleteIdentityPolicy(ctx, rec.ARN, name); err != nil {
		return nil, storeError(err, fmt.Sprintf("The policy %s of %s cannot be found.", name, rec.ARN), "")
	}
	s.InvalidateIdentity(rec.ARN)
	s.log.InfoContext(ctx, "identity policy detached", "arn", rec.ARN, "policy", name, "by", principalARNOf(ctx))
	return &Empty{}, nil
}

// AdminListIdentityPolicies lists the identity policies of a user or role,
// documents included.
func (s *Service) AdminListIdentityPolicies(ctx context.Context, in *ListIdentityPoliciesInput) (*ListIdentityPoliciesOutput, error) {
	rec, err := s.principalForAdmin(ctx, "ListIdentityPolicies", in.PrincipalArn)
	if err != nil {
		return nil, err
	}
	ps, err := s.store.IdentityPolicies(ctx, rec.ARN)
	if err != nil {
		return nil, Internal(err)
	}
	out := &ListIdentityPoliciesOutput{Policies: []IdentityPolicyInfo{}}
	for _, p := range ps {
		out.Policies = append(out.Policies, IdentityPolicyInfo{PolicyName: p.Name, PolicyDocument: p.Document})
	}
	return out, nil
}

// AdminTagPrincipal adds or overwrites tags of a user or role
// (aws:PrincipalTag/KEY in policies).
func (s *Service) AdminTagPrincipal(ctx context.Context, in *TagPrincipalInput) (*Empty, error) {
	if in.Tags == nil {
		return nil, validationf("Value null at 'tags' failed to satisfy constraint: Member must not be null")
	}
	tags, err := validatePrincipalTags(in.Tags)
	if err != nil {
		return nil, err
	}
	rec, err := s.principalForAdminWith(ctx, "TagPrincipal", in.PrincipalArn, requestTagConds(tags))
	if err != nil {
		return nil, err
	}
	// A key already there in another case is the same key to IAM: the
	// store replaces it with the new spelling in the same transaction.
	err = s.store.PutPrincipalTags(ctx, rec.ARN, tags, maxTagsPerPrincipal)
	if errors.Is(err, ErrStoreExhausted) {
		return nil, Errorf(CodeTag, "Too many tags")
	}
	if err != nil {
		return nil, storeError(err, fmt.Sprintf("The %s %s cannot be found.", rec.Kind, rec.ARN), "")
	}
	s.invalidateCredentials()
	return &Empty{}, nil
}

// AdminUntagPrincipal removes tags of a user or role.
func (s *Service) AdminUntagPrincipal(ctx context.Context, in *UntagPrincipalInput) (*Empty, error) {
	if in.TagKeys == nil {
		return nil, validationf("Value null at 'tagKeys' failed to satisfy constraint: Member must not be null")
	}
	var conds map[string][]string
	if len(in.TagKeys) > 0 {
		conds = map[string][]string{policy.KeyTagKeys: in.TagKeys}
	}
	rec, err := s.principalForAdminWith(ctx, "UntagPrincipal", in.PrincipalArn, conds)
	if err != nil {
		return nil, err
	}
	if err := s.store.DeletePrincipalTags(ctx, rec.ARN, in.TagKeys); err != nil {
		return nil, storeError(err, fmt.Sprintf("The %s %s cannot be found.", rec.Kind, rec.ARN), "")
	}
	s.invalidateCredentials()
	return &Empty{}, nil
}

// policyNamePattern is IAM's policy name pattern: the characters of user
// names, up to 128.
var policyNamePattern = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)

func principalARNOf(ctx context.Context) string {
	p, _ := PrincipalFrom(ctx)
	return p.ARN
}

// adminUser resolves the user an admin operation names (AccountId and
// UserName), authorizes op on it and returns its account and record.
func (s *Service) adminUser(ctx context.Context, op string, accountID, userName *string) (string, PrincipalRecord, error) {
	account, err := targetAccount(ctx, accountID)
	if err != nil {
		return "", PrincipalRecord{}, err
	}
	name, err := requireIAMName("userName", userName)
	if err != nil {
		return "", PrincipalRecord{}, err
	}
	arn := userARN(account, name)
	if err := s.authorizeAdmin(ctx, op, account, arn); err != nil {
		return "", PrincipalRecord{}, err
	}
	rec, err := s.getPrincipal(ctx, arn, KindUser)
	if err != nil {
		return "", PrincipalRecord{}, err
	}
	return account, rec, nil
}

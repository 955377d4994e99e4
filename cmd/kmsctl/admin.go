package main

// kmsctl admin: the kmsd admin API (X-Amz-Target KmsAdmin.<Operation>,
// JSON 1.1, SigV4 for service "kms"), for managing accounts, users, roles,
// access keys and identity policies. Credentials, region and endpoint are
// found as for the KMS commands; only the bootstrap admin (or principals
// whose identity policies allow kmsadmin:<Operation> in their own account)
// may call it.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
)

// adminFlag is one flag of an admin command and the request member it sets.
type adminFlag struct {
	name, member, help string
	kind               adminFlagKind
	required           bool
}

type adminFlagKind int

const (
	flagString adminFlagKind = iota
	flagInt                  // a JSON number
	flagDoc                  // a policy document: inline JSON, or file://PATH
	flagTags                 // Key=Value,Key2=Value2
	flagList                 // a,b,c
)

type adminCmd struct {
	path, op, summary string
	flags             []adminFlag
}

// pagedAdminOps names the list member of each paged operation: kmsctl
// follows its Marker until the last page and prints one list, as the AWS
// CLI does.
var pagedAdminOps = map[string]string{"ListAccounts": "Accounts", "ListUsers": "Users", "ListRoles": "Roles"}

var (
	fAccount = adminFlag{name: "account-id", member: "AccountId", help: "12-digit account (default: the caller's)"}
	fUser    = adminFlag{name: "user-name", member: "UserName", help: "IAM user name", required: true}
	fRole    = adminFlag{name: "role-name", member: "RoleName", help: "IAM role name", required: true}
	fKeyID   = adminFlag{name: "access-key-id", member: "AccessKeyId", help: "access key id", required: true}
	fARN     = adminFlag{name: "principal-arn", member: "PrincipalArn", help: "user or role ARN", required: true}
	fPolName = adminFlag{name: "policy-name", member: "PolicyName", help: "identity policy name", required: true}
)

var adminCommands = []adminCmd{
	{"create-account", "CreateAccount", "create an account", []adminFlag{
		{name: "account-id", member: "AccountId", help: "12-digit id (default: random)"},
		{name: "name", member: "Name", help: "a name for humans"}}},
	{"list-accounts", "ListAccounts", "list accounts", nil},
	{"create-user", "CreateUser", "create an IAM user", []adminFlag{fAccount, fUser,
		{name: "tags", member: "Tags", kind: flagTags, help: "Key=Value,..."}}},
	{"delete-user", "DeleteUser", "delete a user (delete its access keys and detach its policies first)", []adminFlag{fAccount, fUser}},
	{"list-users", "ListUsers", "list the users of an account", []adminFlag{fAccount}},
	{"create-role", "CreateRole", "create a role that principals may assume", []adminFlag{fAccount, fRole,
		{name: "assume-role-policy-document", member: "AssumeRolePolicyDocument", kind: flagDoc, required: true, help: "trust policy: JSON or file://PATH"},
		{name: "max-session-duration", member: "MaxSessionDuration", kind: flagInt, help: "seconds, 3600-43200"},
		{name: "tags", member: "Tags", kind: flagTags, help: "Key=Value,..."}}},
	{"delete-role", "DeleteRole", "delete a role and its sessions (detach its policies first)", []adminFlag{fAccount, fRole}},
	{"list-roles", "ListRoles", "list the roles of an account", []adminFlag{fAccount}},
	{"create-access-key", "CreateAccessKey", "create an access key (the secret is shown once)", []adminFlag{fAccount, fUser}},
	{"delete-access-key", "DeleteAccessKey", "delete an access key", []adminFlag{fKeyID}},
	{"update-access-key", "UpdateAccessKey", "set an access key Active or Inactive", []adminFlag{fKeyID,
		{name: "status", member: "Status", required: true, help: "Active or Inactive"}}},
	{"list-access-keys", "ListAccessKeys", "list a user's access keys", []adminFlag{fAccount, fUser}},
	{"attach-identity-policy", "AttachIdentityPolicy", "attach (or replace) a named identity policy", []adminFlag{fARN, fPolName,
		{name: "policy-document", member: "PolicyDocument", kind: flagDoc, required: true, help: "JSON or file://PATH"}}},
	{"detach-identity-policy", "DetachIdentityPolicy", "detach a named identity policy", []adminFlag{fARN, fPolName}},
	{"list-identity-policies", "ListIdentityPolicies", "list a user's or role's identity policies", []adminFlag{fARN}},
	{"tag-principal", "TagPrincipal", "tag a user or role (aws:PrincipalTag)", []adminFlag{fARN,
		{name: "tags", member: "Tags", kind: flagTags, required: true, help: "Key=Value,..."}}},
	{"untag-principal", "UntagPrincipal", "remove tags of a user or role", []adminFlag{fARN,
		{name: "tag-keys", member: "TagKeys", kind: flagList, required: true, help: "Key,Key2,..."}}},
}

func init() {
	registerGroup("admin", "accounts, users, roles, access keys and identity policies (kmsctl admin help)")
	for _, c := range adminCommands {
		register(c.command())
	}
}

func (c adminCmd) command() *Command {
	values := map[string]*string{}
	var pageSize *int
	return &Command{
		Path:    "admin " + c.path,
		Summary: c.summary,
		Usage:   "[flags]",
		Flags: func(fs *flag.FlagSet) {
			if pagedAdminOps[c.op] != "" {
				pageSize = fs.Int("page-size", 0, "items per call (1-1000; default: the service's 100); every page is fetched")
			}
			for _, f := range c.flags {
				v := new(string)
				values[f.name] = v
				help := f.help
				if f.required {
					help += " (required)"
				}
				fs.StringVar(v, f.name, "", help)
			}
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usagef("admin %s takes no arguments, got %q", c.path, args[0])
			}
			body := map[string]any{}
			for _, f := range c.flags {
				v := *values[f.name]
				if v == "" {
					if f.required {
						return usagef("admin %s: --%s is required", c.path, f.name)
					}
					continue
				}
				x, err := f.value(v)
				if err != nil {
					return usagef("admin %s: --%s: %v", c.path, f.name, err)
				}
				body[f.member] = x
			}
			if pageSize != nil && *pageSize != 0 {
				body["MaxItems"] = *pageSize
			}
			out, err := e.adminPages(ctx, c.op, body, pagedAdminOps[c.op])
			if err != nil {
				return err
			}
			return render(e.Stdout, e.Output, out)
		},
	}
}

func (f adminFlag) value(v string) (any, error) {
	switch f.kind {
	case flagInt:
		return strconv.Atoi(v)
	case flagDoc:
		if path, ok := strings.CutPrefix(v, "file://"); ok {
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			return string(b), nil
		}
		return v, nil
	case flagTags:
		var tags []map[string]string
		for kv := range strings.SplitSeq(v, ",") {
			k, val, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("%q is not Key=Value", kv)
			}
			tags = append(tags, map[string]string{"TagKey": k, "TagValue": val})
		}
		return tags, nil
	case flagList:
		return strings.Split(v, ","), nil
	}
	return v, nil
}

// adminAPIError is an error answer of the admin API, shown as the AWS CLI
// shows service errors.
type adminAPIError struct {
	Op      string
	Type    string `json:"__type"`
	Message string `json:"message"`
}

func (e *adminAPIError) Error() string {
	return fmt.Sprintf("An error occurred (%s) when calling the %s operation: %s", e.Type, e.Op, e.Message)
}

// adminCall sends one signed admin request and returns the decoded answer.
// adminPages calls op, and for a paged operation (member names its list)
// every following page, and returns one answer holding the whole list.
func (e *Env) adminPages(ctx context.Context, op string, body map[string]any, member string) (map[string]any, error) {
	out, err := e.adminCall(ctx, op, body)
	if err != nil || member == "" {
		return out, err
	}
	all, _ := out[member].([]any)
	for seen := map[string]bool{}; out["IsTruncated"] == true; {
		marker, _ := out["Marker"].(string)
		if marker == "" || seen[marker] {
			return nil, fmt.Errorf("%s: the service returned a truncated page without a new marker", op)
		}
		seen[marker] = true
		body["Marker"] = marker
		if out, err = e.adminCall(ctx, op, body); err != nil {
			return nil, err
		}
		page, _ := out[member].([]any)
		all = append(all, page...)
	}
	if all == nil {
		all = []any{}
	}
	return map[string]any{member: all}, nil
}

func (e *Env) adminCall(ctx context.Context, op string, in any) (map[string]any, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if e.Profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(e.Profile))
	}
	if e.Region != "" {
		opts = append(opts, awsconfig.WithRegion(e.Region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	endpoint := e.EndpointURL
	for _, alt := range []string{os.Getenv("AWS_ENDPOINT_URL_KMS"), os.Getenv("AWS_ENDPOINT_URL")} {
		if endpoint == "" {
			endpoint = alt
		}
	}
	if endpoint == "" && cfg.BaseEndpoint != nil {
		endpoint = *cfg.BaseEndpoint
	}
	if endpoint == "" {
		return nil, fmt.Errorf("no endpoint: the admin API is kmsd's; set --endpoint-url or AWS_ENDPOINT_URL_KMS")
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	body, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(endpoint, "/")+"/", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "KmsAdmin."+op)
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "kms", region, time.Now()); err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		ae := &adminAPIError{Op: op}
		if json.Unmarshal(data, ae) != nil || ae.Type == "" {
			return nil, fmt.Errorf("%s: HTTP %d", op, resp.StatusCode)
		}
		return nil, ae
	}
	out := map[string]any{}
	if len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			return nil, fmt.Errorf("%s: bad answer: %w", op, err)
		}
	}
	return out, nil
}

package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"unicode"

	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
)

// The KMS API operations, in the style of `aws kms`. Adding an operation is
// one line: its CLI name and the SDK method. Flags are derived from the
// SDK input struct (KeyId -> --key-id); see fieldFlag for the value syntax.
// The client sends whatever the SDK supports, so operations the server does
// not implement yet answer UnsupportedOperationException from the server.
func init() {
	registerGroup("kms", "KMS API operations, as `aws kms` (kmsctl kms help)")
	for _, o := range []apiOp{
		op("create-key", (*awskms.Client).CreateKey),
		op("describe-key", (*awskms.Client).DescribeKey),
		op("list-keys", (*awskms.Client).ListKeys),
		op("update-key-description", (*awskms.Client).UpdateKeyDescription),
		op("enable-key", (*awskms.Client).EnableKey),
		op("disable-key", (*awskms.Client).DisableKey),
		op("schedule-key-deletion", (*awskms.Client).ScheduleKeyDeletion),
		op("cancel-key-deletion", (*awskms.Client).CancelKeyDeletion),
		op("encrypt", (*awskms.Client).Encrypt),
		op("decrypt", (*awskms.Client).Decrypt),
		op("re-encrypt", (*awskms.Client).ReEncrypt),
		op("generate-data-key", (*awskms.Client).GenerateDataKey),
		op("generate-data-key-without-plaintext", (*awskms.Client).GenerateDataKeyWithoutPlaintext),
		op("generate-data-key-pair", (*awskms.Client).GenerateDataKeyPair),
		op("generate-data-key-pair-without-plaintext", (*awskms.Client).GenerateDataKeyPairWithoutPlaintext),
		op("generate-random", (*awskms.Client).GenerateRandom),
		op("create-alias", (*awskms.Client).CreateAlias),
		op("update-alias", (*awskms.Client).UpdateAlias),
		op("delete-alias", (*awskms.Client).DeleteAlias),
		op("list-aliases", (*awskms.Client).ListAliases),
		op("tag-resource", (*awskms.Client).TagResource),
		op("untag-resource", (*awskms.Client).UntagResource),
		op("list-resource-tags", (*awskms.Client).ListResourceTags),
		op("sign", (*awskms.Client).Sign),
		op("verify", (*awskms.Client).Verify),
		op("get-public-key", (*awskms.Client).GetPublicKey),
		op("generate-mac", (*awskms.Client).GenerateMac),
		op("verify-mac", (*awskms.Client).VerifyMac),
		op("enable-key-rotation", (*awskms.Client).EnableKeyRotation),
		op("disable-key-rotation", (*awskms.Client).DisableKeyRotation),
		op("get-key-rotation-status", (*awskms.Client).GetKeyRotationStatus),
		op("rotate-key-on-demand", (*awskms.Client).RotateKeyOnDemand),
		op("list-key-rotations", (*awskms.Client).ListKeyRotations),
		op("get-parameters-for-import", (*awskms.Client).GetParametersForImport),
		op("import-key-material", (*awskms.Client).ImportKeyMaterial),
		op("delete-imported-key-material", (*awskms.Client).DeleteImportedKeyMaterial),
		op("get-key-policy", (*awskms.Client).GetKeyPolicy),
		op("put-key-policy", (*awskms.Client).PutKeyPolicy),
		op("list-key-policies", (*awskms.Client).ListKeyPolicies),
		op("create-grant", (*awskms.Client).CreateGrant),
		op("list-grants", (*awskms.Client).ListGrants),
		op("list-retirable-grants", (*awskms.Client).ListRetirableGrants),
		op("retire-grant", (*awskms.Client).RetireGrant),
		op("revoke-grant", (*awskms.Client).RevokeGrant),
		op("derive-shared-secret", (*awskms.Client).DeriveSharedSecret),
	} {
		register(o.command())
	}
}

// apiOp is one operation: its name and a type-erased call.
type apiOp struct {
	name      string
	inputType reflect.Type // the SDK input struct type
	call      func(ctx context.Context, c *awskms.Client, in any) (any, error)
}

// op adapts an SDK method expression such as (*kms.Client).CreateKey.
func op[I, O any](name string, m func(*awskms.Client, context.Context, *I, ...func(*awskms.Options)) (*O, error)) apiOp {
	return apiOp{
		name:      name,
		inputType: reflect.TypeFor[I](),
		call: func(ctx context.Context, c *awskms.Client, in any) (any, error) {
			return m(c, ctx, in.(*I))
		},
	}
}

func (o apiOp) command() *Command {
	var in reflect.Value // *Input, set by Flags before parsing
	var cliInput string
	return &Command{
		Path:    "kms " + o.name,
		Summary: "KMS " + strings.TrimSuffix(o.inputType.Name(), "Input"),
		Usage:   "[flags]",
		Flags: func(fs *flag.FlagSet) {
			in = reflect.New(o.inputType)
			fs.StringVar(&cliInput, "cli-input-json", "", "the whole request as JSON (SDK field names); flags override it")
			for i := range o.inputType.NumField() {
				f := o.inputType.Field(i)
				if !f.IsExported() {
					continue
				}
				fv := &fieldValue{field: in.Elem().Field(i), name: f.Name}
				if fv.isBool() {
					fs.Var(boolFlag{fv}, kebab(f.Name), fv.help())
				} else {
					fs.Var(fv, kebab(f.Name), fv.help())
				}
			}
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q", args[0])
			}
			req := in
			if cliInput != "" {
				// JSON first, then the flags again on top of it.
				fresh := reflect.New(o.inputType)
				if err := json.Unmarshal([]byte(cliInput), fresh.Interface()); err != nil {
					return usagef("--cli-input-json: %v", err)
				}
				for i := range o.inputType.NumField() {
					if o.inputType.Field(i).IsExported() && !in.Elem().Field(i).IsZero() {
						fresh.Elem().Field(i).Set(in.Elem().Field(i))
					}
				}
				req = fresh
			}
			client, err := e.kmsClient(ctx)
			if err != nil {
				return err
			}
			out, err := o.call(ctx, client, req.Interface())
			if err != nil {
				return err
			}
			return render(e.Stdout, e.Output, toPlain(reflect.ValueOf(out)))
		},
	}
}

// kebab turns an SDK field name into a flag name: KeyId -> key-id,
// GrantTokens -> grant-tokens.
func kebab(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 && (!unicode.IsUpper(rune(s[i-1])) || (i+1 < len(s) && unicode.IsLower(rune(s[i+1])))) {
				b.WriteByte('-')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// fieldValue is a flag.Value that sets one field of the SDK input:
//
//   - strings and enums: the text; pointers to int32/int64: a number;
//   - blobs ([]byte): base64, or fileb://PATH for a file's raw bytes;
//   - map[string]string: KEY=VALUE, repeatable (or a JSON object);
//   - []string and lists of enums: repeatable (or a JSON array);
//   - anything else (structs, lists of structs such as Tags): JSON with the
//     SDK's field names, e.g. --tags '[{"TagKey":"k","TagValue":"v"}]'.
type fieldValue struct {
	field reflect.Value
	name  string
}

func (f *fieldValue) isBool() bool {
	t := f.field.Type()
	return t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Bool
}

func (f *fieldValue) help() string {
	t := f.field.Type()
	switch {
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		return f.name + " (base64, or fileb://PATH)"
	case t.Kind() == reflect.Map:
		return f.name + " (KEY=VALUE, repeatable)"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return f.name + " (repeatable)"
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Struct || (t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct):
		return f.name + " (JSON)"
	}
	return f.name
}

func (f *fieldValue) String() string { return "" }

func (f *fieldValue) Set(s string) error {
	v := f.field
	t := v.Type()
	switch {
	case t.Kind() == reflect.String:
		v.SetString(s)
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.String:
		p := reflect.New(t.Elem())
		p.Elem().SetString(s)
		v.Set(p)
	case t.Kind() == reflect.Pointer && (t.Elem().Kind() == reflect.Int32 || t.Elem().Kind() == reflect.Int64):
		n, err := strconv.ParseInt(s, 10, t.Elem().Bits())
		if err != nil {
			return fmt.Errorf("not a number")
		}
		p := reflect.New(t.Elem())
		p.Elem().SetInt(n)
		v.Set(p)
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		p := reflect.New(t.Elem())
		p.Elem().SetBool(b)
		v.Set(p)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		b, err := readBlob(s)
		if err != nil {
			return err
		}
		v.SetBytes(b)
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.String:
		if v.IsNil() {
			v.Set(reflect.MakeMap(t))
		}
		if strings.HasPrefix(strings.TrimSpace(s), "{") {
			m := map[string]string{}
			if err := json.Unmarshal([]byte(s), &m); err != nil {
				return err
			}
			for k, x := range m {
				v.SetMapIndex(reflect.ValueOf(k), reflect.ValueOf(x))
			}
			return nil
		}
		k, x, ok := strings.Cut(s, "=")
		if !ok {
			return fmt.Errorf("want KEY=VALUE")
		}
		v.SetMapIndex(reflect.ValueOf(k), reflect.ValueOf(x))
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		if strings.HasPrefix(strings.TrimSpace(s), "[") {
			return json.Unmarshal([]byte(s), v.Addr().Interface())
		}
		v.Set(reflect.Append(v, reflect.ValueOf(s).Convert(t.Elem())))
	default:
		p := reflect.New(t)
		if err := json.Unmarshal([]byte(s), p.Interface()); err != nil {
			return fmt.Errorf("want JSON for %s: %v", t, err)
		}
		v.Set(p.Elem())
	}
	return nil
}

// boolFlag lets --dry-run stand alone.
type boolFlag struct{ *fieldValue }

func (boolFlag) IsBoolFlag() bool { return true }

// readBlob reads fileb://PATH or decodes base64, as the AWS CLI v2 does.
func readBlob(s string) ([]byte, error) {
	if path, ok := strings.CutPrefix(s, "fileb://"); ok {
		return os.ReadFile(path)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not base64 (use fileb://PATH for a file): %v", err)
	}
	return b, nil
}

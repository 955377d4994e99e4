package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

func TestKebab(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"KeyId": "key-id", "GrantTokens": "grant-tokens", "NumberOfBytes": "number-of-bytes",
		"CiphertextBlob": "ciphertext-blob", "DryRun": "dry-run", "KeyARN": "key-arn",
		"BypassPolicyLockoutSafetyCheck": "bypass-policy-lockout-safety-check",
	} {
		if got := kebab(in); got != want {
			t.Errorf("kebab(%s) = %s, want %s", in, got, want)
		}
	}
}

// TestFieldFlags sets every kind of SDK input field from flag text.
func TestFieldFlags(t *testing.T) {
	t.Parallel()
	blob := filepath.Join(t.TempDir(), "b")
	if err := os.WriteFile(blob, []byte{0, 1, 2}, 0o600); err != nil {
		t.Fatal(err)
	}
	var in awskms.EncryptInput
	set := func(field, val string) {
		t.Helper()
		f, _ := reflect.TypeOf(in).FieldByName(field)
		fv := &fieldValue{field: reflect.ValueOf(&in).Elem().FieldByIndex(f.Index), name: field}
		if err := fv.Set(val); err != nil {
			t.Fatalf("%s=%s: %v", field, val, err)
		}
	}
	set("KeyId", "alias/x")
	set("Plaintext", "fileb://"+blob)
	set("EncryptionContext", "a=1")
	set("EncryptionContext", `{"b":"2"}`)
	set("GrantTokens", "t1")
	set("GrantTokens", "t2")
	set("EncryptionAlgorithm", "RSAES_OAEP_SHA_256")
	set("DryRun", "true")
	if *in.KeyId != "alias/x" || !bytes.Equal(in.Plaintext, []byte{0, 1, 2}) || in.EncryptionContext["a"] != "1" ||
		in.EncryptionContext["b"] != "2" || len(in.GrantTokens) != 2 || in.EncryptionAlgorithm != types.EncryptionAlgorithmSpecRsaesOaepSha256 || !*in.DryRun {
		t.Fatalf("%+v", in)
	}
	var tag awskms.TagResourceInput
	f, _ := reflect.TypeOf(tag).FieldByName("Tags")
	fv := &fieldValue{field: reflect.ValueOf(&tag).Elem().FieldByIndex(f.Index), name: "Tags"}
	if err := fv.Set(`[{"TagKey":"k","TagValue":"v"}]`); err != nil || len(tag.Tags) != 1 || *tag.Tags[0].TagKey != "k" {
		t.Fatalf("tags: %v %+v", err, tag.Tags)
	}
	if err := fv.Set(`not json`); err == nil {
		t.Fatal("bad JSON accepted")
	}
}

func TestOutputPath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		out, in string
		enc     bool
		want    string
	}{
		{"", "-", true, "-"},
		{"-", "-", false, "-"},
		{"", "a/x.txt", true, "a/x.txt.enc"},
		{"", "a/x.txt.enc", false, "a/x.txt"},
		{"", "a/x.bin", false, "a/x.bin.dec"},
		{dir, "a/x.txt", true, filepath.Join(dir, "x.txt.enc")},
		{"o", "a/x.txt", true, "o"},
	} {
		if got := outputPath(tc.out, tc.in, tc.enc); got != tc.want {
			t.Errorf("outputPath(%q, %q, %v) = %q, want %q", tc.out, tc.in, tc.enc, got, tc.want)
		}
	}
}

// TestUsage: help lists the groups and commands; bad usage exits 2.
func TestUsage(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"help"}, nil, &out, &errb, false); code != 0 || !strings.Contains(out.String(), "encrypt") || !strings.Contains(out.String(), "kms ") {
		t.Fatalf("help: %d\n%s", code, &out)
	}
	out.Reset()
	if code := run(context.Background(), []string{"kms", "help"}, nil, &out, &errb, false); code != 0 || !strings.Contains(out.String(), "create-key") {
		t.Fatalf("kms help: %d\n%s", code, &out)
	}
	for _, args := range [][]string{{"nope"}, {"encrypt"}, {"encrypt", "--key-id", "k", "--suite", "0x0178"}, {"--output", "yaml", "kms", "list-keys"}, {"decrypt", "--cache-max-messages", "3"}} {
		if code := run(context.Background(), args, strings.NewReader(""), &out, &errb, false); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

package sqlstore

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"hsmkms/kms"
)

func TestAccessKeys(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	k := kms.AccessKey{
		ID: "AKIAEXAMPLE", Secret: "very-secret-value", AccountID: acct1,
		PrincipalARN: "arn:aws:iam::111111111111:user/admin", Active: true, CreatedAt: t0,
	}
	wantErr(t, "PutAccessKey", s.PutAccessKey(ctx, k), nil)
	dup := k
	dup.Secret = "other-secret-value"
	err := s.PutAccessKey(ctx, dup)
	wantErr(t, "PutAccessKey duplicate", err, kms.ErrStoreAlreadyExists)
	if strings.Contains(err.Error(), "secret-value") {
		t.Fatalf("error leaks the secret: %v", err)
	}

	got, err := s.GetAccessKey(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := k
	want.CreatedAt = ms(t0)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("GetAccessKey = %+v", got)
	}
	inactive := kms.AccessKey{ID: "AKIAOFF", Secret: "s", AccountID: acct2, PrincipalARN: "arn:x"}
	wantErr(t, "PutAccessKey inactive", s.PutAccessKey(ctx, inactive), nil)
	if got, _ := s.GetAccessKey(ctx, "AKIAOFF"); got.Active || !got.CreatedAt.IsZero() {
		t.Fatalf("inactive key = %+v", got)
	}
	_, err = s.GetAccessKey(ctx, "AKIAABSENT")
	wantErr(t, "GetAccessKey absent", err, kms.ErrStoreNotFound)
}

func TestSettings(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	_, err := s.GetSetting(ctx, "default_account")
	wantErr(t, "GetSetting unset", err, kms.ErrStoreNotFound)
	for _, v := range []string{acct1, acct2, ""} {
		wantErr(t, "PutSetting", s.PutSetting(ctx, "default_account", v), nil)
		got, err := s.GetSetting(ctx, "default_account")
		if err != nil || got != v {
			t.Fatalf("GetSetting = %q, %v; want %q", got, err, v)
		}
	}
}

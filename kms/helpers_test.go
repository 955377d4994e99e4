package kms_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"hsmkms/hsm"
	"hsmkms/kms"
	"hsmkms/kms/sqlstore"
)

const testAccount = "111122223333"

// clock is a settable time source for tests of time-driven behaviour.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a service under test with its device, store and clock.
type env struct {
	svc    *kms.Service
	device hsm.Device
	store  *sqlstore.Store
	clock  *clock
	ctx    context.Context
}

type envOption func(*kms.Config)

// deviceFactory makes the device a test runs against: the in-memory fake
// for fast logic tests, SoftHSM2 for the real path.
type deviceFactory func(t testing.TB) hsm.Device

func fakeDevice(t testing.TB) hsm.Device { return hsm.NewFake() }

func newEnv(t testing.TB, newDevice deviceFactory, opts ...envOption) *env {
	t.Helper()
	store, err := sqlstore.Open(t.Context(), filepath.Join(t.TempDir(), "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return newEnvWith(t, newDevice(t), store, opts...)
}

func newEnvWith(t testing.TB, device hsm.Device, store *sqlstore.Store, opts ...envOption) *env {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	cfg := kms.Config{Region: "us-east-1", Device: device, Store: store, Now: c.Now}
	for _, o := range opts {
		o(&cfg)
	}
	svc, err := kms.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Key policies may only name accounts the service knows.
	if _, err := store.GetAccount(t.Context(), testAccount); err != nil {
		if err := store.CreateAccount(t.Context(), kms.AccountRecord{ID: testAccount, CreatedAt: c.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := kms.WithPrincipal(t.Context(), kms.Principal{
		// The account root: the default key policy delegates to the
		// account, and the root needs no identity policy. Authorization
		// itself is tested in authz_test.go with users and roles.
		AccountID: testAccount, ARN: "arn:aws:iam::" + testAccount + ":root", Type: kms.PrincipalAccount, AccessKeyID: "AKIATEST",
	})
	return &env{svc: svc, device: device, store: store, clock: c, ctx: ctx}
}

func ptr[T any](v T) *T { return &v }

// wantCode fails the test unless err is a *kms.Error with the given code.
func wantCode(t *testing.T, err error, code kms.Code) *kms.Error {
	t.Helper()
	var kerr *kms.Error
	if !errors.As(err, &kerr) {
		t.Fatalf("error = %v, want %s", err, code)
	}
	if kerr.Code != code {
		t.Fatalf("error code = %s (%q), want %s", kerr.Code, kerr.Message, code)
	}
	return kerr
}

func (e *env) createKey(t *testing.T) *kms.KeyMetadata {
	t.Helper()
	out, err := e.svc.CreateKey(e.ctx, &kms.CreateKeyInput{Description: ptr("test key")})
	if err != nil {
		t.Fatal(err)
	}
	return out.KeyMetadata
}

func errorsAs(err error, target **kms.Error) bool { return errors.As(err, target) }

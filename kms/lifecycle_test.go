package kms_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"hsmkms/hsm"
	"hsmkms/kms"
	"hsmkms/kms/sqlstore"
)

func TestBootstrapIsIdempotent(t *testing.T) {
	e := newEnv(t, fakeDevice)
	first, err := e.svc.Bootstrap(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Created || len(first.AccountID) != 12 || len(first.AccessKeyID) != 20 || len(first.Secret) != 40 {
		t.Fatalf("first bootstrap %+v", first)
	}
	key, err := e.svc.LookupAccessKey(e.ctx, first.AccessKeyID)
	if err != nil || key.Secret != first.Secret || key.AccountID != first.AccountID {
		t.Fatalf("LookupAccessKey: %v %+v", err, key)
	}
	second, err := e.svc.Bootstrap(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if second.Created || second.Secret != "" || second.AccountID != first.AccountID || second.AccessKeyID != first.AccessKeyID {
		t.Fatalf("second bootstrap %+v", second)
	}
	if _, err := e.svc.LookupAccessKey(e.ctx, "AKIAUNKNOWN000000000"); !errors.Is(err, kms.ErrStoreNotFound) {
		t.Fatalf("unknown access key: %v", err)
	}
}

// TestReconcile builds each state a crash can leave between the HSM and the
// database and checks that Reconcile settles it.
func TestReconcile(t *testing.T) {
	e := newEnv(t, fakeDevice)
	ctx := e.ctx
	healthy := e.createKey(t)
	blob, err := e.svc.Encrypt(ctx, &kms.EncryptInput{KeyId: ptr(healthy.KeyId), Plaintext: []byte("keep")})
	if err != nil {
		t.Fatal(err)
	}
	backing := func(b byte) []byte { return bytes.Repeat([]byte{b}, hsm.BackingIDSize) }
	intent := func(id string, b byte) {
		k := kms.KeyRecord{ID: id, AccountID: testAccount, KeyUsage: "ENCRYPT_DECRYPT", KeySpec: "SYMMETRIC_DEFAULT",
			Origin: "AWS_KMS", KeyManager: "CUSTOMER", State: kms.StateCreating, CreatedAt: e.clock.Now()}
		v := kms.KeyVersion{KeyID: id, Version: 1, BackingID: backing(b), State: kms.VersionCreating, CreatedAt: e.clock.Now()}
		if err := e.store.CreateKey(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	// 1. Crash after the token object was made, before the commit.
	made := "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
	intent(made, 1)
	if err := e.device.GenerateAESKey(ctx, backing(1), "made"); err != nil {
		t.Fatal(err)
	}
	// 2. Crash before the token object was made.
	lost := "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
	intent(lost, 2)
	// 3. Crash in the middle of destroying a deleted key's version.
	doomed := e.createKey(t)
	if _, err := e.store.UpdateKey(ctx, doomed.KeyId, func(k *kms.KeyRecord) error { k.State = kms.StateDeleted; return nil }); err != nil {
		t.Fatal(err)
	}
	// 4. A token object nobody references.
	if err := e.device.GenerateAESKey(ctx, backing(4), "stray"); err != nil {
		t.Fatal(err)
	}
	// 5. An active version whose object vanished from the token.
	vanished := e.createKey(t)
	v, err := e.store.GetVersion(ctx, vanished.KeyId, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.device.Destroy(ctx, v.BackingID); err != nil {
		t.Fatal(err)
	}

	e.clock.Advance(kms.CreateIntentGrace) // the intents are old enough to settle
	rep, err := e.svc.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.CompletedCreates != 1 || rep.AbandonedCreates != 1 || rep.CompletedDestroys != 1 {
		t.Fatalf("report %+v", rep)
	}
	if len(rep.OrphanObjects) != 1 || rep.OrphanObjects[0] != hex.EncodeToString(backing(4)) {
		t.Fatalf("orphans %v", rep.OrphanObjects)
	}
	if len(rep.MissingObjects) != 1 || rep.MissingObjects[0] != vanished.KeyId+"/1" {
		t.Fatalf("missing %v", rep.MissingObjects)
	}
	// The completed key works; the abandoned one does not exist.
	if _, err := e.svc.Encrypt(ctx, &kms.EncryptInput{KeyId: ptr(made), Plaintext: []byte("x")}); err != nil {
		t.Fatalf("completed key: %v", err)
	}
	wantCode(t, errOf(e.svc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: ptr(lost)})), kms.CodeNotFound)
	// The deleted key's object is gone from the token.
	ids, _ := e.device.ObjectIDs(ctx)
	dv, _ := e.store.GetVersion(ctx, doomed.KeyId, 1)
	for _, id := range ids {
		if bytes.Equal(id, dv.BackingID) {
			t.Fatal("deleted key's token object survived reconciliation")
		}
	}
	if dv.State != kms.VersionDestroyed {
		t.Fatalf("deleted key's version state %s", dv.State)
	}
	// The orphan was reported, not destroyed; the key with a missing object
	// is not served.
	if err := e.device.Destroy(ctx, backing(4)); err != nil {
		t.Fatalf("orphan object was destroyed by the reconciler: %v", err)
	}
	wantCode(t, errOf(e.svc.Encrypt(ctx, &kms.EncryptInput{KeyId: ptr(vanished.KeyId), Plaintext: []byte("x")})), kms.CodeKeyUnavailable)
	if _, err := e.svc.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob.CiphertextBlob}); err != nil {
		t.Fatalf("healthy key broke: %v", err)
	}
	// A second run finds nothing left to do.
	rep, err = e.svc.Reconcile(ctx)
	if err != nil || rep.CompletedCreates+rep.AbandonedCreates+rep.CompletedDestroys != 0 {
		t.Fatalf("second run: %v %+v", err, rep)
	}
}

// TestNonceBoundAcrossProcesses runs two services (as two kmsd processes
// would) on one database and one token, encrypting concurrently with a low
// bound: no version may ever pass the bound, and every blob decrypts.
func TestNonceBoundAcrossProcesses(t *testing.T) {
	const bound, block = 50, 7
	path := filepath.Join(t.TempDir(), "kms.db")
	device := hsm.NewFake()
	var envs []*env
	for range 2 {
		store, err := sqlstore.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		envs = append(envs, newEnvWith(t, device, store, func(c *kms.Config) { c.InvocationBound = bound; c.ReserveBlock = block }))
	}
	md := envs[0].createKey(t)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		blobs [][]byte
		errs  []error
	)
	for w := range 8 {
		e := envs[w%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 40 {
				enc, err := e.svc.Encrypt(e.ctx, &kms.EncryptInput{KeyId: ptr(md.KeyId), Plaintext: []byte("p")})
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					blobs = append(blobs, enc.CiphertextBlob)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d encryptions failed, first: %v", len(errs), errs[0])
	}
	versions, err := envs[0].store.ListVersions(envs[0].ctx, md.KeyId)
	if err != nil {
		t.Fatal(err)
	}
	active := 0
	for _, v := range versions {
		if v.Reserved > bound {
			t.Fatalf("version %d reserved %d > bound %d", v.Version, v.Reserved, bound)
		}
		if v.State == kms.VersionActive {
			active++
		}
	}
	// 320 encryptions at <= 50 per version need at least 7 versions.
	if active < 7 {
		t.Fatalf("%d active versions for 320 encryptions at bound %d", active, bound)
	}
	perVersion := map[string]int{}
	for _, b := range blobs {
		dec, err := envs[1].svc.Decrypt(envs[1].ctx, &kms.DecryptInput{CiphertextBlob: b})
		if err != nil {
			t.Fatal(err)
		}
		perVersion[dec.KeyMaterialId]++
	}
	for id, n := range perVersion {
		if n > bound {
			t.Fatalf("material %s encrypted %d times, bound %d", id[:8], n, bound)
		}
	}
}

// TestPrewarm: one reservation for every usable key at start, after which
// the first Encrypt of each key reserves nothing more.
func TestPrewarm(t *testing.T) {
	e := newEnv(t, fakeDevice, func(c *kms.Config) { c.ReserveBlock = 100 })
	a, b := e.createKey(t), e.createKey(t)
	disabled := e.createKey(t)
	if _, err := e.svc.DisableKey(e.ctx, &kms.KeyIdInput{KeyId: ptr(disabled.KeyId)}); err != nil {
		t.Fatal(err)
	}
	doomed := e.createKey(t)
	if _, err := e.svc.ScheduleKeyDeletion(e.ctx, &kms.ScheduleKeyDeletionInput{KeyId: ptr(doomed.KeyId)}); err != nil {
		t.Fatal(err)
	}
	// A second service on the same store and device, as after a restart.
	restarted := newEnvWith(t, e.device, e.store, func(c *kms.Config) { c.ReserveBlock = 100 })
	n, err := restarted.svc.Prewarm(restarted.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("Prewarm warmed %d versions, want 3 (enabled, enabled, disabled)", n)
	}
	reserved := func(id string) uint64 {
		v, err := e.store.GetVersion(e.ctx, id, 1)
		if err != nil {
			t.Fatal(err)
		}
		return v.Reserved
	}
	if got := reserved(doomed.KeyId); got != 0 {
		t.Fatalf("a key pending deletion was warmed: %d", got)
	}
	before := reserved(a.KeyId)
	for _, id := range []string{a.KeyId, b.KeyId} {
		for range 10 {
			if _, err := restarted.svc.Encrypt(restarted.ctx, &kms.EncryptInput{KeyId: ptr(id), Plaintext: []byte("x")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if after := reserved(a.KeyId); after != before {
		t.Fatalf("Encrypt after Prewarm reserved again: %d -> %d", before, after)
	}
}

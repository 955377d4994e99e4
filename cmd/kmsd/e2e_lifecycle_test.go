package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"hsmkms/hsm"
	"hsmkms/kms"
	"hsmkms/kms/sqlstore"
)

// TestE2ERestart: keys (in each state), aliases, tags and ciphertexts
// survive a stop and start of kmsd on the same token and database, and the
// bootstrap credentials stay the same without the file being rewritten.
func TestE2ERestart(t *testing.T) {
	st := newE2EState(t)
	s := st.start(t)
	c := s.client
	ctx := t.Context()

	credsBefore, err := os.ReadFile(st.creds)
	if err != nil {
		t.Fatal(err)
	}
	credsStat, err := os.Stat(st.creds)
	if err != nil {
		t.Fatal(err)
	}

	kA := s.createKey(t, &awskms.CreateKeyInput{Description: aws.String("survivor"),
		Tags: []types.Tag{{TagKey: aws.String("env"), TagValue: aws.String("prod")}}})
	kB := s.createKey(t, &awskms.CreateKeyInput{Description: aws.String("disabled survivor")})
	kC := s.createKey(t, &awskms.CreateKeyInput{Description: aws.String("pending survivor")})
	idA, idB, idC := aws.ToString(kA.KeyId), aws.ToString(kB.KeyId), aws.ToString(kC.KeyId)
	for name, target := range map[string]string{"alias/restart-a": idA, "alias/restart-b": idB} {
		if _, err := c.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String(name), TargetKeyId: aws.String(target)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.TagResource(ctx, &awskms.TagResourceInput{KeyId: kA.KeyId, Tags: []types.Tag{{TagKey: aws.String("team"), TagValue: aws.String("")}}}); err != nil {
		t.Fatal(err)
	}
	plaintext := []byte("ciphertext made before the restart")
	ec := map[string]string{"restart": "yes"}
	encA, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String("alias/restart-a"), Plaintext: plaintext, EncryptionContext: ec})
	if err != nil {
		t.Fatal(err)
	}
	dataKey, err := c.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: kA.KeyId, KeySpec: types.DataKeySpecAes256})
	if err != nil {
		t.Fatal(err)
	}
	encB, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: kB.KeyId, Plaintext: plaintext})
	if err != nil {
		t.Fatal(err)
	}
	encC, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: kC.KeyId, Plaintext: plaintext})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: kB.KeyId}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: kC.KeyId, PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}

	before := snapshotState(t, s, idA, idB, idC)
	account := s.account
	s.stop(t)

	s = st.start(t)
	c = s.client
	if want := "admin credentials in " + st.creds + " (account " + account + ")"; !strings.Contains(s.stdout.String(), want) {
		t.Errorf("restart stdout lacks %q:\n%s", want, s.stdout)
	}
	if s.account != account {
		t.Errorf("account %s after restart, was %s", s.account, account)
	}
	credsAfter, err := os.ReadFile(st.creds)
	if err != nil || !bytes.Equal(credsAfter, credsBefore) {
		t.Errorf("credentials file changed on restart (err %v)", err)
	}
	if st2, err := os.Stat(st.creds); err != nil || !st2.ModTime().Equal(credsStat.ModTime()) || st2.Mode() != credsStat.Mode() || !os.SameFile(st2, credsStat) {
		t.Errorf("credentials file rewritten on restart (err %v)", err)
	}

	after := snapshotState(t, s, idA, idB, idC)
	for name, b := range before {
		if a := after[name]; a != b {
			t.Errorf("%s changed across the restart:\nbefore %s\n after %s", name, b, a)
		}
	}

	// Old ciphertexts decrypt; the alias still leads to the key.
	dec, err := c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: encA.CiphertextBlob, EncryptionContext: ec})
	if err != nil {
		t.Fatalf("Decrypt after restart: %v", err)
	}
	s.checkDecrypt(t, dec, plaintext, kA)
	dec, err = c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: dataKey.CiphertextBlob, KeyId: aws.String("alias/restart-a")})
	if err != nil {
		t.Fatalf("Decrypt of a data key after restart: %v", err)
	}
	s.checkDecrypt(t, dec, dataKey.Plaintext, kA)
	enc, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String("alias/restart-a"), Plaintext: plaintext})
	if err != nil {
		t.Fatalf("Encrypt via alias after restart: %v", err)
	}
	if aws.ToString(enc.KeyId) != s.keyARN(idA) {
		t.Errorf("Encrypt via alias after restart: KeyId %q, want %q", aws.ToString(enc.KeyId), s.keyARN(idA))
	}

	// Key states held: B is Disabled, C is PendingDeletion.
	_, err = c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: encB.CiphertextBlob})
	expectErr[*types.DisabledException](t, err, "DisabledException", s.keyARN(idB)+" is disabled.")
	if _, err := c.EnableKey(ctx, &awskms.EnableKeyInput{KeyId: kB.KeyId}); err != nil {
		t.Fatal(err)
	}
	if dec, err = c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: encB.CiphertextBlob}); err != nil {
		t.Fatalf("Decrypt with B after restart and EnableKey: %v", err)
	}
	s.checkDecrypt(t, dec, plaintext, kB)
	_, err = c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: encC.CiphertextBlob})
	expectErr[*types.KMSInvalidStateException](t, err, "KMSInvalidStateException", s.keyARN(idC)+" is pending deletion.")
	if _, err := c.CancelKeyDeletion(ctx, &awskms.CancelKeyDeletionInput{KeyId: kC.KeyId}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.EnableKey(ctx, &awskms.EnableKeyInput{KeyId: kC.KeyId}); err != nil {
		t.Fatal(err)
	}
	if dec, err = c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: encC.CiphertextBlob}); err != nil {
		t.Fatalf("Decrypt with C after restart and cancel: %v", err)
	}
	s.checkDecrypt(t, dec, plaintext, kC)

	// New keys keep working next to the old ones.
	kD := s.createKey(t, &awskms.CreateKeyInput{Description: aws.String("after restart")})
	if _, err := c.UpdateAlias(ctx, &awskms.UpdateAliasInput{AliasName: aws.String("alias/restart-a"), TargetKeyId: kD.KeyId}); err != nil {
		t.Fatal(err)
	}
	if enc, err = c.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String("alias/restart-a"), Plaintext: plaintext}); err != nil || aws.ToString(enc.KeyId) != s.keyARN(aws.ToString(kD.KeyId)) {
		t.Errorf("Encrypt via the re-pointed alias: %v", err)
	}
	s.stop(t)
}

// snapshotState records what the service says about the account: ListKeys,
// ListAliases (with dates), each key's metadata and tags, as JSON.
func snapshotState(t *testing.T, s *e2eServer, keyIDs ...string) map[string]string {
	t.Helper()
	ctx := t.Context()
	snap := map[string]string{}
	keys, err := s.client.ListKeys(ctx, &awskms.ListKeysInput{})
	if err != nil {
		t.Fatal(err)
	}
	snap["ListKeys"] = jsonOf(t, keys.Keys)
	if len(keys.Keys) != len(keyIDs) {
		t.Errorf("ListKeys lists %d keys, want %d", len(keys.Keys), len(keyIDs))
	}
	aliases, err := s.client.ListAliases(ctx, &awskms.ListAliasesInput{})
	if err != nil {
		t.Fatal(err)
	}
	snap["ListAliases"] = jsonOf(t, aliases.Aliases)
	for _, id := range keyIDs {
		snap["DescribeKey "+id] = jsonOf(t, s.describe(t, id))
		tags, err := s.client.ListResourceTags(ctx, &awskms.ListResourceTagsInput{KeyId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		snap["ListResourceTags "+id] = tagList(tags.Tags)
	}
	return snap
}

// TestE2EDeletionWorker proves that the background deletion worker of a
// running kmsd destroys a key once its window has ended.
//
// kmsd has no way to move its clock (kms.Config.Now is not reachable from
// cmd/kmsd), so the test ends the 7-day window by backdating the key's
// DeletionDate in the database through the store API, as if 7 days had
// passed; deletion_check_interval (a real config knob) is set to 100ms so
// the worker runs soon after.
func TestE2EDeletionWorker(t *testing.T) {
	st := newE2EState(t)
	cfg := filepath.Join(st.dir, "kmsd.yaml")
	if err := os.WriteFile(cfg, []byte("deletion_check_interval: 100ms\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := st.start(t, "-config", cfg)
	c := s.client
	ctx := t.Context()

	doomed := s.createKey(t, &awskms.CreateKeyInput{Description: aws.String("doomed"),
		Tags: []types.Tag{{TagKey: aws.String("k"), TagValue: aws.String("v")}}})
	waiting := s.createKey(t, &awskms.CreateKeyInput{Description: aws.String("waiting")})
	id, arn := aws.ToString(doomed.KeyId), s.keyARN(aws.ToString(doomed.KeyId))
	const alias = "alias/e2e-doomed"
	if _, err := c.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: doomed.KeyId}); err != nil {
		t.Fatal(err)
	}
	enc, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: doomed.KeyId, Plaintext: []byte("soon undecryptable")})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []*types.KeyMetadata{doomed, waiting} {
		out, err := c.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: k.KeyId, PendingWindowInDays: aws.Int32(7)})
		if err != nil {
			t.Fatal(err)
		}
		checkScheduled(t, out, s.keyARN(aws.ToString(k.KeyId)), 7)
	}
	md := s.describe(t, id)
	s.checkKeyMetadata(t, md, id, "doomed", types.KeyStatePendingDeletion)

	// A few worker rounds pass; nothing is due yet.
	time.Sleep(300 * time.Millisecond)
	s.checkKeyMetadata(t, s.describe(t, id), id, "doomed", types.KeyStatePendingDeletion)

	// Seven days pass for the doomed key only.
	store, err := sqlstore.Open(ctx, st.db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	versions, err := store.ListVersions(ctx, id)
	if err != nil || len(versions) == 0 {
		t.Fatalf("versions of %s: %v %v", id, versions, err)
	}
	if _, err := store.UpdateKey(ctx, id, func(k *kms.KeyRecord) error {
		if k.State != kms.StatePendingDeletion || !within(k.DeletionDate, time.Now().Add(7*24*time.Hour), time.Minute) {
			t.Errorf("stored key: state %s, deletion date %v", k.State, k.DeletionDate)
		}
		k.DeletionDate = time.Now().Add(-time.Second)
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	notFound := "Key '" + arn + "' does not exist"
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: doomed.KeyId})
		if _, ok := errors.AsType[*types.NotFoundException](err); ok {
			break
		}
		if err != nil {
			t.Fatalf("DescribeKey while waiting for the worker: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deletion worker did not delete the key within 15 s\nstderr:\n%s", s.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}

	_, err = c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: doomed.KeyId})
	expectErr[*types.NotFoundException](t, err, "NotFoundException", notFound)
	_, err = c.Encrypt(ctx, &awskms.EncryptInput{KeyId: doomed.KeyId, Plaintext: []byte("x")})
	expectErr[*types.NotFoundException](t, err, "NotFoundException", notFound)
	_, err = c.CancelKeyDeletion(ctx, &awskms.CancelKeyDeletionInput{KeyId: doomed.KeyId})
	expectErr[*types.NotFoundException](t, err, "NotFoundException", notFound)
	_, err = c.ListResourceTags(ctx, &awskms.ListResourceTagsInput{KeyId: doomed.KeyId})
	expectErr[*types.NotFoundException](t, err, "NotFoundException", notFound)
	// Its alias went with it.
	_, err = c.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(alias), Plaintext: []byte("x")})
	expectErr[*types.NotFoundException](t, err, "NotFoundException", "Alias "+s.aliasARN(alias)+" is not found.")
	if s.findAlias(t, alias, "") != nil {
		t.Errorf("ListAliases still lists %s", alias)
	}
	// Its ciphertexts are now ciphertexts of a key that does not exist.
	_, err = c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	expectErr[*smithy.GenericAPIError](t, err, "AccessDeniedException",
		"The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access.")
	keys, err := c.ListKeys(ctx, &awskms.ListKeysInput{})
	if err != nil {
		t.Fatal(err)
	}
	if ids := keyIDs(t, s, keys.Keys); slices.Contains(ids, id) || !slices.Contains(ids, aws.ToString(waiting.KeyId)) {
		t.Errorf("ListKeys after the deletion: %v (deleted %s, waiting %s)", ids, id, aws.ToString(waiting.KeyId))
	}
	// The key whose window has not ended is untouched.
	s.checkKeyMetadata(t, s.describe(t, aws.ToString(waiting.KeyId)), aws.ToString(waiting.KeyId), "waiting", types.KeyStatePendingDeletion)

	// Every version is tombstoned. The worker tombstones the key first and
	// destroys its versions right after, so NotFound can be seen a moment
	// before the last version is done: wait for it, boundedly.
	var after []kms.KeyVersion
	for deadline := time.Now().Add(10 * time.Second); ; {
		if after, err = store.ListVersions(ctx, id); err != nil {
			t.Fatal(err)
		}
		done := true
		for _, v := range after {
			done = done && v.State == kms.VersionDestroyed
		}
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, v := range after {
		if v.State != kms.VersionDestroyed {
			t.Errorf("version %d of the deleted key is %s, want %s", v.Version, v.State, kms.VersionDestroyed)
		}
	}
	waitingVersions, err := store.ListVersions(ctx, aws.ToString(waiting.KeyId))
	if err != nil || len(waitingVersions) == 0 {
		t.Fatalf("versions of the waiting key: %v %v", waitingVersions, err)
	}
	s.stop(t)

	// ... and its token objects are gone from the HSM, while the waiting
	// key's are still there.
	devCfg := st.tok
	devCfg.Logger = slog.New(slog.DiscardHandler)
	dev, err := hsm.Open(ctx, devCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	objects, err := dev.ObjectIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inToken := map[string]bool{}
	for _, o := range objects {
		inToken[hex.EncodeToString(o)] = true
	}
	for _, v := range versions {
		if inToken[hex.EncodeToString(v.BackingID)] {
			t.Errorf("token object of version %d of the deleted key is still in the token", v.Version)
		}
	}
	for _, v := range waitingVersions {
		if !inToken[hex.EncodeToString(v.BackingID)] {
			t.Errorf("token object of version %d of the waiting key is gone", v.Version)
		}
	}
}

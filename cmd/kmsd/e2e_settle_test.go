package main

import (
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"hsmkms/hsm"
	"hsmkms/kms"
	"hsmkms/kms/sqlstore"
)

// TestE2ESettlesCutRotationWhileRunning: kmsd crashed in a scheduled
// rotation, after its intent and before the token object, and was restarted
// within two minutes, so the start-up reconciler left the intent alone (it
// may have been in flight in another kmsd). Once the intent is two minutes
// old, the running kmsd settles it on a scheduler pass and rotates the key,
// with no further restart; RotateKeyOnDemand answers ConflictException only
// until then.
func TestE2ESettlesCutRotationWhileRunning(t *testing.T) {
	st := newE2EState(t)
	conf := filepath.Join(st.dir, "kmsd.yaml")
	if err := os.WriteFile(conf, []byte("rotation_check_interval: 100ms\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KMSD_CONFIG", conf)
	ctx := t.Context()

	first := st.start(t)
	key := first.createKey(t, &awskms.CreateKeyInput{Description: aws.String("cut rotation")})
	keyID := aws.ToString(key.KeyId)
	if _, err := first.client.EnableKeyRotation(ctx, &awskms.EnableKeyRotationInput{KeyId: key.KeyId, RotationPeriodInDays: aws.Int32(90)}); err != nil {
		t.Fatal(err)
	}
	first.stop(t)

	// What the crashed scheduler left: its claim of the due date and the
	// new version's intent, recorded as rotateDue records them, and no
	// token object.
	store, err := sqlstore.Open(ctx, st.db)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := store.GetRotationSchedule(ctx, keyID)
	if err != nil {
		t.Fatal(err)
	}
	backing := make([]byte, hsm.BackingIDSize)
	rand.Read(backing)
	at := time.Now().UTC()
	if _, err := store.RecordRotationIntent(ctx, kms.RotationIntent{
		KeyID: keyID, BackingID: backing, Type: kms.RotationAutomatic, At: at,
		ClaimDue: sc.NextRotation, NextDue: at.Add(90 * 24 * time.Hour).Truncate(time.Millisecond),
	}); err != nil {
		t.Fatal(err)
	}
	store.Close()

	clock := &testClock{}
	srv := startKMSDWithClock(t, clock)
	c := newSDKClient(t, st.creds, srv.addr, e2eRegion, nil)

	// Several scheduler passes within the grace: the intent stays.
	time.Sleep(300 * time.Millisecond)
	_, err = c.RotateKeyOnDemand(ctx, &awskms.RotateKeyOnDemandInput{KeyId: key.KeyId})
	expectErr[*types.ConflictException](t, err, "ConflictException", "A key rotation is already in progress for "+first.keyARN(keyID)+".")

	clock.offset.Add(int64(kms.CreateIntentGrace + time.Second))
	deadline := time.Now().Add(15 * time.Second)
	for {
		rots, err := c.ListKeyRotations(ctx, &awskms.ListKeyRotationsInput{KeyId: key.KeyId})
		if err != nil {
			t.Fatal(err)
		}
		if len(rots.Rotations) == 1 {
			if r := rots.Rotations[0]; r.RotationType != types.RotationTypeAutomatic || r.KeyMaterialState != "CURRENT" {
				t.Fatalf("rotation %+v, want AUTOMATIC and current", r)
			}
			break
		}
		if len(rots.Rotations) > 1 || time.Now().After(deadline) {
			t.Fatalf("rotations %+v; want the cut rotation done once within 15 s\nstderr:\n%s", rots.Rotations, srv.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := c.RotateKeyOnDemand(ctx, &awskms.RotateKeyOnDemandInput{KeyId: key.KeyId}); err != nil {
		var conflict *types.ConflictException
		if errors.As(err, &conflict) {
			t.Fatalf("RotateKeyOnDemand still answers ConflictException after the pass: %v", err)
		}
		t.Fatal(err)
	}
	enc, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: key.KeyId, Plaintext: []byte("after the settlement")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}); err != nil {
		t.Fatal(err)
	}
}

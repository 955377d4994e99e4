package sqlstore

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"hsmkms/kms"
)

// TestConcurrentWritersTwoStores runs read-modify-write updates and other
// writes from many goroutines over two Store values on one file (as two
// processes would): no "database is locked", no lost update.
func TestConcurrentWritersTwoStores(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kms.db")
	stores := []*Store{openAt(t, path), openAt(t, path)}
	mustCreate(t, stores[0], keyID(1), acct1, kms.StateEnabled)

	const goroutines, rounds = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*goroutines)
	for si, s := range stores {
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range rounds {
					// Read-modify-write: the description holds a counter.
					_, err := s.UpdateKey(ctx, keyID(1), func(k *kms.KeyRecord) error {
						n, _ := strconv.Atoi(k.Description)
						k.Description = strconv.Itoa(n + 1)
						return nil
					})
					if err == nil {
						err = s.PutTags(ctx, keyID(1), tags(fmt.Sprintf("s%dg%d", si, g), strconv.Itoa(r)), 1000)
					}
					if err == nil {
						_, err = s.GetKey(ctx, keyID(1))
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	k, err := stores[1].GetKey(ctx, keyID(1))
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(2 * goroutines * rounds); k.Description != want {
		t.Fatalf("counter = %s, want %s: updates were lost", k.Description, want)
	}
	if ts := listAllTags(t, stores[0], keyID(1)); len(ts) != 2*goroutines {
		t.Fatalf("%d tags, want %d", len(ts), 2*goroutines)
	}
}

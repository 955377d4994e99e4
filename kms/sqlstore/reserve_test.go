package sqlstore

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"hsmkms/kms"
)

func TestReserveInvocations(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	mustCreate(t, s, keyID(1), acct1, kms.StateEnabled)

	steps := []struct {
		name       string
		n, bound   uint64
		wantBefore uint64
		want       error
	}{
		{"first block", 100, 1000, 0, nil},
		{"second block", 100, 1000, 100, nil},
		{"zero", 0, 1000, 200, nil},
		{"up to the bound exactly", 800, 1000, 200, nil},
		{"one past the bound", 1, 1000, 0, kms.ErrStoreExhausted},
		{"n above bound", 2000, 1000, 0, kms.ErrStoreExhausted},
		{"huge n does not overflow", math.MaxUint64, math.MaxUint64, 0, kms.ErrStoreExhausted},
		{"raised bound", 10, math.MaxUint64, 1000, nil},
	}
	for _, st := range steps {
		before, err := s.ReserveInvocations(ctx, keyID(1), 1, st.n, st.bound)
		wantErr(t, st.name, err, st.want)
		if err == nil && before != st.wantBefore {
			t.Fatalf("%s: before = %d, want %d", st.name, before, st.wantBefore)
		}
	}
	v, _ := s.GetVersion(ctx, keyID(1), 1)
	if v.Reserved != 1010 {
		t.Fatalf("Reserved = %d, want 1010", v.Reserved)
	}
	_, err := s.ReserveInvocations(ctx, keyID(1), 2, 1, 10)
	wantErr(t, "absent version", err, kms.ErrStoreNotFound)
	_, err = s.ReserveInvocations(ctx, keyID(1), 2, 100, 10)
	wantErr(t, "absent version, n above bound", err, kms.ErrStoreNotFound)
}

// TestReserveInvocationsConcurrent reserves blocks from many goroutines over
// two Store values on one file, as two processes would.
func TestReserveInvocationsConcurrent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kms.db")
	stores := []*Store{openAt(t, path), openAt(t, path)}
	mustCreate(t, stores[0], keyID(1), acct1, kms.StateEnabled)

	const (
		block      = 7
		bound      = 20000 // not a multiple of block: the last block cannot fit
		goroutines = 8
	)
	type rng struct{ lo, hi uint64 }
	var (
		mu     sync.Mutex
		ranges []rng
		wg     sync.WaitGroup
		errs   = make(chan error, 2*goroutines)
	)
	for _, s := range stores {
		for range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					before, err := s.ReserveInvocations(ctx, keyID(1), 1, block, bound)
					if errors.Is(err, kms.ErrStoreExhausted) {
						return
					}
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					ranges = append(ranges, rng{before, before + block})
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	sort.Slice(ranges, func(i, j int) bool { return ranges[i].lo < ranges[j].lo })
	if want := bound / block; len(ranges) != want {
		t.Fatalf("%d blocks reserved, want %d", len(ranges), want)
	}
	for i, r := range ranges {
		if r.lo != uint64(i*block) {
			t.Fatalf("block %d starts at %d: ranges overlap or have gaps", i, r.lo)
		}
		if r.hi > bound {
			t.Fatalf("block %v passes the bound", r)
		}
	}
	v, err := stores[1].GetVersion(ctx, keyID(1), 1)
	if err != nil {
		t.Fatal(err)
	}
	if v.Reserved != uint64(len(ranges)*block) {
		t.Fatalf("Reserved = %d, want %d", v.Reserved, len(ranges)*block)
	}
	_, err = stores[0].ReserveInvocations(ctx, keyID(1), 1, block, bound)
	wantErr(t, "after the end", err, kms.ErrStoreExhausted)
}

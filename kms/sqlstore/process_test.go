package sqlstore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"hsmkms/kms"
)

// childEnv names the database a child process of
// TestReserveInvocationsTwoProcesses works on.
const childEnv = "SQLSTORE_TEST_CHILD_DB"

const (
	procBlock = 5
	procBound = 5003
)

// TestReserveInvocationsTwoProcesses runs the reservation race between real
// processes, whose locks go through the operating system rather than
// SQLite's in-process lock sharing. Each child re-runs this test binary
// and prints the start of every block it reserved.
func TestReserveInvocationsTwoProcesses(t *testing.T) {
	if path := os.Getenv(childEnv); path != "" {
		reserveChild(t, path)
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "kms.db")
	s := openAt(t, path)
	mustCreate(t, s, keyID(1), acct1, kms.StateEnabled)

	outs := make([]bytes.Buffer, 2)
	cmds := make([]*exec.Cmd, 2)
	for i := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestReserveInvocationsTwoProcesses$")
		cmd.Env = append(os.Environ(), childEnv+"="+path)
		cmd.Stdout = &outs[i]
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	// Reserve from this process too, concurrently with the children.
	var mine []uint64
	for {
		before, err := s.ReserveInvocations(context.Background(), keyID(1), 1, procBlock, procBound)
		if errors.Is(err, kms.ErrStoreExhausted) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		mine = append(mine, before)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
	}

	starts := mine
	for _, out := range outs {
		sc := bufio.NewScanner(&out)
		for sc.Scan() {
			var v uint64
			if _, err := fmt.Sscanf(sc.Text(), "block %d", &v); err == nil {
				starts = append(starts, v)
			}
		}
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	if len(starts) != procBound/procBlock {
		t.Fatalf("%d blocks, want %d", len(starts), procBound/procBlock)
	}
	for i, v := range starts {
		if v != uint64(i*procBlock) {
			t.Fatalf("block %d starts at %d: overlap or gap", i, v)
		}
	}
	t.Logf("blocks: %d here, rest from two children", len(mine))
}

// reserveChild is the body of a child process: 4 goroutines reserve blocks
// until the bound, printing each block's start.
func reserveChild(t *testing.T, path string) {
	s := openAt(t, path)
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				before, err := s.ReserveInvocations(context.Background(), keyID(1), 1, procBlock, procBound)
				if errors.Is(err, kms.ErrStoreExhausted) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				fmt.Printf("block %d\n", before)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

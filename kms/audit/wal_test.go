package audit

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWALStaysBoundedUnderSustainedLoad: with requests recording events
// without pause, the checkpointer must still let the writer start the WAL
// over. Before it held the writer for the last frames, the WAL only grew
// (17 MB/s in scripts/bench-audit), every commit appended to it, and the
// file ended larger than the database it was copied into.
func TestWALStaysBoundedUnderSustainedLoad(t *testing.T) {
	for _, mode := range []Mode{Durable, Async} {
		t.Run(string(mode), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.db")
			l, err := Open(t.Context(), path, Options{Mode: mode})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			// Several checkpoint intervals of load that never lets the
			// writer idle. Async writers pause between events: Record
			// returns at once there, and the test need not write 200 MB.
			writers, pause := 16, time.Duration(0)
			if mode == Async {
				writers, pause = 4, 50*time.Microsecond
			}
			stop := time.Now().Add(6 * checkpointInterval)
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					ev := benchEvent()
					for i := 0; time.Now().Before(stop); i++ {
						ev.EventID = "e" + string(rune('a'+w)) + time.Now().Format(time.RFC3339Nano)
						if err := l.Record(t.Context(), ev); err != nil {
							t.Error(err)
							return
						}
						time.Sleep(pause)
					}
				})
			}
			wg.Wait()
			// Let the last interval's checkpoint run, then one commit
			// starts the WAL over if it can.
			time.Sleep(2 * checkpointInterval)
			record(t, l, 1, time.Now(), "After")
			wal, err := os.Stat(path + "-wal")
			if err != nil {
				t.Fatal(err)
			}
			db, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			var n int64
			if err := l.r.QueryRowContext(t.Context(), "SELECT count(*) FROM events").Scan(&n); err != nil {
				t.Fatal(err)
			}
			t.Logf("%d events: database %d bytes, WAL %d bytes", n, db.Size(), wal.Size())
			// The WAL holds about one interval's commits; a WAL that kept
			// every commit since the start is larger than the database.
			if wal.Size() > db.Size() {
				t.Errorf("WAL is %d bytes for a database of %d bytes: it is not being started over", wal.Size(), db.Size())
			}
		})
	}
}

// TestCheckpointHeldBackByAReader: while a long read keeps WAL frames from
// being copied, the checkpoint says so and does not hold the writer for
// them; once the read ends it catches up and the WAL starts over.
func TestCheckpointHeldBackByAReader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(t.Context(), path, Options{Mode: Durable})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	record(t, l, 1, time.Now(), "Before")
	tx, err := l.r.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow("SELECT count(*) FROM events").Scan(&n); err != nil { // pins the snapshot
		t.Fatal(err)
	}
	record(t, l, 2*lockedCheckpointFrames, time.Now(), "During")
	if err := l.checkpoint(); err == nil || !strings.Contains(err.Error(), "could not be copied yet") {
		t.Fatalf("checkpoint with a reader holding frames back: %v", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := l.checkpoint(); err != nil {
		t.Fatalf("checkpoint after the read ended: %v", err)
	}
	before, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	// Started over: the next commits overwrite the WAL's first blocks
	// instead of extending the file.
	record(t, l, 8, time.Now(), "After")
	after, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if after.Size() != before.Size() {
		t.Fatalf("WAL grew from %d to %d bytes after a full checkpoint", before.Size(), after.Size())
	}
}

// TestRecordGivesUpAtDeadline: a durable Record whose commit cannot happen
// (the write lock held elsewhere, as by a stalled disk) returns at its
// context's deadline instead of holding the request for as long as the
// stall lasts; before, it waited for the commit whatever the context.
func TestRecordGivesUpAtDeadline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(t.Context(), path, Options{Mode: Durable})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	db, err := sql.Open("sqlite3", "file:"+path+"?_txlock=exclusive")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin() // holds the write lock: the writer's commit waits its 5 s busy timeout
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = l.Record(ctx, benchEvent())
	if took := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || took > 2*time.Second {
		t.Fatalf("Record = %v after %v, want the deadline's error at about 200ms", err, took)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
}

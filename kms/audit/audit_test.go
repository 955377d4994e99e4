package audit

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type testSigner struct{ k *ecdsa.PrivateKey }

func newTestSigner(t *testing.T) *testSigner {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &testSigner{k}
}
func (s *testSigner) KeyID() string { return "test-key" }
func (s *testSigner) Sign(_ context.Context, h []byte) ([]byte, error) {
	return ecdsa.SignASN1(rand.Reader, s.k, h)
}
func (s *testSigner) verify(keyID string, h, sig []byte) error {
	if keyID != "test-key" || !ecdsa.VerifyASN1(&s.k.PublicKey, h, sig) {
		return errors.New("bad signature")
	}
	return nil
}

func record(t *testing.T, l *Log, n int, at time.Time, name string) {
	t.Helper()
	for i := range n {
		ev := benchEvent()
		ev.EventName = name
		ev.EventID = fmt.Sprintf("%s-%d-%d", name, at.Unix(), i)
		ev.EventTime = at.UTC().Format(TimeFormat)
		if err := l.Record(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPruneKeepsVerification: pruning cuts at a digest boundary, the kept
// chain verifies from the digest that anchors it, and new events and
// digests after the cut still verify.
func TestPruneKeepsVerification(t *testing.T) {
	for _, mode := range []Mode{Durable, Async} {
		t.Run(string(mode), func(t *testing.T) {
			l, err := Open(t.Context(), filepath.Join(t.TempDir(), "audit.db"), Options{Mode: mode})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			sg := newTestSigner(t)
			old := time.Now().Add(-48 * time.Hour)
			record(t, l, 30, old, "Encrypt")
			if l.mode == Async {
				time.Sleep(20 * time.Millisecond) // let the writer commit
			}
			if _, ok, err := l.WriteDigest(t.Context(), sg, old); err != nil || !ok {
				t.Fatalf("digest: %v %v", ok, err)
			}
			record(t, l, 20, time.Now(), "Decrypt")
			if l.mode == Async {
				time.Sleep(20 * time.Millisecond)
			}
			if _, _, err := l.WriteDigest(t.Context(), sg, time.Now()); err != nil {
				t.Fatal(err)
			}
			n, err := l.Prune(t.Context(), time.Now().Add(-24*time.Hour))
			if err != nil || n != 30 {
				t.Fatalf("pruned %d events (%v), want 30", n, err)
			}
			record(t, l, 5, time.Now(), "Sign")
			if l.mode == Async {
				time.Sleep(20 * time.Millisecond)
			}
			rep, err := l.Verify(t.Context(), sg.verify)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() || rep.PrunedThrough != 30 || rep.Events != 25 || rep.Unsigned != 5 {
				t.Fatalf("after pruning: %+v", rep)
			}
			// Deleting the first kept event is still noticed.
			if _, err := l.w.Exec(`DELETE FROM events WHERE seq = 31`); err != nil {
				t.Fatal(err)
			}
			rep, _ = l.Verify(t.Context(), sg.verify)
			if rep.OK() {
				t.Fatal("deleting the first kept event went unnoticed")
			}
		})
	}
}

// TestVerifyDigestSignature: a digest signed by another key, or changed
// after signing, is reported.
func TestVerifyDigestSignature(t *testing.T) {
	l, err := Open(t.Context(), filepath.Join(t.TempDir(), "audit.db"), Options{Mode: Durable})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sg := newTestSigner(t)
	record(t, l, 3, time.Now(), "Encrypt")
	if _, _, err := l.WriteDigest(t.Context(), sg, time.Now()); err != nil {
		t.Fatal(err)
	}
	if rep, _ := l.Verify(t.Context(), newTestSigner(t).verify); rep.OK() {
		t.Error("a signature by another key verified")
	}
	if _, err := l.w.Exec(`UPDATE digests SET event_count = 2`); err != nil {
		t.Fatal(err)
	}
	if rep, _ := l.Verify(t.Context(), sg.verify); rep.OK() {
		t.Error("an altered digest verified")
	}
}

// TestLookup filters and pages.
func TestLookup(t *testing.T) {
	l, err := Open(t.Context(), filepath.Join(t.TempDir(), "audit.db"), Options{Mode: Durable})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	now := time.Now()
	record(t, l, 7, now.Add(-time.Hour), "Encrypt")
	record(t, l, 3, now, "Decrypt")
	var got int
	f := Filter{EventName: "Encrypt", MaxResults: 3}
	pages := 0
	for {
		p, err := l.Lookup(t.Context(), f)
		if err != nil {
			t.Fatal(err)
		}
		got += len(p.Events)
		pages++
		if p.NextToken == "" {
			break
		}
		f.NextToken = p.NextToken
	}
	if got != 7 || pages != 3 {
		t.Errorf("Encrypt: %d events in %d pages, want 7 in 3", got, pages)
	}
	p, err := l.Lookup(t.Context(), Filter{Start: now.Add(-time.Minute)})
	if err != nil || len(p.Events) != 3 {
		t.Errorf("time filter: %d events (%v), want 3", len(p.Events), err)
	}
	if _, err := l.Lookup(t.Context(), Filter{NextToken: "x"}); !errors.Is(err, ErrBadToken) {
		t.Errorf("bad token: %v", err)
	}
}

// TestVerifyLookupColumnsAndFirstDigests: the lookup columns beside each
// event are not covered by the hash chain, so verify re-derives them from
// the body (an edited account hid an event from account-scoped lookups, an
// edited time made retention delete fresh events); pruning cuts by the
// signed digest time, not by that column; and deleting the first digests
// of a trail that was never pruned is reported.
func TestVerifyLookupColumnsAndFirstDigests(t *testing.T) {
	l, err := Open(t.Context(), filepath.Join(t.TempDir(), "audit.db"), Options{Mode: Durable})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sg := newTestSigner(t)
	for range 3 {
		record(t, l, 5, time.Now(), "Encrypt")
		if _, _, err := l.WriteDigest(t.Context(), sg, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if rep, _ := l.Verify(t.Context(), sg.verify); !rep.OK() {
		t.Fatalf("untouched trail: %+v", rep)
	}
	for _, edit := range []string{
		`UPDATE events SET account = '999999999999' WHERE seq = 7`,
		`UPDATE events SET event_time = 0 WHERE seq = 5`,
		`UPDATE events SET event_name = 'Decrypt' WHERE seq = 3`,
	} {
		undo := strings.Replace(strings.Replace(strings.Replace(edit, "'999999999999'", "(SELECT account FROM events WHERE seq = 1)", 1),
			"= 0", "= (SELECT event_time FROM events WHERE seq = 4)", 1), "'Decrypt'", "'Encrypt'", 1)
		if _, err := l.w.Exec(edit); err != nil {
			t.Fatal(err)
		}
		rep, _ := l.Verify(t.Context(), sg.verify)
		if rep.OK() {
			t.Fatalf("%s went unnoticed", edit)
		}
		// Retention cuts by signed digest time: nothing here is old.
		if n, err := l.Prune(t.Context(), time.Now().Add(-time.Hour)); err != nil || n != 0 {
			t.Fatalf("prune of fresh events after %s: %d, %v", edit, n, err)
		}
		if _, err := l.w.Exec(undo); err != nil {
			t.Fatal(err)
		}
	}
	if rep, _ := l.Verify(t.Context(), sg.verify); !rep.OK() {
		t.Fatalf("after undoing the edits: %+v", rep)
	}
	if _, err := l.w.Exec(`DELETE FROM digests WHERE seq < 3`); err != nil {
		t.Fatal(err)
	}
	if rep, _ := l.Verify(t.Context(), sg.verify); rep.OK() {
		t.Fatal("deleting the first two digests went unnoticed")
	}
}

// TestAsyncCommitFailureIsReported: in async mode nobody waits for a
// commit, so a failed one is counted (OnLost), logged and reported by Ping
// (readiness); before, the events were dropped without a trace.
func TestAsyncCommitFailureIsReported(t *testing.T) {
	var lost atomic.Int64
	var logged strings.Builder
	var mu sync.Mutex
	lg := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logged.Write(p)
	}), nil))
	l, err := Open(t.Context(), filepath.Join(t.TempDir(), "audit.db"), Options{Mode: Async, Log: lg, OnLost: func(n int) { lost.Add(int64(n)) }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := l.w.Exec(`CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'refused'); END`); err != nil {
		t.Fatal(err)
	}
	record(t, l, 3, time.Now(), "Encrypt") // Record returns at once in async mode
	deadline := time.Now().Add(5 * time.Second)
	for lost.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if lost.Load() != 3 {
		t.Fatalf("OnLost counted %d events, want 3", lost.Load())
	}
	mu.Lock()
	out := logged.String()
	mu.Unlock()
	if !strings.Contains(out, "events could not be written") {
		t.Fatalf("no log line for the lost events: %q", out)
	}
	if err := l.Ping(t.Context()); err == nil {
		t.Fatal("Ping is fine while commits fail")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// memAnchor is an Anchor in memory.
type memAnchor struct {
	seq  int64
	hash []byte
}

func (a *memAnchor) Load(context.Context) (int64, []byte, error) { return a.seq, a.hash, nil }
func (a *memAnchor) Save(_ context.Context, seq int64, hash []byte) error {
	a.seq, a.hash = seq, hash
	return nil
}

// TestAnchor: the last digest signed is anchored outside the file. A file
// that no longer holds it (rewritten, or an older copy put back) is refused
// by Open unless Reanchor says otherwise, and reported by Verify.
func TestAnchor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	anchor := &memAnchor{}
	sg := newTestSigner(t)
	l, err := Open(t.Context(), path, Options{Mode: Durable, Anchor: anchor})
	if err != nil {
		t.Fatal(err)
	}
	record(t, l, 3, time.Now(), "Encrypt")
	d, _, err := l.WriteDigest(t.Context(), sg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if anchor.seq != d.Seq || !bytes.Equal(anchor.hash, d.Hash) {
		t.Fatalf("anchor %d %x, want digest %d %x", anchor.seq, anchor.hash, d.Seq, d.Hash)
	}
	if rep, _ := l.Verify(t.Context(), sg.verify); !rep.OK() {
		t.Fatalf("intact: %+v", rep)
	}
	// Rewritten: every digest gone (a consistent forged chain has none
	// that matches the anchor).
	if _, err := l.w.Exec(`DELETE FROM digests`); err != nil {
		t.Fatal(err)
	}
	rep, _ := l.Verify(t.Context(), sg.verify)
	if rep.OK() || !strings.Contains(fmt.Sprint(rep.Findings), "does not hold the last digest") {
		t.Fatalf("a file without the anchored digest verified: %+v", rep)
	}
	l.Close()
	if _, err := Open(t.Context(), path, Options{Mode: Durable, Anchor: anchor}); !errors.Is(err, ErrAnchorMismatch) {
		t.Fatalf("Open of a rewritten file: %v, want ErrAnchorMismatch", err)
	}
	l, err = Open(t.Context(), path, Options{Mode: Durable, Anchor: anchor, Reanchor: true})
	if err != nil {
		t.Fatalf("Open with Reanchor: %v", err)
	}
	l.Close()
}

// flakyAnchor is a memAnchor whose Save can be made to fail.
type flakyAnchor struct {
	memAnchor
	fail bool
}

func (a *flakyAnchor) Save(ctx context.Context, seq int64, hash []byte) error {
	if a.fail {
		return errors.New("database is locked")
	}
	return a.memAnchor.Save(ctx, seq, hash)
}

// TestAnchorEdgeCases: a forged row under the anchored digest's number and
// hash column is refused (the row's own hash is checked); an anchor that
// lags the file (a failed save) is caught up, by Open and before pruning,
// so that pruning never deletes the digest the anchor names and a restart
// after normal operation is not refused.
func TestAnchorEdgeCases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	anchor := &flakyAnchor{}
	sg := newTestSigner(t)
	l, err := Open(t.Context(), path, Options{Mode: Durable, Anchor: anchor})
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	record(t, l, 3, old, "Encrypt")
	if _, _, err := l.WriteDigest(t.Context(), sg, old); err != nil {
		t.Fatal(err)
	}
	record(t, l, 3, old, "Encrypt")
	anchor.fail = true
	if _, _, err := l.WriteDigest(t.Context(), sg, old.Add(time.Minute)); err == nil {
		t.Fatal("a failed anchor save went unreported")
	}
	if anchor.seq != 1 {
		t.Fatalf("anchor at #%d, want #1 (the save failed)", anchor.seq)
	}
	anchor.fail = false
	// Pruning would delete digest #1, which the anchor names: it catches
	// the anchor up first.
	if _, err := l.Prune(t.Context(), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if anchor.seq != 2 {
		t.Fatalf("anchor at #%d after pruning, want #2", anchor.seq)
	}
	l.Close()
	l, err = Open(t.Context(), path, Options{Mode: Durable, Anchor: anchor})
	if err != nil {
		t.Fatalf("restart after a lagging anchor and pruning: %v", err)
	}
	// A lag left at shutdown is caught up by Open.
	record(t, l, 2, time.Now(), "Encrypt")
	anchor.fail = true
	_, _, _ = l.WriteDigest(t.Context(), sg, time.Now())
	anchor.fail = false
	l.Close()
	if l, err = Open(t.Context(), path, Options{Mode: Durable, Anchor: anchor}); err != nil {
		t.Fatalf("restart with a lagging anchor: %v", err)
	}
	if anchor.seq != 3 {
		t.Fatalf("anchor at #%d after Open, want #3", anchor.seq)
	}
	// The anchored row forged in place, hash column kept.
	if _, err := l.w.Exec(`UPDATE digests SET head_hash = X'00', last_seq = 0, first_seq = 1, signature = X'00' WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := Open(t.Context(), path, Options{Mode: Durable, Anchor: anchor}); !errors.Is(err, ErrAnchorMismatch) {
		t.Fatalf("Open over a forged anchored row: %v, want ErrAnchorMismatch", err)
	}
}

// TestFlushBeforeFinalDigest: in async mode Record returns before the event
// is written; Flush waits for everything recorded before it, so the last
// digest at shutdown covers every event (before, queued events could be
// left unsigned after a clean shutdown).
func TestFlushBeforeFinalDigest(t *testing.T) {
	l, err := Open(t.Context(), filepath.Join(t.TempDir(), "audit.db"), Options{Mode: Async})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sg := newTestSigner(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		l.RunMaintenance(ctx, sg, time.Hour, 0, time.Now, slog.New(slog.DiscardHandler))
		close(done)
	}()
	record(t, l, 200, time.Now(), "Encrypt")
	cancel() // shutdown: the final digest
	<-done
	rep, err := l.Verify(t.Context(), sg.verify)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Events != 200 || rep.Unsigned != 0 {
		t.Fatalf("after the final digest: %+v", rep)
	}
}

// TestLookupPageBytes: a page also ends at maxPageBytes (each page at least
// one event), and the pages together still hold every event once.
func TestLookupPageBytes(t *testing.T) {
	l, err := Open(t.Context(), filepath.Join(t.TempDir(), "audit.db"), Options{Mode: Durable})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	record(t, l, 10, time.Now(), "Encrypt")
	one, err := l.Lookup(t.Context(), Filter{MaxResults: 1})
	if err != nil || len(one.Events) != 1 {
		t.Fatal(err)
	}
	defer func(old int) { maxPageBytes = old }(maxPageBytes)
	maxPageBytes = 3*len(one.Events[0]) + 10 // three events fit, not four
	f := Filter{MaxResults: 100}
	seen := map[string]bool{}
	for pages := 1; ; pages++ {
		p, err := l.Lookup(t.Context(), f)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Events) > 3 {
			t.Fatalf("page %d holds %d events over the byte bound", pages, len(p.Events))
		}
		for _, ev := range p.Events {
			seen[string(ev)] = true
		}
		if p.NextToken == "" {
			break
		}
		f.NextToken = p.NextToken
	}
	if len(seen) != 10 {
		t.Fatalf("the pages held %d distinct events, want 10", len(seen))
	}
}

package audit

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	// Registers the "sqlite3" database/sql driver.
	_ "github.com/mattn/go-sqlite3"
)

// Mode says when Record returns.
type Mode string

const (
	// Durable: Record returns once the event is committed and fsynced, so
	// a response sent after it can never outlive its record. Concurrent
	// events share one transaction and one fsync (group commit).
	Durable Mode = "durable"
	// Async: Record returns once the event is queued; a crash loses the
	// events still queued (at most a few milliseconds' worth) and, with
	// synchronous=NORMAL, the last commits before a power loss.
	Async Mode = "async"
	// Off: no audit trail at all.
	Off Mode = "off"
)

// maxBatch bounds one group commit, so a backlog is written in chunks that
// each release their waiters promptly.
const maxBatch = 2048

// asyncLinger is how long the async writer gathers events for one
// transaction: also the most a crash can lose beyond the queue.
const asyncLinger = 2 * time.Millisecond

// durableLinger is how long the durable writer keeps gathering events once
// it has taken what was queued. Every commit costs an fsync, which on this
// kind of machine is CPU as well as latency (the kernel writes the buffers
// from the calling thread): requests that arrive within half a millisecond
// share the commit. At concurrency 16 (scripts/bench-audit) it moved the
// durable drop against audit off from 38% to 31-37%, within this machine's
// noise of a few points.
const durableLinger = 500 * time.Microsecond

// queueSize bounds the events waiting for the writer; Record blocks (never
// drops) when it is full.
const queueSize = 8192

// Options configure a Log.
type Options struct {
	Mode Mode
	// OnCommit, if set, is called after every group commit with the number
	// of events and the time the transaction took (metrics).
	OnCommit func(events int, took time.Duration)
	// Log gets the background checkpointer's problems and async write
	// failures (nil: slog.Default()).
	Log *slog.Logger
	// OnLost, if set, is called with the number of events an async commit
	// failed to write (metrics): nobody waits for those commits, so nothing
	// else would tell.
	OnLost func(events int)
	// Anchor, if set, remembers outside the audit file which digest was
	// signed last (anchor.go): Open refuses a file that no longer holds
	// it, and Verify reports it, so that a file rewritten wholesale is not
	// signed onward as if it were the trail.
	Anchor Anchor
	// Reanchor makes Open accept a file that does not hold the anchored
	// digest (after an operator restored or replaced it knowingly): the
	// mismatch is logged and the next digest is anchored afresh.
	Reanchor bool
}

// Log is the audit trail: an append-only, hash-chained table of events in
// its own SQLite file, written by one goroutine. One Log writes a file;
// two processes must not share one audit file (their chains would fork).
type Log struct {
	mode Mode
	path string
	w    *sql.DB // the single writer connection
	r    *sql.DB // readers (lookup, verify)
	// inserts[i] adds 1<<i rows in one statement, prepared once:
	// preparing per batch parsed the SQL on every commit, and a statement
	// per row cost a database/sql round trip and a cgo call per event.
	inserts [insertSizes]*sql.Stmt
	// ck checkpoints the WAL in the background (checkpointer).
	ck             *sql.DB
	stopCk, ckDone chan struct{}
	queue          chan *pending
	depth          atomic.Int64
	opts           Options

	// mu orders Close against Record.
	mu     sync.RWMutex
	closed bool
	done   chan struct{}
	// writeMu serialises the event writer and the digest writer.
	writeMu sync.Mutex
	// head and next are the chain's state after the last commit; only the
	// writer goroutine and digest/prune (under writeMu) use them.
	head []byte
	next int64
	// lastFailure is the last commit's failure (nil after a commit
	// succeeds): Ping reports it for failureMemory, so readiness sees a
	// trail that has stopped writing even in async mode, and is ready again
	// to let requests (and with them commits) retry.
	lastFailure atomic.Pointer[commitFailure]
	lostWarned  time.Time // writer goroutine only
	// anchorLags: the last digest written could not be anchored;
	// WriteDigest catches up before anything else, and Prune waits for it
	// (it could delete the digest the anchor still names).
	anchorLags atomic.Bool
}

type pending struct {
	body      []byte
	eventTime int64
	name      string
	keys      string
	principal string
	errorCode string
	account   string
	done      chan error // nil in async mode
	// barrier: not an event; the writer answers done once everything
	// queued before it is committed (Flush).
	barrier bool
}

// ErrClosed is returned by Record after Close.
var ErrClosed = errors.New("audit: log closed")

// genesis is the prev hash of the first event ever written.
var genesis = make([]byte, sha256.Size)

const schema = `
CREATE TABLE IF NOT EXISTS events (
	seq        INTEGER PRIMARY KEY,
	event_time INTEGER NOT NULL,
	event_name TEXT    NOT NULL,
	key_arns   TEXT    NOT NULL,
	principal  TEXT    NOT NULL,
	error_code TEXT    NOT NULL,
	account    TEXT    NOT NULL,
	body       BLOB    NOT NULL,
	prev_hash  BLOB    NOT NULL,
	hash       BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS events_time ON events(event_time);
CREATE TABLE IF NOT EXISTS digests (
	seq         INTEGER PRIMARY KEY,
	created     INTEGER NOT NULL,
	first_seq   INTEGER NOT NULL,
	last_seq    INTEGER NOT NULL,
	event_count INTEGER NOT NULL,
	head_hash   BLOB    NOT NULL,
	prev_digest BLOB    NOT NULL,
	key_id      TEXT    NOT NULL,
	signature   BLOB    NOT NULL,
	hash        BLOB    NOT NULL
);
`

// Open opens (creating if needed) the audit file at path and starts its
// writer. Mode Off returns a nil *Log, on which Record is a no-op.
func Open(ctx context.Context, path string, opts Options) (*Log, error) {
	switch opts.Mode {
	case Off:
		return nil, nil
	case "", Durable:
		opts.Mode = Durable
	case Async:
	default:
		return nil, fmt.Errorf("audit: unknown mode %q", opts.Mode)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600); err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	} else {
		f.Close()
	}
	// synchronous=FULL makes every commit durable (one fsync of the WAL);
	// async mode settles for NORMAL, which cannot corrupt the file but may
	// lose the last commits on power loss.
	sync := "FULL"
	if opts.Mode == Async {
		sync = "NORMAL"
	}
	base := "file:" + filepath.Clean(path) + "?_journal_mode=WAL&_busy_timeout=5000&_synchronous=" + sync
	// The writer never checkpoints (wal_autocheckpoint=0): a checkpoint
	// inside a commit copied megabytes and fsynced the file while every
	// request of the group waited. A background connection checkpoints
	// instead (checkpointer), without blocking the writer.
	w, err := sql.Open("sqlite3", base+"&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if _, err := w.ExecContext(ctx, "PRAGMA wal_autocheckpoint=0"); err != nil {
		w.Close()
		return nil, fmt.Errorf("audit: %s: %w", path, err)
	}
	if _, err := w.ExecContext(ctx, schema); err != nil {
		w.Close()
		return nil, fmt.Errorf("audit: schema of %s: %w", path, err)
	}
	r, err := sql.Open("sqlite3", base+"&_query_only=on")
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(4)
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	l := &Log{mode: opts.Mode, path: path, w: w, r: r, opts: opts,
		queue: make(chan *pending, queueSize), done: make(chan struct{})}
	if err := l.loadHead(ctx); err != nil {
		l.w.Close()
		l.r.Close()
		return nil, err
	}
	if err := l.checkAnchor(ctx); err != nil {
		if !opts.Reanchor {
			l.w.Close()
			l.r.Close()
			return nil, err
		}
		opts.Log.Warn("audit: accepting an audit file that does not hold the last digest signed (audit.reanchor)", "path", path, "err", err)
	}
	if err := l.prepareInserts(ctx); err != nil {
		l.closeInserts()
		l.w.Close()
		l.r.Close()
		return nil, fmt.Errorf("audit: prepare: %w", err)
	}
	ck, err := sql.Open("sqlite3", base)
	if err != nil {
		l.closeInserts()
		l.w.Close()
		l.r.Close()
		return nil, err
	}
	ck.SetMaxOpenConns(1)
	l.ck = ck
	l.stopCk = make(chan struct{})
	l.ckDone = make(chan struct{})
	go l.writer()
	go l.checkpointer()
	return l, nil
}

// insertSizes is how many multi-row insert statements there are: for 1,
// 2, 4, ... 32 rows (320 parameters, far below SQLite's limit).
const insertSizes = 6

// eventColumns is the number of columns an event row binds.
const eventColumns = 10

func (l *Log) prepareInserts(ctx context.Context) error {
	row := "(" + strings.Repeat("?, ", eventColumns-1) + "?)"
	for i := range l.inserts {
		rows := strings.Repeat(row+", ", (1<<i)-1) + row
		st, err := l.w.PrepareContext(ctx, `INSERT INTO events
			(seq, event_time, event_name, key_arns, principal, error_code, account, body, prev_hash, hash)
			VALUES `+rows)
		if err != nil {
			return err
		}
		l.inserts[i] = st
	}
	return nil
}

func (l *Log) closeInserts() error {
	var errs []error
	for _, st := range l.inserts {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// loadHead reads the chain's last hash and sequence number.
func (l *Log) loadHead(ctx context.Context) error {
	var seq int64
	var hash []byte
	err := l.w.QueryRowContext(ctx, `SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// Empty table: continue after the last digest (everything may
		// have been pruned), else from genesis.
		err = l.w.QueryRowContext(ctx, `SELECT last_seq, head_hash FROM digests ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
		if errors.Is(err, sql.ErrNoRows) {
			l.head, l.next = genesis, 1
			return nil
		}
		if err != nil {
			return fmt.Errorf("audit: read chain head: %w", err)
		}
	case err != nil:
		return fmt.Errorf("audit: read chain head: %w", err)
	}
	l.head, l.next = hash, seq+1
	return nil
}

// Mode returns the log's mode (Off for a nil Log).
func (l *Log) Mode() Mode {
	if l == nil {
		return Off
	}
	return l.mode
}

// QueueDepth is the number of events waiting for the writer.
func (l *Log) QueueDepth() int {
	if l == nil {
		return 0
	}
	return int(l.depth.Load())
}

// Ping checks that the audit file is writable (readiness).
func (l *Log) Ping(ctx context.Context) error {
	if l == nil {
		return nil
	}
	if f := l.lastFailure.Load(); f != nil && time.Since(f.at) < failureMemory {
		return fmt.Errorf("audit: the last commit failed: %w", f.err)
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	// BEGIN IMMEDIATE takes the write lock: a read-only or full file,
	// or another process holding the lock, fails here.
	tx, err := l.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit: database not writable: %w", err)
	}
	return tx.Rollback()
}

// chainHash is the hash of an event: it covers the previous event's hash
// and the stored bytes of the event, so changing, removing, inserting or
// reordering any event breaks the links after it.
func chainHash(prev, body []byte) []byte {
	h := sha256.New()
	h.Write([]byte("kmsd-audit-event-v1\x00"))
	h.Write(prev)
	h.Write(body)
	return h.Sum(nil)
}

// Record stores ev. In durable mode it returns after the event's
// transaction committed; in async mode after it was queued.
func (l *Log) Record(ctx context.Context, ev *Event) error {
	if l == nil {
		return nil
	}
	body, err := encodeEvent(make([]byte, 0, 1024), ev)
	if err != nil {
		return fmt.Errorf("audit: encode event: %w", err)
	}
	p := &pending{
		body: body, eventTime: ev.Time().Unix(), name: ev.EventName, keys: ev.keyARNs(),
		principal: ev.principal(), errorCode: ev.ErrorCode, account: ev.RecipientAccountID,
	}
	if l.mode == Durable {
		p.done = make(chan error, 1)
	}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	l.depth.Add(1)
	select {
	case l.queue <- p:
	case <-ctx.Done():
		l.depth.Add(-1)
		l.mu.RUnlock()
		return ctx.Err()
	}
	l.mu.RUnlock()
	if p.done == nil {
		return nil
	}
	// Abandoned only when ctx ends (its deadline: the caller must not
	// answer success before knowing the record is on disk, so it answers
	// a failure then). The commit takes milliseconds; a stalled disk must
	// not hold every request's goroutine and memory without bound. The
	// writer still commits the event later (done is buffered).
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("audit: the record was not committed in time: %w", ctx.Err())
	}
}

// splitBarriers separates Flush's barriers from the events of a batch
// (almost always there are none: no copy then).
func splitBarriers(batch []*pending) (events, barriers []*pending) {
	for i, p := range batch {
		if p.barrier {
			events = append(events, batch[:i]...)
			for _, q := range batch[i:] {
				if q.barrier {
					barriers = append(barriers, q)
				} else {
					events = append(events, q)
				}
			}
			return events, barriers
		}
	}
	return batch, nil
}

// Flush returns once every event recorded before it is committed (in async
// mode Record returns before that): the last digest at shutdown must cover
// them, or they would be left unsigned.
func (l *Log) Flush(ctx context.Context) error {
	if l == nil {
		return nil
	}
	b := &pending{barrier: true, done: make(chan error, 1)}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	select {
	case l.queue <- b:
	case <-ctx.Done():
		l.mu.RUnlock()
		return ctx.Err()
	}
	l.mu.RUnlock()
	select {
	case err := <-b.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writer is the single goroutine that writes events: it takes everything
// queued (up to maxBatch) into one transaction, so concurrent requests
// share its commit and fsync.
func (l *Log) writer() {
	defer close(l.done)
	batch := make([]*pending, 0, maxBatch)
	lastBatch := 0
	for p := range l.queue {
		batch = append(batch[:0], p)
		// Async: nobody waits for the commit, so linger a moment to
		// gather more events into the transaction; a transaction per
		// event cost more CPU than the event. Durable: take what is
		// queued now (requests queue up while a commit is in progress,
		// which is what makes the groups), and linger briefly only when
		// the last commit was shared, that is when requests are
		// concurrent: a lone client must not wait for company.
		var linger <-chan time.Time
		switch {
		case l.mode == Async:
			linger = time.After(asyncLinger)
		case l.mode == Durable && lastBatch > 1:
			linger = time.After(durableLinger)
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case q, ok := <-l.queue:
				if !ok {
					break fill
				}
				batch = append(batch, q)
				continue
			default:
			}
			if linger == nil {
				break
			}
			select {
			case q, ok := <-l.queue:
				if !ok {
					break fill
				}
				batch = append(batch, q)
			case <-linger:
				break fill
			}
		}
		lastBatch = len(batch)
		events, barriers := splitBarriers(batch)
		var err error
		if len(events) > 0 {
			err = l.commit(events)
			l.depth.Add(-int64(len(events)))
			l.noteCommit(err, len(events))
		}
		for _, q := range events {
			if q.done != nil {
				q.done <- err
			}
		}
		for _, q := range barriers {
			q.done <- err
		}
	}
}

type commitFailure struct {
	err error
	at  time.Time
}

// failureMemory is how long Ping reports a failed commit.
const failureMemory = 30 * time.Second

// noteCommit keeps the last commit's outcome for Ping and, in async mode,
// where no request waits for the commit, counts and logs (once a minute)
// the events a failed commit lost.
func (l *Log) noteCommit(err error, events int) {
	if err == nil {
		l.lastFailure.Store(nil)
		return
	}
	l.lastFailure.Store(&commitFailure{err: err, at: time.Now()})
	if l.mode != Async {
		return // the waiting requests answer with the error
	}
	if l.opts.OnLost != nil {
		l.opts.OnLost(events)
	}
	if time.Since(l.lostWarned) > time.Minute {
		l.lostWarned = time.Now()
		l.opts.Log.Error("audit: events could not be written (async mode: their requests were already answered)", "path", l.path, "events", events, "err", err)
	}
}

func (l *Log) commit(batch []*pending) error {
	start := time.Now()
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	// Never cancelled: a half-written batch is rolled back by SQLite, but
	// an abandoned one would leave its waiters without an answer.
	ctx := context.Background()
	tx, err := l.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit: begin: %w", err)
	}
	head, next := l.head, l.next
	args := make([]any, 0, eventColumns<<(insertSizes-1))
	for rest := batch; len(rest) > 0; {
		size := insertSizes - 1
		for 1<<size > len(rest) {
			size--
		}
		chunk := rest[:1<<size]
		rest = rest[1<<size:]
		args = args[:0]
		for _, p := range chunk {
			h := chainHash(head, p.body)
			args = append(args, next, p.eventTime, p.name, p.keys, p.principal, p.errorCode, p.account, p.body, head, h)
			head, next = h, next+1
		}
		// The same connection as tx: no re-prepare.
		if _, err := tx.StmtContext(ctx, l.inserts[size]).ExecContext(ctx, args...); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("audit: insert: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit: commit: %w", err)
	}
	l.head, l.next = head, next
	if l.opts.OnCommit != nil {
		l.opts.OnCommit(len(batch), time.Since(start))
	}
	return nil
}

// Close stops accepting events, writes those queued and closes the file.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.queue)
	l.mu.Unlock()
	<-l.done
	close(l.stopCk)
	<-l.ckDone
	return errors.Join(l.closeInserts(), l.ck.Close(), l.r.Close(), l.w.Close())
}

// Path returns the audit file's path.
func (l *Log) Path() string { return l.path }

// checkpointInterval is how often the background checkpointer runs.
const checkpointInterval = 250 * time.Millisecond

// checkpointer copies committed WAL frames into the database file in the
// background, so commits never pay for a checkpoint.
func (l *Log) checkpointer() {
	defer close(l.ckDone)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	var warned time.Time
	for {
		select {
		case <-l.stopCk:
			return
		case <-t.C:
		}
		// A reader's snapshot can hold the checkpoint back for a while
		// (a long verify or lookup); a checkpoint that keeps failing would
		// let the WAL grow without bound again, so say so, once a minute.
		if err := l.checkpoint(); err != nil && time.Since(warned) > time.Minute {
			warned = time.Now()
			l.opts.Log.Warn("audit: checkpointing the WAL", "path", l.path, "err", err)
		}
	}
}

// lockedCheckpointFrames bounds what the checkpoint copies with the writer
// held (4 KiB frames): durable requests wait for that long.
const lockedCheckpointFrames = 256

// checkpoint copies the WAL into the database file so that the writer's
// next transaction starts the WAL over from its beginning.
//
// SQLite starts the WAL over only when a write transaction begins with
// every frame already copied. A checkpoint running beside a writer that
// commits every millisecond or two never catches up, so the WAL only grew:
// by 17 MB/s at 4,400 events/s, without bound. Appending was also the
// costlier write for durable commits: an fdatasync that extends a file
// costs 1.5-2x one that overwrites blocks the file already has (measured
// on this machine). So frames are copied while the writer goes on
// (PASSIVE never blocks it), twice, the second pass taking what the
// writer committed during the first; then the few committed since, with
// the writer held between two commits. From then on commits overwrite the
// WAL's first blocks.
func (l *Log) checkpoint() error {
	for range 2 {
		left, err := l.passiveCheckpoint()
		if err != nil {
			return err
		}
		if left > lockedCheckpointFrames {
			// Held back (a reader's snapshot): not worth holding the
			// writer for; the next interval tries again.
			return fmt.Errorf("%d WAL frames could not be copied yet (a long read holds them back)", left)
		}
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	_, err := l.passiveCheckpoint()
	return err
}

// passiveCheckpoint runs one PASSIVE checkpoint and returns how many WAL
// frames it could not copy.
func (l *Log) passiveCheckpoint() (left int, err error) {
	var busy, frames, copied int
	if err := l.ck.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil {
		return 0, err
	}
	return frames - copied, nil
}

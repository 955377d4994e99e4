package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"hsmkms/kms"
)

// Invocation reservations are group-committed. Each reservation must be
// durable before its block is used (synchronous=FULL: one fsync per
// commit), and after a restart every key's first Encrypt reserves a block,
// so with many keys the fsyncs, taken one at a time, would stall Encrypt
// for seconds. Concurrent reservations are therefore applied by one
// goroutine in one transaction and one fsync; each still gets exactly the
// answer it would get alone, because the statements run one after another
// under the write lock.

// maxReserveBatch bounds the reservations of one transaction.
const maxReserveBatch = 256

type reserveRequest struct {
	keyID    string
	version  int
	n, bound uint64
	before   uint64
	err      error
	done     chan struct{}
}

type reserveBatcher struct {
	s        *Store
	queue    chan *reserveRequest
	stop     chan struct{}
	stopOnce sync.Once
	stopped  sync.WaitGroup
}

var errStoreClosed = errors.New("store closed")

func newReserveBatcher(s *Store) *reserveBatcher {
	b := &reserveBatcher{s: s, queue: make(chan *reserveRequest, maxReserveBatch), stop: make(chan struct{})}
	b.stopped.Add(1)
	go b.run()
	return b
}

// close stops the batcher; requests still queued fail with errStoreClosed.
func (b *reserveBatcher) close() {
	b.stopOnce.Do(func() { close(b.stop) })
	b.stopped.Wait()
}

// submit queues a reservation and waits for its answer or for ctx. A
// request abandoned by its caller may still be applied: that only forfeits
// invocations, which is the safe direction.
func (b *reserveBatcher) submit(ctx context.Context, r *reserveRequest) error {
	r.done = make(chan struct{})
	select {
	case b.queue <- r:
	case <-b.stop:
		return errStoreClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *reserveBatcher) run() {
	defer b.stopped.Done()
	for {
		var first *reserveRequest
		select {
		case first = <-b.queue:
		case <-b.stop:
			b.failQueued()
			return
		}
		batch := []*reserveRequest{first}
	collect:
		for len(batch) < maxReserveBatch {
			select {
			case r := <-b.queue:
				batch = append(batch, r)
			default:
				break collect
			}
		}
		b.apply(batch)
	}
}

func (b *reserveBatcher) failQueued() {
	for {
		select {
		case r := <-b.queue:
			r.err = errStoreClosed
			close(r.done)
		default:
			return
		}
	}
}

// apply runs a batch in one write transaction. Per-request outcomes
// (exhausted, unknown version) do not abort the others; a failing commit
// fails them all.
func (b *reserveBatcher) apply(batch []*reserveRequest) {
	// The batch is not tied to any one caller's context.
	ctx := context.Background()
	err := b.s.writeTx(ctx, func(tx *sql.Tx) error {
		for _, r := range batch {
			r.before, r.err = reserveInTx(ctx, tx, r.keyID, r.version, r.n, r.bound)
			if r.err != nil && !errors.Is(r.err, kms.ErrStoreExhausted) && !errors.Is(r.err, sql.ErrNoRows) {
				return r.err
			}
		}
		return nil
	})
	for _, r := range batch {
		if err != nil {
			r.err = err
		}
		close(r.done)
	}
}

// reserveInTx is one reservation inside a write transaction; see
// ReserveInvocations.
func reserveInTx(ctx context.Context, tx *sql.Tx, keyID string, version int, n, bound uint64) (uint64, error) {
	bound = min(bound, maxReserved)
	if n > bound {
		// Cannot fit even into an unused version; only tell "absent" from
		// "exhausted".
		if _, err := getVersionState(ctx, tx, keyID, version); err != nil {
			return 0, err
		}
		return 0, kms.ErrStoreExhausted
	}
	var old int64
	err := tx.QueryRowContext(ctx, `UPDATE key_versions SET reserved = reserved + ?
		WHERE key_id = ? AND version = ? AND reserved <= ?
		RETURNING reserved - ?`,
		int64(n), keyID, version, int64(bound-n), int64(n)).Scan(&old)
	if err == sql.ErrNoRows {
		if _, err := getVersionState(ctx, tx, keyID, version); err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("%w: %d more would pass %d", kms.ErrStoreExhausted, n, bound)
	}
	return uint64(old), err
}

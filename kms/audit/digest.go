package audit

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Signer signs digests with a key held in the HSM. KeyID names the key in
// digests; Sign receives a SHA-256 hash and returns a signature that
// VerifySignature with the key's public key accepts.
type Signer interface {
	KeyID() string
	Sign(ctx context.Context, hash []byte) ([]byte, error)
}

// Digest is a signed statement about the chain: the events FirstSeq..LastSeq
// (Count of them) exist and the last one's hash is HeadHash; PrevDigest is
// the hash of the digest before, so digests form a chain of their own.
type Digest struct {
	Seq        int64     `json:"digestSeq"`
	Created    time.Time `json:"created"`
	FirstSeq   int64     `json:"firstSeq"`
	LastSeq    int64     `json:"lastSeq"`
	Count      int64     `json:"eventCount"`
	HeadHash   []byte    `json:"headHash"`
	PrevDigest []byte    `json:"previousDigestHash"`
	KeyID      string    `json:"signingKeyId"`
	Signature  []byte    `json:"signature"`
	Hash       []byte    `json:"digestHash"`
}

// payload is the signed content of a digest: fixed-width fields, so there
// is exactly one encoding.
func (d *Digest) payload() []byte {
	b := []byte("kmsd-audit-digest-v1\x00")
	b = binary.BigEndian.AppendUint64(b, uint64(d.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(d.Created.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, uint64(d.FirstSeq))
	b = binary.BigEndian.AppendUint64(b, uint64(d.LastSeq))
	b = binary.BigEndian.AppendUint64(b, uint64(d.Count))
	b = append(b, d.HeadHash...)
	b = append(b, d.PrevDigest...)
	b = append(b, d.KeyID...)
	return b
}

// signedHash is what the signer signs.
func (d *Digest) signedHash() []byte {
	h := sha256.Sum256(d.payload())
	return h[:]
}

// chainHash is the digest's own hash, which the next digest names.
func (d *Digest) chainHash() []byte {
	h := sha256.New()
	h.Write(d.payload())
	h.Write(d.Signature)
	return h.Sum(nil)
}

// WriteDigest signs and stores a digest of the events written since the
// last digest. It writes nothing when there are none. It holds the writer
// lock while it reads the head, signs and stores: one HSM signature every
// interval, so event commits wait for it at most a millisecond or so.
func (l *Log) WriteDigest(ctx context.Context, signer Signer, now time.Time) (*Digest, bool, error) {
	if l == nil {
		return nil, false, nil
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if l.anchorLags.Load() {
		if err := l.checkAnchor(ctx); err != nil {
			return nil, false, err
		}
	}
	last, err := lastDigest(ctx, l.w)
	if err != nil {
		return nil, false, err
	}
	head, next := l.head, l.next
	d := &Digest{Seq: 1, Created: now.UTC(), FirstSeq: 1, LastSeq: next - 1, HeadHash: head, PrevDigest: genesis, KeyID: signer.KeyID()}
	if last != nil {
		d.Seq = last.Seq + 1
		d.FirstSeq = last.LastSeq + 1
		d.PrevDigest = last.Hash
	}
	if d.LastSeq < d.FirstSeq {
		return nil, false, nil
	}
	d.Count = d.LastSeq - d.FirstSeq + 1
	sig, err := signer.Sign(ctx, d.signedHash())
	if err != nil {
		return nil, false, fmt.Errorf("audit: sign digest: %w", err)
	}
	d.Signature = sig
	d.Hash = d.chainHash()
	if l.mode == Async {
		// The anchor must never be ahead of the file: in async mode
		// commits are not synced, so this one is (and with it the WAL
		// before it) before the anchor names it.
		if _, err := l.w.ExecContext(ctx, `PRAGMA synchronous=FULL`); err != nil {
			return nil, false, fmt.Errorf("audit: store digest: %w", err)
		}
		defer func() { _, _ = l.w.ExecContext(context.WithoutCancel(ctx), `PRAGMA synchronous=NORMAL`) }()
	}
	_, err = l.w.ExecContext(ctx, `INSERT INTO digests
		(seq, created, first_seq, last_seq, event_count, head_hash, prev_digest, key_id, signature, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.Seq, d.Created.UnixNano(), d.FirstSeq, d.LastSeq, d.Count, d.HeadHash, d.PrevDigest, d.KeyID, d.Signature, d.Hash)
	if err != nil {
		return nil, false, fmt.Errorf("audit: store digest: %w", err)
	}
	if a := l.opts.Anchor; a != nil {
		// After the digest is in the file: an anchor behind the file (a
		// crash in between) is caught up later (checkAnchor), one ahead
		// of it is what Open refuses.
		if err := a.Save(ctx, d.Seq, d.Hash); err != nil {
			l.anchorLags.Store(true)
			return d, true, fmt.Errorf("audit: digest #%d written, but its anchor not saved: %w", d.Seq, err)
		}
	}
	return d, true, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

const digestColumns = `seq, created, first_seq, last_seq, event_count, head_hash, prev_digest, key_id, signature, hash`

func scanDigest(sc interface{ Scan(...any) error }) (*Digest, error) {
	var d Digest
	var created int64
	if err := sc.Scan(&d.Seq, &created, &d.FirstSeq, &d.LastSeq, &d.Count, &d.HeadHash, &d.PrevDigest, &d.KeyID, &d.Signature, &d.Hash); err != nil {
		return nil, err
	}
	d.Created = time.Unix(0, created).UTC()
	return &d, nil
}

func lastDigest(ctx context.Context, q querier) (*Digest, error) {
	d, err := scanDigest(q.QueryRowContext(ctx, `SELECT `+digestColumns+` FROM digests ORDER BY seq DESC LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: read digest: %w", err)
	}
	return d, nil
}

// RunMaintenance writes a digest every interval and, if retention is
// positive, prunes events older than it; it returns when ctx is done, after
// a last digest so that a clean shutdown leaves no event unsigned.
func (l *Log) RunMaintenance(ctx context.Context, signer Signer, interval, retention time.Duration, now func() time.Time, log *slog.Logger) {
	if l == nil || signer == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			// Async mode: what is still queued goes into the file first, so
			// that the last digest covers it.
			if err := l.Flush(sctx); err != nil {
				log.Error("audit: flushing the queue before the final digest failed", "err", err)
			}
			if _, _, err := l.WriteDigest(sctx, signer, now()); err != nil {
				log.Error("audit: final digest failed", "err", err)
			}
			cancel()
			return
		case <-t.C:
		}
		if _, _, err := l.WriteDigest(ctx, signer, now()); err != nil {
			log.Error("audit: digest failed", "err", err)
			continue
		}
		if retention > 0 {
			n, err := l.Prune(ctx, now().Add(-retention))
			if err != nil {
				log.Error("audit: pruning failed", "err", err)
			} else if n > 0 {
				log.Info("audit: pruned events past retention", "events", n)
			}
		}
	}
}

// Prune deletes events older than before, but only whole digest ranges:
// it cuts after the last digest whose events are all older, so the kept
// chain starts right after a signed digest whose head hash is the first
// kept event's previous hash. Digests before that one are deleted too; the
// boundary digest stays as the anchor. It returns the events deleted.
func (l *Log) Prune(ctx context.Context, before time.Time) (int64, error) {
	if l == nil {
		return 0, nil
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if l.anchorLags.Load() {
		// The anchor still names an older digest, which pruning could
		// delete: catch up first, or prune another time.
		if err := l.checkAnchor(ctx); err != nil {
			return 0, fmt.Errorf("audit: prune: %w", err)
		}
	}
	// The newest digest made before the cut-off: its events are all older.
	// Its creation time is signed; the events' time column is not covered
	// by the hash chain, so an edit to it must not decide what is deleted.
	var boundarySeq, lastSeq int64
	err := l.w.QueryRowContext(ctx, `SELECT seq, last_seq FROM digests
		WHERE created < ? ORDER BY seq DESC LIMIT 1`, before.UnixNano()).Scan(&boundarySeq, &lastSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("audit: prune: %w", err)
	}
	tx, err := l.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM events WHERE seq <= ?`, lastSeq)
	if err != nil {
		_ = tx.Rollback()
		return 0, fmt.Errorf("audit: prune: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM digests WHERE seq < ?`, boundarySeq); err != nil {
		_ = tx.Rollback()
		return 0, fmt.Errorf("audit: prune: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return n, nil
}

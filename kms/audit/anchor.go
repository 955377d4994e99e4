package audit

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Anchor keeps, outside the audit file, the sequence number and hash of
// the last digest kmsd signed. Without it, whoever can write the audit file
// could rewrite its history wholesale (events and digests, hashes
// recomputed, or the file replaced) and, at the next start, kmsd would go
// on signing digests of the forged chain with the HSM key. kmsd keeps the
// anchor in its metadata database, another file with other permissions to
// guard; it is no substitute for copies of the signed digests kept away
// from the host, which is what detects a rewrite of both.
type Anchor interface {
	// Load returns the anchored digest; seq 0 when there is none yet.
	Load(ctx context.Context) (seq int64, hash []byte, err error)
	// Save anchors a digest just written.
	Save(ctx context.Context, seq int64, hash []byte) error
}

// ErrAnchorMismatch: the audit file does not hold the last digest signed.
var ErrAnchorMismatch = errors.New("audit: the audit file does not hold the last digest kmsd signed")

// checkAnchor compares the file with the anchor and brings the anchor up
// to the file's last digest when every digest after the anchored one
// chains from it (an anchor can lag: a crash, or a failed save, between
// writing a digest and anchoring it).
func (l *Log) checkAnchor(ctx context.Context) error {
	if l.opts.Anchor == nil {
		return nil
	}
	seq, hash, err := l.opts.Anchor.Load(ctx)
	if err != nil {
		return fmt.Errorf("audit: read the digest anchor: %w", err)
	}
	last, err := anchoredChain(ctx, l.r, seq, hash)
	if err != nil {
		return err
	}
	if last != nil && last.Seq != seq {
		if err := l.opts.Anchor.Save(ctx, last.Seq, last.Hash); err != nil {
			return fmt.Errorf("audit: bring the digest anchor up to #%d: %w", last.Seq, err)
		}
	}
	l.anchorLags.Store(false)
	return nil
}

// anchoredChain checks that the file behind db holds the anchored digest
// (seq, hash) unaltered and that every later digest chains from it; it
// returns the last digest (nil when seq is 0 and the file has none). The
// row is checked by its own hash over its content and signature, not by
// the hash column alone, which an editor could copy onto a forged row.
// Whether the events match what the digests signed is Verify's to report:
// new digests sign only events after the last one, chained from it, so a
// rewritten signed range stays visible however long kmsd runs.
func anchoredChain(ctx context.Context, db *sql.DB, seq int64, hash []byte) (*Digest, error) {
	if seq == 0 {
		return lastDigest(ctx, db)
	}
	rows, err := db.QueryContext(ctx, `SELECT `+digestColumns+` FROM digests WHERE seq >= ? ORDER BY seq`, seq)
	if err != nil {
		return nil, fmt.Errorf("audit: read digests: %w", err)
	}
	defer rows.Close()
	var chain []*Digest
	for rows.Next() {
		d, err := scanDigest(rows)
		if err != nil {
			return nil, err
		}
		chain = append(chain, d)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(chain) == 0 || chain[0].Seq != seq {
		return nil, fmt.Errorf("%w: digest #%d is missing (the file was replaced, truncated or rewritten)", ErrAnchorMismatch, seq)
	}
	first := chain[0]
	if !bytes.Equal(first.chainHash(), hash) || !bytes.Equal(first.Hash, hash) {
		return nil, fmt.Errorf("%w: digest #%d differs from the one signed (the file was rewritten)", ErrAnchorMismatch, seq)
	}
	for i := 1; i < len(chain); i++ {
		d := chain[i]
		if !bytes.Equal(d.chainHash(), d.Hash) || !bytes.Equal(d.PrevDigest, chain[i-1].Hash) || d.Seq != chain[i-1].Seq+1 {
			return nil, fmt.Errorf("%w: digest #%d does not follow the anchored digest #%d", ErrAnchorMismatch, d.Seq, seq)
		}
	}
	return chain[len(chain)-1], nil
}

// anchoredDigestPresent is Verify's form of the check: nil when the file
// holds the anchored chain, else the mismatch.
func anchoredDigestPresent(ctx context.Context, db *sql.DB, seq int64, hash []byte) error {
	_, err := anchoredChain(ctx, db, seq, hash)
	return err
}

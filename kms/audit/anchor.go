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

// checkAnchor compares the file with the anchor.
func (l *Log) checkAnchor(ctx context.Context) error {
	if l.opts.Anchor == nil {
		return nil
	}
	seq, hash, err := l.opts.Anchor.Load(ctx)
	if err != nil {
		return fmt.Errorf("audit: read the digest anchor: %w", err)
	}
	return anchoredDigestPresent(ctx, l.r, seq, hash)
}

// anchoredDigestPresent checks that digest seq with that hash is in the file
// behind db (seq 0: nothing to check).
func anchoredDigestPresent(ctx context.Context, db *sql.DB, seq int64, hash []byte) error {
	if seq == 0 {
		return nil
	}
	var stored []byte
	err := db.QueryRowContext(ctx, `SELECT hash FROM digests WHERE seq = ?`, seq).Scan(&stored)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w: digest #%d is missing (the file was replaced, truncated or rewritten)", ErrAnchorMismatch, seq)
	case err != nil:
		return fmt.Errorf("audit: read digest #%d: %w", seq, err)
	case !bytes.Equal(stored, hash):
		return fmt.Errorf("%w: digest #%d differs from the one signed (the file was rewritten)", ErrAnchorMismatch, seq)
	}
	return nil
}

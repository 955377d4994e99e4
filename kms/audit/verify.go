package audit

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
)

// Finding kinds.
const (
	Altered   = "altered"
	Removed   = "removed"
	Inserted  = "inserted"
	Reordered = "reordered"
	// DigestProblem: a digest's signature, its link to the previous digest
	// or its statement about the events does not hold.
	DigestProblem = "digest"
)

// Finding is one problem verification found, naming the events involved.
type Finding struct {
	Kind    string `json:"kind"`
	Seq     int64  `json:"seq,omitempty"`
	EventID string `json:"eventId,omitempty"`
	Detail  string `json:"detail"`
}

func (f Finding) String() string {
	s := f.Kind
	if f.Seq != 0 {
		s += fmt.Sprintf(": event seq %d", f.Seq)
		if f.EventID != "" {
			s += " (eventID " + f.EventID + ")"
		}
	}
	return s + ": " + f.Detail
}

// Report is the result of Verify.
type Report struct {
	Events   int   `json:"events"`
	Digests  int   `json:"digests"`
	FirstSeq int64 `json:"firstSeq"`
	LastSeq  int64 `json:"lastSeq"`
	Unsigned int64 `json:"unsignedEvents"` // after the last digest, not yet covered by a signature
	// PrunedThrough is the last event removed by retention (0: none); the
	// digest that signed it anchors the kept chain.
	PrunedThrough int64     `json:"prunedThrough,omitempty"`
	Findings      []Finding `json:"findings"`
}

// OK reports whether nothing was found.
func (r *Report) OK() bool { return len(r.Findings) == 0 }

// SignatureVerifier checks a digest signature made by the key keyID.
type SignatureVerifier func(keyID string, hash, signature []byte) error

type storedEvent struct {
	seq              int64
	body, prev, hash []byte
	eventID          string
	intact           bool
	used             bool
	// columnsMatch: the lookup columns (time, name, keys, principal, error
	// code, account), which the hash does not cover, say what the body
	// says. Lookup filters on them and pruning used to cut by the time.
	columnsMatch bool
}

// indexColumnsMatch reports whether the lookup columns stored beside an
// event's body are the ones Record derives from it.
func indexColumnsMatch(body []byte, eventTime int64, name, keys, principal, errorCode, account string) bool {
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return false
	}
	return ev.Time().Unix() == eventTime && ev.EventName == name && ev.keyARNs() == keys &&
		ev.principal() == principal && ev.ErrorCode == errorCode && ev.RecipientAccountID == account
}

// Verify checks the whole trail in the audit file behind l: every event's
// hash, the links between events, every digest's signature and link, and
// that the events match what the digests signed.
func (l *Log) Verify(ctx context.Context, verify SignatureVerifier) (*Report, error) {
	rep, err := VerifyDB(ctx, l.r, verify)
	if err != nil || l.opts.Anchor == nil {
		return rep, err
	}
	// The file must still hold the last digest signed (anchor.go).
	seq, hash, err := l.opts.Anchor.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: read the digest anchor: %w", err)
	}
	if err := anchoredDigestPresent(ctx, l.r, seq, hash); err != nil {
		rep.Findings = append(rep.Findings, Finding{Kind: DigestProblem, Detail: err.Error()})
	}
	return rep, nil
}

// VerifyDB is Verify on any connection to an audit file (kmsctl opens the
// file read-only).
func VerifyDB(ctx context.Context, db *sql.DB, verify SignatureVerifier) (*Report, error) {
	rows, err := db.QueryContext(ctx, `SELECT seq, body, prev_hash, hash,
		event_time, event_name, key_arns, principal, error_code, account FROM events ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("audit: verify: %w", err)
	}
	var evs []*storedEvent
	for rows.Next() {
		e := &storedEvent{}
		var (
			eventTime                                 int64
			name, keys, principal, errorCode, account string
		)
		if err := rows.Scan(&e.seq, &e.body, &e.prev, &e.hash, &eventTime, &name, &keys, &principal, &errorCode, &account); err != nil {
			rows.Close()
			return nil, err
		}
		e.columnsMatch = indexColumnsMatch(e.body, eventTime, name, keys, principal, errorCode, account)
		var id struct {
			EventID string `json:"eventID"`
		}
		_ = json.Unmarshal(e.body, &id)
		e.eventID = id.EventID
		e.intact = bytes.Equal(chainHash(e.prev, e.body), e.hash)
		evs = append(evs, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	drows, err := db.QueryContext(ctx, `SELECT `+digestColumns+` FROM digests ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("audit: verify: %w", err)
	}
	var ds []*Digest
	for drows.Next() {
		d, err := scanDigest(drows)
		if err != nil {
			drows.Close()
			return nil, err
		}
		ds = append(ds, d)
	}
	drows.Close()
	if err := drows.Err(); err != nil {
		return nil, err
	}
	return verifyTrail(evs, ds, verify), nil
}

func verifyTrail(evs []*storedEvent, ds []*Digest, verify SignatureVerifier) *Report {
	rep := &Report{Events: len(evs), Digests: len(ds)}
	if len(evs) > 0 {
		rep.FirstSeq, rep.LastSeq = evs[0].seq, evs[len(evs)-1].seq
	}
	add := func(kind string, e *storedEvent, format string, args ...any) {
		f := Finding{Kind: kind, Detail: fmt.Sprintf(format, args...)}
		if e != nil {
			f.Seq, f.EventID = e.seq, e.eventID
		}
		rep.Findings = append(rep.Findings, f)
	}

	// Where the kept chain starts: at genesis, or (after pruning) right
	// after the first remaining digest, whose head hash anchors it.
	anchor, anchorSeq := genesis, int64(0)
	if len(ds) > 0 && (len(evs) == 0 || evs[0].seq > ds[0].LastSeq) {
		anchor, anchorSeq = ds[0].HeadHash, ds[0].LastSeq
		rep.PrunedThrough = anchorSeq
	}

	byPrev := map[string][]*storedEvent{}
	byHash := map[string]*storedEvent{}
	bySeq := map[int64]*storedEvent{}
	for _, e := range evs {
		byPrev[string(e.prev)] = append(byPrev[string(e.prev)], e)
		byHash[string(e.hash)] = e
		bySeq[e.seq] = e
	}
	digestHeads := map[string]bool{}
	for _, d := range ds {
		digestHeads[string(d.HeadHash)] = true
	}
	unusedSuccessors := func(e *storedEvent) int {
		n := 0
		for _, s := range byPrev[string(e.hash)] {
			if !s.used && s != e {
				n++
			}
		}
		return n
	}

	// Follow the links from the anchor. Where an event has several
	// candidate successors, the one the rest of the chain continues from
	// (or a digest names) is the original; the others were inserted.
	var chain []*storedEvent
	cur, lastSeq := anchor, anchorSeq
	for {
		var cands []*storedEvent
		for _, c := range byPrev[string(cur)] {
			if !c.used {
				cands = append(cands, c)
			}
		}
		if len(cands) == 0 {
			// The chain breaks: resume at the first later event whose
			// predecessor is nowhere to be found.
			var next *storedEvent
			for _, e := range evs {
				if !e.used && e.seq > lastSeq && byHash[string(e.prev)] == nil {
					next = e
					break
				}
			}
			if next == nil {
				break
			}
			if next.seq-lastSeq > 1 {
				add(Removed, nil, "events seq %d to %d are missing (the event at seq %d follows an event that is not in the trail)", lastSeq+1, next.seq-1, next.seq)
			} else {
				add(Removed, next, "the event this one follows is missing: event(s) were removed before it, or the event at seq %d was altered and its hash recomputed", lastSeq)
			}
			cur = next.prev
			continue
		}
		sort.SliceStable(cands, func(i, j int) bool {
			a, b := cands[i], cands[j]
			if sa, sb := unusedSuccessors(a) > 0, unusedSuccessors(b) > 0; sa != sb {
				return sa
			}
			if ha, hb := digestHeads[string(a.hash)], digestHeads[string(b.hash)]; ha != hb {
				return ha
			}
			if a.intact != b.intact {
				return a.intact
			}
			return a.seq < b.seq
		})
		c := cands[0]
		c.used = true
		chain = append(chain, c)
		cur = c.hash
		if c.seq > lastSeq {
			lastSeq = c.seq
		}
	}
	if len(evs) > 0 && len(chain) == 0 && evs[0].seq > 1 && anchorSeq == 0 {
		add(Removed, nil, "events seq 1 to %d are missing and no digest accounts for them", evs[0].seq-1)
	}
	for _, e := range chain {
		switch {
		case !e.intact:
			add(Altered, e, "its content does not match its hash (the chain still links through it)")
		case !e.columnsMatch:
			add(Altered, e, "its lookup columns (time, name, keys, principal, error code, account) do not match its content, which lookups and retention rely on")
		}
	}
	for _, e := range evs {
		if !e.used {
			add(Inserted, e, "it is not part of the hash chain (no event follows it, or it links to an event that already has its successor)")
		}
	}
	// Reordering: along the chain, sequence numbers must increase. The
	// events outside the longest increasing run are the ones moved.
	for _, e := range outOfOrder(chain) {
		add(Reordered, e, "the hash chain places it elsewhere than its position in the trail")
	}

	// Digests.
	prevHash := genesis
	prevLast := int64(0)
	for i, d := range ds {
		if !bytes.Equal(d.chainHash(), d.Hash) {
			rep.Findings = append(rep.Findings, Finding{Kind: DigestProblem, Detail: fmt.Sprintf("digest #%d (events %d-%d) was altered: its hash does not match its content", d.Seq, d.FirstSeq, d.LastSeq)})
		}
		if verify == nil {
			rep.Findings = append(rep.Findings, Finding{Kind: DigestProblem, Detail: fmt.Sprintf("digest #%d: no public key to check its signature", d.Seq)})
		} else if err := verify(d.KeyID, d.signedHash(), d.Signature); err != nil {
			rep.Findings = append(rep.Findings, Finding{Kind: DigestProblem, Detail: fmt.Sprintf("digest #%d (events %d-%d): signature invalid: %v", d.Seq, d.FirstSeq, d.LastSeq, err)})
		}
		pruned := i == 0 && d.LastSeq == anchorSeq && anchorSeq > 0
		// Unless the trail was pruned, the first digest starts the chain of
		// digests: pruning keeps the digest it cut after, so a first digest
		// that starts later means digests before it were deleted.
		if i > 0 || !pruned {
			if !bytes.Equal(d.PrevDigest, prevHash) {
				rep.Findings = append(rep.Findings, Finding{Kind: DigestProblem, Detail: fmt.Sprintf("digest #%d does not follow the digest before it (a digest was removed, inserted or replaced)", d.Seq)})
			}
			if d.FirstSeq != prevLast+1 {
				rep.Findings = append(rep.Findings, Finding{Kind: DigestProblem, Detail: fmt.Sprintf("digest #%d starts at event %d, but the digest before it ended at %d", d.Seq, d.FirstSeq, prevLast)})
			}
		}
		prevHash, prevLast = d.Hash, d.LastSeq
		if pruned {
			continue
		}
		head := bySeq[d.LastSeq]
		switch {
		case head == nil:
			if !mentions(rep.Findings, d.LastSeq) {
				rep.Findings = append(rep.Findings, Finding{Kind: Removed, Seq: d.LastSeq, Detail: fmt.Sprintf("digest #%d names event %d as its last, and it is missing", d.Seq, d.LastSeq)})
			}
		case !bytes.Equal(head.hash, d.HeadHash):
			if !mentionsRange(rep.Findings, d.FirstSeq, d.LastSeq) {
				rep.Findings = append(rep.Findings, Finding{Kind: Altered, Detail: fmt.Sprintf("events %d-%d do not match signed digest #%d: the chain was rewritten in that range", d.FirstSeq, d.LastSeq, d.Seq)})
			}
		}
		var n int64
		for s := d.FirstSeq; s <= d.LastSeq; s++ {
			if bySeq[s] != nil {
				n++
			}
		}
		if n != d.Count && !mentionsRange(rep.Findings, d.FirstSeq, d.LastSeq) {
			rep.Findings = append(rep.Findings, Finding{Kind: Removed, Detail: fmt.Sprintf("signed digest #%d covers %d events in %d-%d, %d are present", d.Seq, d.Count, d.FirstSeq, d.LastSeq, n)})
		}
	}
	for _, e := range evs {
		if e.seq > prevLast {
			rep.Unsigned++
		}
	}
	return rep
}

func mentions(fs []Finding, seq int64) bool { return mentionsRange(fs, seq, seq) }

func mentionsRange(fs []Finding, first, last int64) bool {
	for _, f := range fs {
		if f.Seq >= first && f.Seq <= last && f.Seq != 0 {
			return true
		}
		if f.Seq == 0 && f.Kind != DigestProblem {
			return true // a range finding; do not pile up
		}
	}
	return false
}

// outOfOrder returns the chain's events that are not on a longest run of
// increasing sequence numbers (patience sorting, O(n log n)).
func outOfOrder(chain []*storedEvent) []*storedEvent {
	n := len(chain)
	if n < 2 {
		return nil
	}
	tails := []int{} // index into chain of the smallest tail of each length
	prev := make([]int, n)
	for i, e := range chain {
		j := sort.Search(len(tails), func(k int) bool { return chain[tails[k]].seq >= e.seq })
		if j > 0 {
			prev[i] = tails[j-1]
		} else {
			prev[i] = -1
		}
		if j == len(tails) {
			tails = append(tails, i)
		} else {
			tails[j] = i
		}
	}
	keep := make([]bool, n)
	for i := tails[len(tails)-1]; i >= 0; i = prev[i] {
		keep[i] = true
	}
	var out []*storedEvent
	for i, e := range chain {
		if !keep[i] {
			out = append(out, e)
		}
	}
	return out
}

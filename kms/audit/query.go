package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Filter selects events for Lookup. Zero fields match everything.
type Filter struct {
	Start, End time.Time // inclusive bounds on eventTime
	EventName  string
	// Key matches an event whose resources include this key id or ARN.
	Key string
	// Principal matches the caller's ARN, or the access key id an
	// unauthenticated request claimed.
	Principal string
	ErrorCode string
	// Account restricts the result to events of one account (callers who
	// are not the bootstrap admin see only their own account).
	Account string
	// MaxResults per page: 1..1000, default 50.
	MaxResults int
	// NextToken continues a previous Lookup.
	NextToken string
}

// Page is one page of Lookup, newest event first.
type Page struct {
	Events    []json.RawMessage
	NextToken string
}

// ErrBadToken is returned for a NextToken that Lookup did not issue.
var ErrBadToken = fmt.Errorf("audit: invalid NextToken")

// Lookup returns the events matching f, newest first, one page at a time.
// Events are returned exactly as stored (the bytes the chain covers).
func (l *Log) Lookup(ctx context.Context, f Filter) (*Page, error) {
	if f.MaxResults <= 0 {
		f.MaxResults = 50
	}
	var where []string
	var args []any
	if f.NextToken != "" {
		seq, err := strconv.ParseInt(f.NextToken, 10, 64)
		if err != nil || seq <= 0 {
			return nil, ErrBadToken
		}
		where, args = append(where, "seq < ?"), append(args, seq)
	}
	if !f.Start.IsZero() {
		where, args = append(where, "event_time >= ?"), append(args, f.Start.Unix())
	}
	if !f.End.IsZero() {
		where, args = append(where, "event_time <= ?"), append(args, f.End.Unix())
	}
	if f.EventName != "" {
		where, args = append(where, "event_name = ?"), append(args, f.EventName)
	}
	if f.Key != "" {
		// Key ARNs end in key/<id>, so a key id is a substring of its ARN.
		where, args = append(where, "instr(key_arns, ?) > 0"), append(args, f.Key)
	}
	if f.Principal != "" {
		where, args = append(where, "principal = ?"), append(args, f.Principal)
	}
	if f.ErrorCode != "" {
		where, args = append(where, "error_code = ?"), append(args, f.ErrorCode)
	}
	if f.Account != "" {
		where, args = append(where, "account = ?"), append(args, f.Account)
	}
	q := "SELECT seq, body FROM events"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq DESC LIMIT ?"
	args = append(args, f.MaxResults+1)
	rows, err := l.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit: lookup: %w", err)
	}
	defer rows.Close()
	page := &Page{}
	var lastSeq int64
	size := 0
	for rows.Next() {
		var seq int64
		var body []byte
		if err := rows.Scan(&seq, &body); err != nil {
			return nil, err
		}
		// A page ends at MaxResults events or at maxPageBytes, whichever
		// comes first (always at least one event), so that a page of large
		// events cannot take the memory of a thousand of them.
		if len(page.Events) == f.MaxResults || (len(page.Events) > 0 && size+len(body) > maxPageBytes) {
			page.NextToken = strconv.FormatInt(lastSeq, 10)
			break
		}
		page.Events = append(page.Events, json.RawMessage(body))
		size += len(body)
		lastSeq = seq
	}
	return page, rows.Err()
}

// maxPageBytes bounds the event bodies of one Lookup page.
var maxPageBytes = 4 << 20

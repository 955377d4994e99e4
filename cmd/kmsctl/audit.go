package main

// kmsctl audit: the kmsd audit trail through the admin API
// (KmsAdmin.LookupEvents, KmsAdmin.VerifyAuditTrail).
//
//	kmsctl audit lookup [--start-time T] [--end-time T] [--event-name N] [--key-id K]
//	                    [--principal ARN] [--error-code C] [--max-items N] [--output json|table]
//	kmsctl audit export --dir DIR [same filters]
//	kmsctl audit verify

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

type auditFilterFlags struct {
	start, end, eventName, keyID, principal, errorCode, nextToken string
	pageSize                                                      int
}

func (f *auditFilterFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&f.start, "start-time", "", "only events at or after this time (RFC 3339, e.g. 2025-01-02T15:04:05Z)")
	fs.StringVar(&f.end, "end-time", "", "only events at or before this time (RFC 3339)")
	fs.StringVar(&f.eventName, "event-name", "", "only this operation (e.g. Encrypt)")
	fs.StringVar(&f.keyID, "key-id", "", "only events on this key (key id or key ARN; not an alias, which names different keys over time)")
	fs.StringVar(&f.principal, "principal", "", "only this caller (ARN, or the access key id of an unauthenticated request)")
	fs.StringVar(&f.errorCode, "error-code", "", "only events that failed with this error code (e.g. AccessDeniedException)")
	fs.StringVar(&f.nextToken, "starting-token", "", "continue after a previous page (the NextToken it printed)")
	fs.IntVar(&f.pageSize, "page-size", 100, "events per request (1-1000)")
}

// request builds the LookupEvents body.
func (f *auditFilterFlags) request() (map[string]any, error) {
	body := map[string]any{"MaxResults": f.pageSize}
	for _, t := range []struct{ flag, v, member string }{{"start-time", f.start, "StartTime"}, {"end-time", f.end, "EndTime"}} {
		if t.v == "" {
			continue
		}
		ts, err := time.Parse(time.RFC3339, t.v)
		if err != nil {
			return nil, usagef("--%s %q: want an RFC 3339 time such as 2025-01-02T15:04:05Z", t.flag, t.v)
		}
		body[t.member] = float64(ts.UnixMilli()) / 1000
	}
	for member, v := range map[string]string{"EventName": f.eventName, "KeyId": f.keyID, "Principal": f.principal, "ErrorCode": f.errorCode, "NextToken": f.nextToken} {
		if v != "" {
			body[member] = v
		}
	}
	if f.pageSize < 1 || f.pageSize > 1000 {
		return nil, usagef("--page-size must be 1-1000")
	}
	return body, nil
}

// pages calls LookupEvents until max events (0: all) or the end, handing
// each page's events to fn; it returns the token to continue with.
func (e *Env) auditPages(ctx context.Context, f *auditFilterFlags, max int, fn func([]json.RawMessage) error) (string, error) {
	body, err := f.request()
	if err != nil {
		return "", err
	}
	seen := 0
	for {
		if max > 0 && max-seen < f.pageSize {
			body["MaxResults"] = max - seen
		}
		out, err := e.adminCall(ctx, "LookupEvents", body)
		if err != nil {
			return "", err
		}
		raw, _ := json.Marshal(out["Events"])
		var events []json.RawMessage
		if err := json.Unmarshal(raw, &events); err != nil {
			return "", fmt.Errorf("LookupEvents: bad answer: %w", err)
		}
		if err := fn(events); err != nil {
			return "", err
		}
		seen += len(events)
		next, _ := out["NextToken"].(string)
		if next == "" || (max > 0 && seen >= max) {
			return next, nil
		}
		body["NextToken"] = next
	}
}

func init() {
	registerGroup("audit", "the audit trail: lookup, export, verify (kmsctl audit help)")
	var lf auditFilterFlags
	var maxItems int
	register(&Command{
		Path:    "audit lookup",
		Summary: "list audit events, newest first (--output json: one JSON record per line; table: readable)",
		Usage:   "[flags]",
		Flags: func(fs *flag.FlagSet) {
			lf.add(fs)
			fs.IntVar(&maxItems, "max-items", 50, "at most this many events (0: all)")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usagef("takes no arguments")
			}
			var tw *tabwriter.Writer
			if e.Output == "table" {
				tw = tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TIME\tEVENT\tPRINCIPAL\tKEY\tERROR\tSOURCE IP\tREQUEST ID")
			}
			next, err := e.auditPages(ctx, &lf, maxItems, func(events []json.RawMessage) error {
				for _, ev := range events {
					if tw == nil {
						if _, err := fmt.Fprintf(e.Stdout, "%s\n", ev); err != nil {
							return err
						}
						continue
					}
					var r struct {
						EventTime    string `json:"eventTime"`
						EventName    string `json:"eventName"`
						SourceIP     string `json:"sourceIPAddress"`
						RequestID    string `json:"requestID"`
						ErrorCode    string `json:"errorCode"`
						UserIdentity struct {
							ARN         string `json:"arn"`
							AccessKeyID string `json:"accessKeyId"`
						} `json:"userIdentity"`
						Resources []struct {
							ARN string `json:"ARN"`
						} `json:"resources"`
					}
					_ = json.Unmarshal(ev, &r)
					who := r.UserIdentity.ARN
					if who == "" {
						who = strings.TrimSpace("(unauthenticated " + r.UserIdentity.AccessKeyID)
						who += ")"
					}
					var keys []string
					for _, res := range r.Resources {
						keys = append(keys, res.ARN)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.EventTime, r.EventName, who, strings.Join(keys, ","), r.ErrorCode, r.SourceIP, r.RequestID)
				}
				return nil
			})
			if tw != nil {
				tw.Flush()
			}
			if err != nil {
				return err
			}
			if next != "" {
				fmt.Fprintf(e.Stderr, "more events: --starting-token %s\n", next)
			}
			return nil
		},
	})

	var xf auditFilterFlags
	var dir string
	var perFile int
	register(&Command{
		Path:    "audit export",
		Summary: "write the matching events as CloudTrail log files ({\"Records\":[...]}) into a directory",
		Usage:   "--dir DIR [flags]",
		Flags: func(fs *flag.FlagSet) {
			xf.add(fs)
			fs.StringVar(&dir, "dir", "", "output directory (created if missing; required)")
			fs.IntVar(&perFile, "records-per-file", 1000, "records per file")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usagef("takes no arguments")
			}
			if dir == "" {
				return usagef("--dir is required")
			}
			if perFile < 1 {
				return usagef("--records-per-file must be positive")
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			stamp := time.Now().UTC().Format("20060102T150405Z")
			var batch []json.RawMessage
			files, total := 0, 0
			flush := func() error {
				if len(batch) == 0 {
					return nil
				}
				files++
				name := filepath.Join(dir, fmt.Sprintf("kmsd_CloudTrail_%s_%04d.json", stamp, files))
				data, err := json.Marshal(struct {
					Records []json.RawMessage `json:"Records"`
				}{batch})
				if err != nil {
					return err
				}
				if err := writeFileAtomic(name, data); err != nil {
					return err
				}
				total += len(batch)
				batch = batch[:0]
				return nil
			}
			_, err := e.auditPages(ctx, &xf, 0, func(events []json.RawMessage) error {
				for _, ev := range events {
					batch = append(batch, ev)
					if len(batch) == perFile {
						if err := flush(); err != nil {
							return err
						}
					}
				}
				return nil
			})
			if err == nil {
				err = flush()
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stderr, "exported %d events to %d file(s) in %s\n", total, files, dir)
			return nil
		},
	})

	register(&Command{
		Path:    "audit verify",
		Summary: "check the hash chain and every signed digest; exit status 1 names what was altered, removed, inserted or reordered",
		Usage:   "",
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usagef("takes no arguments")
			}
			out, err := e.adminCall(ctx, "VerifyAuditTrail", map[string]any{})
			if err != nil {
				return err
			}
			raw, _ := json.Marshal(out["Report"])
			var rep struct {
				Events        int   `json:"events"`
				Digests       int   `json:"digests"`
				FirstSeq      int64 `json:"firstSeq"`
				LastSeq       int64 `json:"lastSeq"`
				Unsigned      int64 `json:"unsignedEvents"`
				PrunedThrough int64 `json:"prunedThrough"`
				Findings      []struct {
					Kind    string `json:"kind"`
					Seq     int64  `json:"seq"`
					EventID string `json:"eventId"`
					Detail  string `json:"detail"`
				} `json:"findings"`
			}
			if err := json.Unmarshal(raw, &rep); err != nil {
				return fmt.Errorf("VerifyAuditTrail: bad answer: %w", err)
			}
			{ // the report is for people; KmsAdmin.VerifyAuditTrail gives JSON
				fmt.Fprintf(e.Stdout, "events %d (seq %d-%d), digests %d, not yet signed %d", rep.Events, rep.FirstSeq, rep.LastSeq, rep.Digests, rep.Unsigned)
				if rep.PrunedThrough > 0 {
					fmt.Fprintf(e.Stdout, ", pruned through seq %d", rep.PrunedThrough)
				}
				fmt.Fprintln(e.Stdout)
				for _, f := range rep.Findings {
					line := strings.ToUpper(f.Kind)
					if f.Seq != 0 {
						line += fmt.Sprintf(" event seq %d", f.Seq)
						if f.EventID != "" {
							line += " (eventID " + f.EventID + ")"
						}
					}
					fmt.Fprintf(e.Stdout, "%s: %s\n", line, f.Detail)
				}
			}
			if len(rep.Findings) > 0 {
				return errors.New("audit trail verification FAILED: " + fmt.Sprint(len(rep.Findings)) + " finding(s)")
			}
			fmt.Fprintln(e.Stderr, "audit trail verified: every event and digest is intact")
			return nil
		},
	})
}

// writeFileAtomic writes data to name through a temporary file.
func writeFileAtomic(name string, data []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

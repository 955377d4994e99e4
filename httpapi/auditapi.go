package httpapi

// The audit trail's admin API (X-Amz-Target KmsAdmin.LookupEvents and
// KmsAdmin.VerifyAuditTrail), served like the rest of the admin API and
// authorized like it (kms.Service.AuthorizeAudit): the bootstrap admin
// everywhere; other principals as their identity policies allow
// kmsadmin:LookupEvents, and then only for events of their own account.
// Verifying the chain spans every account: bootstrap admin only.

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"regexp"
	"time"

	"hsmkms/kms"
	"hsmkms/kms/audit"
)

// LookupEventsInput is the request of KmsAdmin.LookupEvents.
type LookupEventsInput struct {
	StartTime  *kms.Timestamp `json:"StartTime"`
	EndTime    *kms.Timestamp `json:"EndTime"`
	EventName  *string        `json:"EventName"`
	KeyId      *string        `json:"KeyId"`
	Principal  *string        `json:"Principal"`
	ErrorCode  *string        `json:"ErrorCode"`
	MaxResults *int32         `json:"MaxResults"`
	NextToken  *string        `json:"NextToken"`
}

// LookupEventsOutput carries the events as stored (CloudTrail records).
type LookupEventsOutput struct {
	Events    []json.RawMessage `json:"Events"`
	NextToken string            `json:"NextToken,omitempty"`
}

// VerifyAuditTrailInput has no members.
type VerifyAuditTrailInput struct{}

// VerifyAuditTrailOutput is the verification report.
type VerifyAuditTrailOutput struct {
	OK     bool          `json:"OK"`
	Report *audit.Report `json:"Report"`
}

// registerAdmin adds the audit operations to the admin table.
func (o *observer) registerAdmin(table map[string]handlerFunc) {
	maps.Copy(table, map[string]handlerFunc{
		"LookupEvents":     op(o.lookupEvents),
		"VerifyAuditTrail": op(o.verifyAuditTrail),
	})
}

var errAuditOff = kms.Errorf(kms.CodeUnsupportedOperation, "The audit trail is switched off (audit.mode: off).")

func (o *observer) lookupEvents(ctx context.Context, in *LookupEventsInput) (*LookupEventsOutput, error) {
	account, err := o.service.AuthorizeAudit(ctx, "LookupEvents", true)
	if err != nil {
		return nil, err
	}
	if o.audit == nil {
		return nil, errAuditOff
	}
	f := audit.Filter{Account: account}
	if in.StartTime != nil {
		f.Start = in.StartTime.Time()
	}
	if in.EndTime != nil {
		f.End = in.EndTime.Time()
	}
	if !f.Start.IsZero() && !f.End.IsZero() && f.End.Before(f.Start) {
		return nil, kms.Errorf(kms.CodeValidation, "EndTime must not be before StartTime.")
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	f.EventName, f.Key, f.Principal, f.ErrorCode, f.NextToken = str(in.EventName), str(in.KeyId), str(in.Principal), str(in.ErrorCode), str(in.NextToken)
	if f.Key != "" && !auditKeyFilter.MatchString(f.Key) {
		// Events record key ARNs. An alias names different keys over
		// time, and a fragment would match by substring: both would
		// answer a silent, wrong selection.
		return nil, kms.Errorf(kms.CodeValidation, "KeyId must be a key id or key ARN, not an alias or a fragment (resolve an alias with DescribeKey).")
	}
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 1000 {
			return nil, kms.Errorf(kms.CodeValidation, "1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 1000 and greater than or equal to 1", *in.MaxResults)
		}
		f.MaxResults = int(*in.MaxResults)
	}
	page, err := o.audit.Lookup(ctx, f)
	if errors.Is(err, audit.ErrBadToken) {
		return nil, kms.Errorf(kms.CodeValidation, "Invalid NextToken.")
	}
	if err != nil {
		return nil, kms.Internal(err)
	}
	if page.Events == nil {
		page.Events = []json.RawMessage{}
	}
	return &LookupEventsOutput{Events: page.Events, NextToken: page.NextToken}, nil
}

// auditKeyFilter is what LookupEvents accepts as KeyId: a key id or a key
// ARN, which the stored key ARNs contain whole.
var auditKeyFilter = regexp.MustCompile(`^(arn:[a-z-]+:kms:[a-z0-9-]+:[0-9]{12}:key/)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func (o *observer) verifyAuditTrail(ctx context.Context, _ *VerifyAuditTrailInput) (*VerifyAuditTrailOutput, error) {
	if _, err := o.service.AuthorizeAudit(ctx, "VerifyAuditTrail", false); err != nil {
		return nil, err
	}
	if o.audit == nil {
		return nil, errAuditOff
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	rep, err := o.audit.Verify(ctx, o.verify)
	if err != nil {
		return nil, kms.Internal(err)
	}
	if rep.Findings == nil {
		rep.Findings = []audit.Finding{}
	}
	return &VerifyAuditTrailOutput{OK: rep.OK(), Report: rep}, nil
}

// Package audit keeps the tamper-evident audit trail of kmsd: one
// CloudTrail-shaped event per API request, stored in its own SQLite file,
// chained by SHA-256 hashes and covered at intervals by digests signed with
// a key held in the HSM (like CloudTrail's log-file integrity validation).
//
// The package knows nothing of HTTP or of the kms service: httpapi builds
// the events, kms provides the Signer, kmsd wires them.
package audit

import (
	"strings"
	"time"
)

// CloudTrail constants for KMS events.
const (
	EventVersion  = "1.08"
	EventSource   = "kms.amazonaws.com"
	EventType     = "AwsApiCall"
	EventCategory = "Management"
	// ResourceType is the CloudTrail type of a KMS key resource.
	ResourceType = "AWS::KMS::Key"
	// TimeFormat is CloudTrail's eventTime format (UTC, whole seconds).
	TimeFormat = "2006-01-02T15:04:05Z"
)

// Event is one audit record in the shape of a CloudTrail record for KMS.
// It is marshalled with encoding/json exactly once, when it is stored; the
// stored bytes are what the hash chain covers.
type Event struct {
	EventVersion       string         `json:"eventVersion"`
	UserIdentity       UserIdentity   `json:"userIdentity"`
	EventTime          string         `json:"eventTime"`
	EventSource        string         `json:"eventSource"`
	EventName          string         `json:"eventName"`
	AWSRegion          string         `json:"awsRegion"`
	SourceIPAddress    string         `json:"sourceIPAddress"`
	UserAgent          string         `json:"userAgent"`
	ErrorCode          string         `json:"errorCode,omitempty"`
	ErrorMessage       string         `json:"errorMessage,omitempty"`
	RequestParameters  map[string]any `json:"requestParameters"`
	ResponseElements   map[string]any `json:"responseElements"`
	RequestID          string         `json:"requestID"`
	EventID            string         `json:"eventID"`
	ReadOnly           bool           `json:"readOnly"`
	Resources          []Resource     `json:"resources,omitempty"`
	EventType          string         `json:"eventType"`
	ManagementEvent    bool           `json:"managementEvent"`
	RecipientAccountID string         `json:"recipientAccountId"`
	EventCategory      string         `json:"eventCategory"`
}

// UserIdentity is CloudTrail's userIdentity element. For unauthenticated
// requests only what the request claimed is known (the access key id).
type UserIdentity struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId,omitempty"`
	ARN         string `json:"arn,omitempty"`
	AccountID   string `json:"accountId,omitempty"`
	AccessKeyID string `json:"accessKeyId,omitempty"`
}

// Resource is one element of CloudTrail's resources list.
type Resource struct {
	AccountID string `json:"accountId"`
	Type      string `json:"type"`
	ARN       string `json:"ARN"`
}

// Time returns the event's time (zero if unparsable).
func (e *Event) Time() time.Time {
	t, _ := time.Parse(TimeFormat, e.EventTime)
	return t
}

// keyARNs lists the event's resource ARNs, for the lookup index.
func (e *Event) keyARNs() string {
	arns := make([]string, 0, len(e.Resources))
	for _, r := range e.Resources {
		arns = append(arns, r.ARN)
	}
	return strings.Join(arns, " ")
}

// principal is what the principal filter matches: the caller's ARN, or the
// claimed access key id of an unauthenticated request.
func (e *Event) principal() string {
	if e.UserIdentity.ARN != "" {
		return e.UserIdentity.ARN
	}
	return e.UserIdentity.AccessKeyID
}

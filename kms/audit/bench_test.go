package audit

import (
	"encoding/json"
	"path/filepath"
	"testing"
)

func benchEvent() *Event {
	return &Event{
		EventVersion: EventVersion, EventTime: "2025-01-02T15:04:05Z", EventSource: EventSource, EventName: "Encrypt",
		AWSRegion: "us-east-1", SourceIPAddress: "127.0.0.1", UserAgent: "aws-sdk-go-v2/1.39.2 ua/2.1 os/linux lang/go#1.26 md/GOOS#linux api/kms#1.45",
		UserIdentity:      UserIdentity{Type: "IAMUser", PrincipalID: "AIDAEXAMPLE", ARN: "arn:aws:iam::123456789012:user/admin", AccountID: "123456789012", AccessKeyID: "AKIAEXAMPLE"},
		RequestParameters: map[string]any{"keyId": json.RawMessage(`"1234abcd-12ab-34cd-56ef-1234567890ab"`), "encryptionContext": json.RawMessage(`{"purpose":"bench"}`)},
		RequestID:         "5b0d4f1e-7e0d-4a8b-9a53-6a2f9c1b7d11", EventID: "0f4b8b3e-2a64-4c33-9d0c-6a1d8e2f1b44", ReadOnly: true,
		Resources: []Resource{{AccountID: "123456789012", Type: ResourceType, ARN: "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"}},
		EventType: EventType, ManagementEvent: true, RecipientAccountID: "123456789012", EventCategory: EventCategory,
	}
}

// BenchmarkRecord measures the cost of one durable event with 16
// concurrent writers (group commit).
func BenchmarkRecord(b *testing.B) {
	for _, mode := range []Mode{Durable, Async} {
		b.Run(string(mode), func(b *testing.B) {
			l, err := Open(b.Context(), filepath.Join(b.TempDir(), "audit.db"), Options{Mode: mode})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			b.SetParallelism(1)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := l.Record(b.Context(), benchEvent()); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

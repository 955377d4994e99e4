package audit

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// Strings that exercise every escaping rule of encoding/json.
var awkwardStrings = []string{
	"", "plain", `quote " backslash \ slash /`, "<script>&amp;</script>", "tab\tnl\nret\rbs\bff\f",
	"\x00\x01\x1f\x7f", "caf\u00e9 \u65e5\u672c", "line\u2028para\u2029", "bad \xff\xfe utf8 \xe2\x80",
	"emoji \U0001F512", "\u2027\u202a", "a\\u2028b",
}

func randomString(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return awkwardStrings[r.IntN(len(awkwardStrings))]
	}
	b := make([]byte, r.IntN(24))
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return string(b)
}

func randomParams(r *rand.Rand, depth int) map[string]any {
	switch r.IntN(5) {
	case 0:
		return nil
	case 1:
		return map[string]any{}
	}
	m := map[string]any{}
	for range 1 + r.IntN(4) {
		k := randomString(r)
		switch r.IntN(6) {
		case 0:
			if depth < 2 {
				m[k] = randomParams(r, depth+1)
				continue
			}
			fallthrough
		case 1:
			raw, _ := json.Marshal(map[string]string{randomString(r): randomString(r)})
			m[k] = json.RawMessage(raw)
		case 2:
			// Not what encoding/json would emit: white space and
			// unescaped HTML, which json.Marshal rewrites.
			m[k] = json.RawMessage(` { "a" : "<b>" , "c": [1, 2] } `)
		case 3:
			m[k] = json.RawMessage("\"x\u2028y\"")
		case 4:
			m[k] = r.IntN(1000)
		default:
			raw, _ := json.Marshal(randomString(r))
			m[k] = json.RawMessage(raw)
		}
	}
	return m
}

func randomEvent(r *rand.Rand) *Event {
	ev := &Event{
		EventVersion: randomString(r), EventTime: randomString(r), EventSource: randomString(r), EventName: randomString(r),
		AWSRegion: randomString(r), SourceIPAddress: randomString(r), UserAgent: randomString(r),
		ErrorCode: randomString(r), ErrorMessage: randomString(r),
		UserIdentity: UserIdentity{Type: randomString(r), PrincipalID: randomString(r), ARN: randomString(r),
			AccountID: randomString(r), AccessKeyID: randomString(r)},
		RequestParameters: randomParams(r, 0), ResponseElements: randomParams(r, 0),
		RequestID: randomString(r), EventID: randomString(r), ReadOnly: r.IntN(2) == 0,
		EventType: randomString(r), ManagementEvent: r.IntN(2) == 0, RecipientAccountID: randomString(r),
		EventCategory: randomString(r),
	}
	for range r.IntN(3) {
		ev.Resources = append(ev.Resources, Resource{AccountID: randomString(r), Type: randomString(r), ARN: randomString(r)})
	}
	return ev
}

// The stored bytes are what the hash chain covers and what lookup and
// export hand out: the hand-written encoder must be indistinguishable from
// encoding/json.
func TestEncodeEventMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		ev := randomEvent(r)
		if i == 0 {
			ev = benchEvent()
		}
		want, wantErr := json.Marshal(ev)
		got, gotErr := encodeEvent(nil, ev)
		if (wantErr != nil) != (gotErr != nil) {
			t.Fatalf("event %d: json.Marshal error %v, encodeEvent error %v", i, wantErr, gotErr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("event %d differs:\n got %s\nwant %s", i, got, want)
		}
	}
}

func TestEncodeEventRefusesInvalidRawJSON(t *testing.T) {
	ev := benchEvent()
	ev.RequestParameters = map[string]any{"k": json.RawMessage(`{"unterminated`)}
	if _, err := encodeEvent(nil, ev); err == nil {
		t.Fatal("invalid raw JSON was encoded")
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range awkwardStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}

func BenchmarkEncodeEvent(b *testing.B) {
	ev := benchEvent()
	b.Run("encodeEvent", func(b *testing.B) {
		for b.Loop() {
			_, _ = encodeEvent(make([]byte, 0, 1024), ev)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		for b.Loop() {
			_, _ = json.Marshal(ev)
		}
	})
}

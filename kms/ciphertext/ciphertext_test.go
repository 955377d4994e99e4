package ciphertext

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/uuid"
)

func sample(t testing.TB) Blob {
	t.Helper()
	return Blob{
		KeyID:   "1234abcd-12ab-44cd-96ef-1234567890ab",
		Version: 7,
		IV:      bytes.Repeat([]byte{0xA5}, IVSize),
		Sealed:  bytes.Repeat([]byte{0x5A}, 1+TagSize),
	}
}

func TestRoundTrip(t *testing.T) {
	b := sample(t)
	data, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != MinSize {
		t.Fatalf("len = %d, want %d", len(data), MinSize)
	}
	got, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.KeyID != b.KeyID || got.Version != b.Version || !bytes.Equal(got.IV, b.IV) || !bytes.Equal(got.Sealed, b.Sealed) {
		t.Fatalf("round trip changed the blob: %+v", got)
	}
	h, _ := b.Header()
	if !bytes.Equal(h, data[:HeaderSize]) {
		t.Fatal("header is not the blob prefix")
	}
}

func TestParseRejects(t *testing.T) {
	good, err := sample(t).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(f func([]byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	v1uuid := uuid.Must(uuid.NewUUID()) // version 1: never written by us
	cases := map[string][]byte{
		"empty":          nil,
		"one byte short": good[:len(good)-1],
		"header only":    good[:HeaderSize],
		"bad version":    mutate(func(b []byte) []byte { b[0] = 0x02; return b }),
		"zero version":   mutate(func(b []byte) []byte { copy(b[17:21], []byte{0, 0, 0, 0}); return b }),
		"non-v4 key id":  mutate(func(b []byte) []byte { copy(b[1:17], v1uuid[:]); return b }),
		"text":           []byte("this is not a ciphertext blob at all, but it is long enough"),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse(data); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestAADBindsContext(t *testing.T) {
	h := []byte("header")
	base := AAD(h, map[string]string{"a": "1", "b": "2"})
	if !bytes.Equal(base, AAD(h, map[string]string{"b": "2", "a": "1"})) {
		t.Fatal("AAD depends on map order")
	}
	distinct := []map[string]string{
		nil,
		{"a": "1"},
		{"a": "12"},
		{"a1": "2"},
		{"a": "1", "b": "2", "c": ""},
		{"ab": "", "": "ab"},
		{"a": "", "b": ""},
	}
	seen := map[string]int{string(base): -1}
	for i, c := range distinct {
		k := string(AAD(h, c))
		if j, dup := seen[k]; dup {
			t.Fatalf("contexts %d and %d share an AAD", i, j)
		}
		seen[k] = i
	}
	if bytes.Equal(AAD([]byte("h1"), nil), AAD([]byte("h2"), nil)) {
		t.Fatal("AAD ignores the header")
	}
}

// FuzzParse checks that Parse never panics and that every blob it accepts
// re-encodes to exactly the input bytes.
func FuzzParse(f *testing.F) {
	good, _ := sample(f).Marshal()
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{0x01})
	f.Add(append(append([]byte(nil), good...), 0x00))
	f.Add(bytes.Repeat([]byte{0xFF}, MinSize))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		again, err := b.Marshal()
		if err != nil {
			t.Fatalf("Marshal of parsed blob: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("round trip changed bytes")
		}
	})
}

package envelope_test

import (
	"bytes"
	"crypto/sha512"
	"io"
	"testing"

	"hsmkms/kms/envelope"
	"hsmkms/kms/envelope/format"
	"hsmkms/kms/envelope/internal/fakekms"
)

// Throughput of the streaming body (KMS is an in-process fake, output is
// discarded): go test -run '^$' -bench . ./kms/envelope/
func BenchmarkEnvelope(b *testing.B) {
	kms := fakekms.New()
	c := envelope.NewKMS(kms, kms.CreateKey(""))
	const size = 64 << 20
	pt := make([]byte, size)
	for _, s := range []*format.Suite{format.AES256HKDFSHA512CommitKeyECDSAP384, format.AES256HKDFSHA512CommitKey} {
		var msg bytes.Buffer
		if _, err := c.Encrypt(b.Context(), &msg, bytes.NewReader(pt), envelope.EncryptOptions{Suite: s}); err != nil {
			b.Fatal(err)
		}
		b.Run("encrypt/"+s.Name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				if _, err := c.Encrypt(b.Context(), io.Discard, bytes.NewReader(pt), envelope.EncryptOptions{Suite: s}); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, streaming := range []bool{false, true} {
			if streaming && !s.Signed() {
				continue
			}
			name := "decrypt/" + s.Name
			if streaming {
				name += "/streaming"
			}
			b.Run(name, func(b *testing.B) {
				b.SetBytes(size)
				for b.Loop() {
					if _, err := c.Decrypt(b.Context(), io.Discard, bytes.NewReader(msg.Bytes()), envelope.DecryptOptions{UnsafeStreaming: streaming, TempDir: b.TempDir()}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
	// The bound of the signed suites: their signature hashes every byte
	// with SHA-384, sequentially.
	b.Run("sha384", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			h := sha512.New384()
			h.Write(pt)
			h.Sum(nil)
		}
	})
}

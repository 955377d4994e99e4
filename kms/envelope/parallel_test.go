package envelope_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"hsmkms/kms/envelope"
	"hsmkms/kms/envelope/format"
	"hsmkms/kms/envelope/internal/fakekms"
)

// checkNoLeak fails if goroutines started since before are still running:
// Encrypt and Decrypt must stop all their pipeline stages before
// returning, on success and on every error.
func checkNoLeak(t *testing.T, what string, before int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%s: %d goroutines, %d before\n%s", what, runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}

// failWriter accepts limit bytes, then fails.
type failWriter struct{ n, limit int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n+len(p) > w.limit {
		return 0, errors.New("disk full")
	}
	w.n += len(p)
	return len(p), nil
}

// TestParallelFrames runs messages of many batches through several
// workers (GOMAXPROCS 4, whatever the machine): the frames come out in
// order (checked against a sequential, frame-by-frame reading of the
// message with the data key), a tampered frame in the middle fails with
// ErrTamperedBody and releases nothing unauthenticated (nothing at all for
// signed messages in the default mode; only whole frames before it
// otherwise), and no goroutine outlives a call, also when the writer fails
// or the context is cancelled. Not parallel: it counts goroutines.
func TestParallelFrames(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	kms := fakekms.New()
	c := envelope.NewKMS(kms, kms.CreateKey(""))
	const frame = 1000 // not a divisor of the batch size
	pt := randBytes(t, 3<<20+123)
	for _, suite := range []*format.Suite{format.AES256HKDFSHA512CommitKeyECDSAP384, format.AES256HKDFSHA512CommitKey} {
		before := runtime.NumGoroutine()
		msg := encrypt(t, c, pt, envelope.EncryptOptions{Suite: suite, FrameLength: frame})
		checkNoLeak(t, "encrypt", before)

		// Sequential oracle: every frame in order, each opening to its
		// slice of the plaintext.
		r := bytes.NewReader(msg)
		h, err := format.ReadHeader(r, 0)
		if err != nil {
			t.Fatal(err)
		}
		dk, err := kms.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: h.EDKs[0].Ciphertext, EncryptionContext: h.EncryptionContext})
		if err != nil {
			t.Fatal(err)
		}
		key, _, err := format.DeriveKeys(suite, dk.Plaintext, h.MessageID)
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := aes.NewCipher(key)
		aead, _ := cipher.NewGCM(blk)
		fr := format.NewFrameReader(bufio.NewReader(r), h.FrameLength)
		var seq []byte
		for i := 0; ; i++ {
			f, err := fr.Next()
			if err != nil {
				t.Fatalf("frame %d: %v", i+1, err)
			}
			p, _, err := format.OpenFrame(nil, aead, h.MessageID, f, nil)
			if err != nil {
				t.Fatalf("frame %d does not open", i+1)
			}
			if !bytes.Equal(p, pt[i*frame:min(len(pt), (i+1)*frame)]) {
				t.Fatalf("%s: frame %d holds the wrong plaintext (frames out of order)", suite.Name, i+1)
			}
			seq = append(seq, p...)
			if f.Final {
				break
			}
		}
		if !bytes.Equal(seq, pt) {
			t.Fatalf("%s: frames hold %d bytes, want %d", suite.Name, len(seq), len(pt))
		}

		l := parseLayout(t, msg)
		mid := len(l.frameEnds) / 2
		bad := bytes.Clone(msg)
		bad[l.frameEnds[mid-1]+40] ^= 0x80 // inside frame mid+1's content
		for _, streaming := range []bool{false, true} {
			what := fmt.Sprintf("%s streaming=%v", suite.Name, streaming)
			var out bytes.Buffer
			before := runtime.NumGoroutine()
			if _, err := c.Decrypt(t.Context(), &out, bytes.NewReader(msg), envelope.DecryptOptions{UnsafeStreaming: streaming, TempDir: t.TempDir()}); err != nil || !bytes.Equal(out.Bytes(), pt) {
				t.Fatalf("%s: %v, plaintext equal %v", what, err, bytes.Equal(out.Bytes(), pt))
			}
			out.Reset()
			_, err := c.Decrypt(t.Context(), &out, bytes.NewReader(bad), envelope.DecryptOptions{UnsafeStreaming: streaming, TempDir: t.TempDir()})
			if !errors.Is(err, envelope.ErrTamperedBody) {
				t.Fatalf("%s: error %v, want tampered body", what, err)
			}
			limit := mid * frame // the whole frames before the tampered one
			if suite.Signed() && !streaming {
				limit = 0
			}
			checkReleased(t, what, out.Bytes(), pt, limit)
			if out.Len()%frame != 0 {
				t.Fatalf("%s: released %d bytes, not whole frames", what, out.Len())
			}
			checkNoLeak(t, what+": tampered", before)

			// The writer fails half way.
			_, err = c.Decrypt(t.Context(), &failWriter{limit: len(pt) / 2}, bytes.NewReader(msg), envelope.DecryptOptions{UnsafeStreaming: streaming, TempDir: t.TempDir()})
			if err == nil || err.Error() != "disk full" {
				t.Fatalf("%s: failing writer: %v", what, err)
			}
			checkNoLeak(t, what+": failing writer", before)
		}

		before = runtime.NumGoroutine()
		if _, err := c.Encrypt(t.Context(), &failWriter{limit: len(pt) / 2}, bytes.NewReader(pt), envelope.EncryptOptions{Suite: suite, FrameLength: frame}); err == nil || err.Error() != "disk full" {
			t.Fatalf("%s: encrypt to a failing writer: %v", suite.Name, err)
		}
		// Cancelled half way through the input.
		ctx, cancel := context.WithCancel(t.Context())
		cr := &cancelReader{r: bytes.NewReader(pt), at: len(pt) / 2, cancel: cancel}
		if _, err := c.Encrypt(ctx, io.Discard, cr, envelope.EncryptOptions{Suite: suite, FrameLength: frame}); !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: cancelled encrypt: %v", suite.Name, err)
		}
		ctx, cancel = context.WithCancel(t.Context())
		cr = &cancelReader{r: bytes.NewReader(msg), at: len(msg) / 2, cancel: cancel}
		if _, err := c.Decrypt(ctx, io.Discard, cr, envelope.DecryptOptions{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: cancelled decrypt: %v", suite.Name, err)
		}
		checkNoLeak(t, suite.Name+": failing writer, cancel", before)
	}
}

// cancelReader cancels its context once at bytes have been read.
type cancelReader struct {
	r      io.Reader
	n, at  int
	cancel context.CancelFunc
}

func (c *cancelReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	if c.n >= c.at {
		c.cancel()
	}
	return n, err
}

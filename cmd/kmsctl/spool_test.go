package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"testing"

	"hsmkms/kms/envelope"
	"hsmkms/kms/envelope/format"
)

// spoolCounter counts the O_DIRECT writes and reads of a spool and can
// refuse them (EINVAL, as a device wanting more alignment does).
type spoolCounter struct {
	writes, preads     atomic.Int64
	refuseOpen         bool
	refuseWrite        atomic.Bool // the next write, once
	refuseReads        bool
	refusedW, refusedR atomic.Int64
}

func (c *spoolCounter) io() spoolIO {
	return spoolIO{
		openDirect: func(p string) (*os.File, error) {
			if c.refuseOpen {
				return nil, syscall.EINVAL
			}
			return openDirect(p)
		},
		write: func(f *os.File, b []byte) (int, error) {
			if c.refuseWrite.CompareAndSwap(true, false) {
				c.refusedW.Add(1)
				return 0, syscall.EINVAL
			}
			c.writes.Add(1)
			return f.Write(b)
		},
		pread: func(d *os.File, b []byte, off int64) (int, error) {
			if c.refuseReads {
				c.refusedR.Add(1)
				return 0, syscall.EINVAL
			}
			c.preads.Add(1)
			return preadDirect(d, b, off)
		},
	}
}

// spoolRoundTrip writes data to a new spool in dir (uneven writes) and
// checks that it reads back exactly, that the spool is never visible in
// dir and that its file is 0600; it returns the spool's writer mode.
func spoolRoundTrip(t *testing.T, dir string, c *spoolCounter, data []byte) (direct bool) {
	t.Helper()
	s, err := openSpool(dir, c.io())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	direct = s.dw != nil
	checkNoTemp(t, dir, "")
	st, err := s.f.Stat()
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("spool file: %v, %v (want 0600)", st.Mode(), err)
	}
	writeUneven(t, s, data)
	r, err := s.Reader()
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("%d bytes: read back %d (%v), equal %v", len(data), len(got), err, bytes.Equal(got, data))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkNoTemp(t, dir, "")
	return direct
}

// TestSpoolDirect: the spool is written and read back with O_DIRECT where
// the directory's file system has it, and yields exactly what was written
// for sizes around the alignment and chunk boundaries.
func TestSpoolDirect(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	want := directOutputExpected(t, dir)
	for _, size := range []int{0, 1, directAlign - 1, directAlign, directAlign + 1, directChunk - 1, directChunk, directChunk + 1, 2*directChunk + directAlign, 3*directChunk + 12345} {
		data := make([]byte, size)
		_, _ = rand.Read(data)
		c := &spoolCounter{}
		direct := spoolRoundTrip(t, dir, c, data)
		if direct != want {
			t.Fatalf("%d bytes: O_DIRECT spool %v, want %v", size, direct, want)
		}
		if want && size > 0 && c.preads.Load() == 0 {
			t.Fatalf("%d bytes: not read back with O_DIRECT", size)
		}
		if want && size >= directChunk && c.writes.Load() == 0 {
			t.Fatalf("%d bytes: not written with O_DIRECT", size)
		}
	}
}

// TestSpoolFallback: where O_DIRECT is refused, at the open, at a write or
// at the reads (EINVAL), or on tmpfs, the spool goes through the page
// cache for what remains and still reads back exactly.
func TestSpoolFallback(t *testing.T) {
	t.Parallel()
	data := make([]byte, 3*directChunk+12345)
	_, _ = rand.Read(data)
	dir := t.TempDir()
	c := &spoolCounter{refuseOpen: true}
	if spoolRoundTrip(t, dir, c, data) || c.writes.Load() != 0 || c.preads.Load() != 0 {
		t.Fatalf("O_DIRECT refused at the open: still used (%d writes, %d reads)", c.writes.Load(), c.preads.Load())
	}
	if !directOutputExpected(t, dir) {
		t.Skipf("no O_DIRECT in %s: the refused writes and reads cannot be tested", dir)
	}
	c = &spoolCounter{}
	c.refuseWrite.Store(true)
	if !spoolRoundTrip(t, dir, c, data) || c.refusedW.Load() != 1 {
		t.Fatal("the refused write was not tried")
	}
	c = &spoolCounter{refuseReads: true}
	if !spoolRoundTrip(t, dir, c, data) || c.refusedR.Load() == 0 || c.preads.Load() != 0 {
		t.Fatal("the refused reads were not tried")
	}
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		shm, err := os.MkdirTemp("/dev/shm", "kmsctl-spool-test-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(shm)
		spoolRoundTrip(t, shm, &spoolCounter{}, data)
	}
}

// testKeyring keeps the data key in the clear in its EDK: enough for
// Decrypt in process, without KMS.
type testKeyring struct{}

func (testKeyring) OnEncrypt(_ context.Context, m *envelope.EncryptionMaterials) error {
	if m.DataKey == nil {
		m.DataKey = make([]byte, m.Suite.KeyLen)
		_, _ = rand.Read(m.DataKey)
	}
	m.EncryptedDataKeys = append(m.EncryptedDataKeys, format.EDK{ProviderID: "test", ProviderInfo: []byte("k"), Ciphertext: bytes.Clone(m.DataKey)})
	return nil
}

func (testKeyring) OnDecrypt(_ context.Context, m *envelope.DecryptionMaterials, edks []format.EDK) error {
	for _, e := range edks {
		if e.ProviderID == "test" {
			m.DataKey = bytes.Clone(e.Ciphertext)
			return nil
		}
	}
	return errors.New("no test EDK")
}

// TestSpoolDecrypt: a signed message decrypted in the safe mode through
// kmsctl's spool round-trips (with O_DIRECT where the file system has
// it); damaged in its last frame or its signature, it releases nothing,
// the spool is never read back, and nothing is left in the directory.
func TestSpoolDecrypt(t *testing.T) {
	t.Parallel()
	client := envelope.New(envelope.NewDefaultCMM(testKeyring{}))
	pt := make([]byte, 2*directChunk+777)
	_, _ = rand.Read(pt)
	var msg bytes.Buffer
	if _, err := client.Encrypt(t.Context(), &msg, bytes.NewReader(pt), envelope.EncryptOptions{FrameLength: 4096}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	want := directOutputExpected(t, dir)
	decrypt := func(m []byte) (*spoolCounter, []byte, error) {
		c := &spoolCounter{}
		var out bytes.Buffer
		_, err := client.Decrypt(t.Context(), &out, bytes.NewReader(m), envelope.DecryptOptions{TempDir: dir,
			NewSpool: func(dir string) (envelope.SpoolFile, error) { return openSpool(dir, c.io()) }})
		checkNoTemp(t, dir, "")
		return c, out.Bytes(), err
	}
	c, out, err := decrypt(msg.Bytes())
	if err != nil || !bytes.Equal(out, pt) {
		t.Fatalf("decrypt: %v, %d bytes, equal %v", err, len(out), bytes.Equal(out, pt))
	}
	if want && (c.writes.Load() == 0 || c.preads.Load() == 0) {
		t.Fatalf("spool without O_DIRECT: %d writes, %d reads", c.writes.Load(), c.preads.Load())
	}
	for name, pos := range map[string]int{"last frame": msg.Len() - 200, "signature": msg.Len() - 3} {
		bad := bytes.Clone(msg.Bytes())
		bad[pos] ^= 0x40
		c, out, err := decrypt(bad)
		if err == nil || len(out) != 0 {
			t.Fatalf("tampered %s: %v, %d bytes released", name, err, len(out))
		}
		if c.preads.Load() != 0 {
			t.Fatalf("tampered %s: the spool was read back", name)
		}
	}
}

// TestSpoolClose: a spool closed in the middle of pass 1 or of pass 2 (an
// error or a cancellation) stops its I/O and leaves nothing behind.
func TestSpoolClose(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := make([]byte, 3*directChunk+5)
	for _, pass := range []int{1, 2} {
		s, err := openSpool(dir, spoolIO{})
		if err != nil {
			t.Fatal(err)
		}
		writeUneven(t, s, data)
		if pass == 2 {
			r, err := s.Reader()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(r, make([]byte, 10)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatalf("pass %d: %v", pass, err)
		}
		checkNoTemp(t, dir, "")
	}
	// Through Decrypt: cancelled while spooling.
	client := envelope.New(envelope.NewDefaultCMM(testKeyring{}))
	var msg bytes.Buffer
	if _, err := client.Encrypt(t.Context(), &msg, bytes.NewReader(data), envelope.EncryptOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	src := &cancelAt{r: bytes.NewReader(msg.Bytes()), n: 2 * directChunk, cancel: cancel}
	var out bytes.Buffer
	if _, err := client.Decrypt(ctx, &out, src, envelope.DecryptOptions{TempDir: dir, NewSpool: newSpool}); err == nil || out.Len() != 0 {
		t.Fatalf("cancelled: %v, %d bytes released", err, out.Len())
	}
	checkNoTemp(t, dir, "")
}

// cancelAt cancels after n bytes were read.
type cancelAt struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelAt) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= n; c.n <= 0 {
		c.cancel()
	}
	return n, err
}

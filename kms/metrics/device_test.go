package metrics

import (
	"context"
	"errors"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"hsmkms/hsm"
)

type failingKeygen struct{ hsm.Device }

func (failingKeygen) GenerateAESKey(context.Context, []byte, string) error {
	return errors.New("HSM down")
}

// TestGenerateAESKeyErrorsCounted: a failed AES key generation counts in
// hsm_operation_errors_total (the error was read when the deferred call
// was set up, so it was always nil).
func TestGenerateAESKeyErrorsCounted(t *testing.T) {
	m := New()
	d := &Device{Device: failingKeygen{hsm.NewFake()}, m: m}
	if err := d.GenerateAESKey(t.Context(), []byte("0123456789abcdef"), "x"); err == nil {
		t.Fatal("the failure was lost")
	}
	var pb dto.Metric
	if err := m.hsmErrors.WithLabelValues("GenerateKey", "CKM_AES_KEY_GEN").Write(&pb); err != nil {
		t.Fatal(err)
	}
	if n := pb.GetCounter().GetValue(); n != 1 {
		t.Fatalf("errors counted %v, want 1", n)
	}
}

package hsm_test

import (
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"hsmkms/hsm"
	"hsmkms/hsm/softhsmtest"
)

// disabledMechanismEnv tells TestPKCS11ImportWithoutMechanism's child
// process which mechanism its token lacks.
const disabledMechanismEnv = "HSMKMS_TEST_DISABLED_MECHANISM"

// TestPKCS11ImportWithoutMechanism: a token that lacks what an import
// algorithm needs refuses that algorithm up front (UnsupportedOperation at
// GetParametersForImport), instead of failing every import with an
// internal error or blaming the customer's key material. Without AES-CMAC
// no import can compute its check value; without RFC 3394 key wrap, plain
// RSAES_OAEP cannot measure what SoftHSM unwrapped (it does not report the
// length), while RSA_AES_KEY_WRAP carries its length and still works.
// SoftHSM reads its configuration once per process, so each case runs this
// test again in a child process whose token has the mechanism disabled.
func TestPKCS11ImportWithoutMechanism(t *testing.T) {
	if mech := os.Getenv(disabledMechanismEnv); mech != "" {
		importWithout(t, mech)
		return
	}
	t.Parallel()
	for _, mech := range []string{"CKM_AES_CMAC", "CKM_AES_KEY_WRAP"} {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			timeout := 2 * time.Minute
			if d, ok := t.Deadline(); ok && time.Until(d) < timeout+10*time.Second {
				timeout = max(time.Until(d)-10*time.Second, time.Second)
			}
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestPKCS11ImportWithoutMechanism$",
				"-test.v", "-test.count=1", "-test.timeout="+timeout.String())
			cmd.WaitDelay = 5 * time.Second
			// "-,X": SoftHSM 2.6.1 disables the names after the minus
			// but the first ("-X" alone disables nothing).
			cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
				return strings.HasPrefix(kv, disabledMechanismEnv+"=") || strings.HasPrefix(kv, softhsmtest.ExtraConfigEnv+"=")
			}), disabledMechanismEnv+"="+mech, softhsmtest.ExtraConfigEnv+"=slots.mechanisms = -,"+mech+"\n")
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--- PASS: TestPKCS11ImportWithoutMechanism") {
				t.Fatalf("child with %s disabled: %v\n%s", mech, err, out)
			}
		})
	}
}

func importWithout(t *testing.T, mech string) {
	ctx := t.Context()
	d := openDevice(t, softhsmtest.NewToken(t))
	wid := randBytes(t, hsm.BackingIDSize)
	spki, err := d.GenerateWrappingKey(ctx, wid, "test wrapping key", 2048)
	if err != nil {
		t.Fatal(err)
	}
	want := map[hsm.WrapAlgorithm]bool{ // SoftHSM 2.6.1 has no OAEP SHA-256
		hsm.WrapOAEPSHA1:   false,
		hsm.WrapRSAAESSHA1: mech == "CKM_AES_KEY_WRAP",
	}
	for alg, supported := range want {
		ok, err := d.SupportsWrapAlgorithm(ctx, alg)
		if err != nil || ok != supported {
			t.Fatalf("%s without %s: SupportsWrapAlgorithm = %v, %v; want %v", alg, mech, ok, err, supported)
		}
		material := randBytes(t, 32)
		_, err = d.UnwrapAESKey(ctx, wid, alg, wrapForImport(t, spki, alg, material), randBytes(t, hsm.BackingIDSize), "x")
		switch {
		case !supported && !errors.Is(err, hsm.ErrUnsupportedWrap):
			t.Fatalf("%s without %s: err = %v, want ErrUnsupportedWrap", alg, mech, err)
		case supported && err != nil:
			t.Fatalf("%s without %s: %v", alg, mech, err)
		}
		if supported {
			_, err := d.UnwrapAESKey(ctx, wid, alg, wrapForImport(t, spki, alg, randBytes(t, 16)), randBytes(t, hsm.BackingIDSize), "x")
			if !errors.Is(err, hsm.ErrUnwrapFailed) {
				t.Fatalf("%s without %s, 128-bit key: err = %v, want ErrUnwrapFailed", alg, mech, err)
			}
		}
	}
}

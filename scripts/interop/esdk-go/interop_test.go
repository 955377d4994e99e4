package interop

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	mpl "github.com/aws/aws-cryptographic-material-providers-library/releases/go/mpl/awscryptographymaterialproviderssmithygenerated"
	mpltypes "github.com/aws/aws-cryptographic-material-providers-library/releases/go/mpl/awscryptographymaterialproviderssmithygeneratedtypes"
	esdk "github.com/aws/aws-encryption-sdk/releases/go/encryption-sdk/awscryptographyencryptionsdksmithygenerated"
	esdktypes "github.com/aws/aws-encryption-sdk/releases/go/encryption-sdk/awscryptographyencryptionsdksmithygeneratedtypes"

	"hsmkms/cmd/kmsctl/testkmsd"
	"hsmkms/kms/envelope"
)

// frame is the frame length of every message here: small, so that "many
// frames" stays cheap for the slow oracles.
const frame = 1024

// sizes: empty, one byte, exactly one frame, a final frame of frame size,
// many frames with a short final frame.
var sizes = []int{0, 1, frame, 5 * frame, 17*frame + 123}

var suites = []string{"0x0578", "0x0478"}

type fixture struct {
	srv    *testkmsd.Server
	arn    string
	kmsctl string
	goESDK *esdk.Client
	legacy *esdk.Client // FORBID_ENCRYPT_ALLOW_DECRYPT: makes v1 messages
	kr     mpltypes.IKeyring
	jsDir  string
}

func setup(t *testing.T) *fixture {
	t.Helper()
	srv := testkmsd.Start(t)
	f := &fixture{srv: srv, arn: srv.CreateKey(t, "interop"), kmsctl: testkmsd.Build(t, "./cmd/kmsctl")}
	matProv, err := mpl.NewClient(mpltypes.MaterialProvidersConfig{})
	if err != nil {
		t.Fatal(err)
	}
	f.kr, err = matProv.CreateAwsKmsKeyring(context.Background(), mpltypes.CreateAwsKmsKeyringInput{KmsClient: srv.Client(t), KmsKeyId: f.arn})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		c      **esdk.Client
		policy mpltypes.ESDKCommitmentPolicy
	}{{&f.goESDK, mpltypes.ESDKCommitmentPolicyRequireEncryptAllowDecrypt}, {&f.legacy, mpltypes.ESDKCommitmentPolicyForbidEncryptAllowDecrypt}} {
		policy := p.policy
		if *p.c, err = esdk.NewClient(esdktypes.AwsEncryptionSdkConfig{CommitmentPolicy: &policy}); err != nil {
			t.Fatal(err)
		}
	}
	f.jsDir, err = filepath.Abs("../esdk-js")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(f.jsDir, "node_modules", "@aws-crypto", "client-node")); err != nil {
		t.Fatalf("the JavaScript ESDK is not installed (scripts/test runs npm ci in %s): %v", f.jsDir, err)
	}
	return f
}

func (f *fixture) run(t *testing.T, stdin []byte, name string, args ...string) ([]byte, string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = f.srv.Env()
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, &errb)
	}
	return out.Bytes(), errb.String()
}

func (f *fixture) js(t *testing.T, stdin []byte, args ...string) ([]byte, string) {
	t.Helper()
	return f.run(t, stdin, "node", append([]string{filepath.Join(f.jsDir, "esdk.js")}, args...)...)
}

func ecArgs(ec map[string]string) []string {
	var a []string
	for k, v := range ec {
		a = append(a, "--encryption-context", k+"="+v)
	}
	return a
}

func checkContext(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s: encryption context %v lacks %s=%s", what, got, k, v)
		}
	}
}

// TestInterop: kmsctl -> Go ESDK, kmsctl -> JS ESDK, Go ESDK -> kmsctl,
// JS ESDK -> kmsctl, for every size and both suites.
func TestInterop(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	for _, suite := range suites {
		for _, size := range sizes {
			name := fmt.Sprintf("%s/%d", suite, size)
			pt := make([]byte, size)
			_, _ = rand.Read(pt)
			ec := map[string]string{"test": "interop", "size": fmt.Sprint(size)}

			// Ours -> official Go ESDK.
			ct, _ := f.run(t, pt, f.kmsctl, append([]string{"encrypt", "--key-id", f.arn, "--suite", suite, "--frame-size", fmt.Sprint(frame)}, ecArgs(ec)...)...)
			res, err := f.goESDK.Decrypt(ctx, esdktypes.DecryptInput{Ciphertext: ct, Keyring: f.kr, EncryptionContext: ec})
			if err != nil {
				t.Fatalf("%s: Go ESDK decrypt of kmsctl's message: %v", name, err)
			}
			if !bytes.Equal(res.Plaintext, pt) || string(res.AlgorithmSuiteId) != suite {
				t.Fatalf("%s: Go ESDK decrypted %d bytes, suite %s", name, len(res.Plaintext), res.AlgorithmSuiteId)
			}
			checkContext(t, name+" (Go ESDK)", res.EncryptionContext, ec)

			// Ours -> JS ESDK.
			got, stderr := f.js(t, ct, "decrypt", f.arn)
			if !bytes.Equal(got, pt) {
				t.Fatalf("%s: JS ESDK decrypted %d bytes, want %d", name, len(got), len(pt))
			}
			var jsEC map[string]string
			lines := strings.Split(strings.TrimSpace(stderr), "\n") // node may print warnings first
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &jsEC); err != nil {
				t.Fatalf("%s: JS context %q: %v", name, stderr, err)
			}
			checkContext(t, name+" (JS ESDK)", jsEC, ec)

			// Official Go ESDK -> ours.
			sid := mpltypes.ESDKAlgorithmSuiteId(suite)
			fl := int64(frame)
			enc, err := f.goESDK.Encrypt(ctx, esdktypes.EncryptInput{Plaintext: pt, EncryptionContext: ec, Keyring: f.kr, AlgorithmSuiteId: &sid, FrameLength: &fl})
			if err != nil {
				t.Fatalf("%s: Go ESDK encrypt: %v", name, err)
			}
			if got, _ := f.run(t, enc.Ciphertext, f.kmsctl, append([]string{"decrypt", "--key-id", f.arn}, ecArgs(ec)...)...); !bytes.Equal(got, pt) {
				t.Fatalf("%s: kmsctl decrypt of the Go ESDK's message differs", name)
			}

			// JS ESDK -> ours.
			ecJSON, _ := json.Marshal(ec)
			jsCT, _ := f.js(t, pt, "encrypt", f.arn, suite, fmt.Sprint(frame), string(ecJSON))
			if got, _ := f.run(t, jsCT, f.kmsctl, append([]string{"decrypt"}, ecArgs(ec)...)...); !bytes.Equal(got, pt) {
				t.Fatalf("%s: kmsctl decrypt of the JS ESDK's message differs", name)
			}
			// And the library directly, in streaming mode.
			lib := envelope.New(envelope.NewDefaultCMM(&envelope.KMSKeyring{Client: f.srv.Client(t), AdditionalKeys: []string{f.arn}}))
			var out bytes.Buffer
			if _, err := lib.Decrypt(ctx, &out, bytes.NewReader(jsCT), envelope.DecryptOptions{UnsafeStreaming: true, EncryptionContext: ec}); err != nil || !bytes.Equal(out.Bytes(), pt) {
				t.Fatalf("%s: library decrypt of the JS ESDK's message: %v", name, err)
			}
		}
	}
}

// TestLegacyFromOfficialESDKs: message format version 1 messages of every
// suite the official Go ESDK makes under FORBID_ENCRYPT_ALLOW_DECRYPT, and
// the JS ESDK's default v1 suite, decrypt with kmsctl.
func TestLegacyFromOfficialESDKs(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	pt := make([]byte, 3*frame+5)
	_, _ = rand.Read(pt)
	for _, id := range []string{"0x0378", "0x0346", "0x0214", "0x0178", "0x0146", "0x0114", "0x0078", "0x0046", "0x0014"} {
		sid := mpltypes.ESDKAlgorithmSuiteId(id)
		fl := int64(frame)
		enc, err := f.legacy.Encrypt(ctx, esdktypes.EncryptInput{Plaintext: pt, Keyring: f.kr, AlgorithmSuiteId: &sid, FrameLength: &fl, EncryptionContext: map[string]string{"v": "1"}})
		if err != nil {
			t.Fatalf("%s: Go ESDK encrypt: %v", id, err)
		}
		if enc.Ciphertext[0] != 1 {
			t.Fatalf("%s: message format version %d, want 1", id, enc.Ciphertext[0])
		}
		if got, _ := f.run(t, enc.Ciphertext, f.kmsctl, "decrypt", "--encryption-context", "v=1"); !bytes.Equal(got, pt) {
			t.Fatalf("%s: kmsctl decrypt of a v1 message differs", id)
		}
	}
	cmd := exec.Command("node", filepath.Join(f.jsDir, "esdk.js"), "encrypt", f.arn, "0x0378", fmt.Sprint(frame), `{"v":"1"}`)
	cmd.Env = append(f.srv.Env(), "ESDK_POLICY=forbid")
	cmd.Stdin = bytes.NewReader(pt)
	ct, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("JS ESDK legacy encrypt: %v\n%s", err, ee.Stderr)
	} else if err != nil {
		t.Fatal(err)
	}
	if got, _ := f.run(t, ct, f.kmsctl, "decrypt"); !bytes.Equal(got, pt) {
		t.Fatal("kmsctl decrypt of the JS ESDK's v1 message differs")
	}
}

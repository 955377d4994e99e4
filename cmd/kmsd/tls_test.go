package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"hsmkms/hsm/softhsmtest"
)

// testCert makes a self-signed CA and a server certificate for 127.0.0.1
// signed by it, writes the server pair as PEM files and returns the CA pool.
func testCert(t *testing.T) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kmsd test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kmsd"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile = filepath.Join(dir, "server.crt")
	keyFile = filepath.Join(dir, "server.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(caCert)
	return certFile, keyFile, roots
}

func TestConfigTLSAndListenAddress(t *testing.T) {
	t.Parallel()
	mod := fakeModule(t)
	certFile, keyFile, _ := testCert(t)
	load := func(yaml string, env map[string]string) error {
		env["KMSD_HSM_PIN"] = "1234"
		_, err := loadConfig(loadOptions{path: writeFile(t, "c.yaml", yaml, 0o600), getenv: testEnv(env), modules: []string{mod}})
		return err
	}
	refused := []struct{ name, yaml string }{
		{"all interfaces", "listen: 0.0.0.0:8080\n"},
		{"empty host", "listen: :8080\n"},
		{"routable address", "listen: 192.0.2.1:8080\n"},
		{"host name", "listen: kms.example.com:8080\n"},
		{"ipv6 any", "listen: '[::]:8080'\n"},
	}
	for _, tt := range refused {
		err := load(tt.yaml, map[string]string{})
		if err == nil || !strings.Contains(err.Error(), "not a loopback address and TLS is off") {
			t.Errorf("%s: err = %v, want the plaintext refusal", tt.name, err)
		}
	}
	accepted := []struct {
		name, yaml string
		env        map[string]string
	}{
		{"loopback v4", "listen: 127.0.0.1:8080\n", map[string]string{}},
		{"loopback v6", "listen: '[::1]:8080'\n", map[string]string{}},
		{"localhost", "listen: localhost:8080\n", map[string]string{}},
		{"explicit plaintext", "listen: 0.0.0.0:8080\nhttp:\n  allow_plaintext: true\n", map[string]string{}},
		{"tls in file", "listen: 0.0.0.0:8080\nhttp:\n  tls:\n    cert_file: " + certFile + "\n    key_file: " + keyFile + "\n", map[string]string{}},
		{"tls from env", "listen: 0.0.0.0:8080\n", map[string]string{"KMSD_TLS_CERT_FILE": certFile, "KMSD_TLS_KEY_FILE": keyFile}},
	}
	for _, tt := range accepted {
		if err := load(tt.yaml, tt.env); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	for _, tt := range []struct{ yaml, want string }{
		{"http:\n  tls:\n    cert_file: " + certFile + "\n", "http.tls.key_file: must be set"},
		{"http:\n  tls:\n    key_file: " + keyFile + "\n", "http.tls.cert_file: must be set"},
		{"http:\n  tls:\n    cert_file: " + keyFile + "\n    key_file: " + keyFile + "\n", "http.tls:"},
		{"http:\n  tls:\n    cert_file: /nonexistent.crt\n    key_file: " + keyFile + "\n", "/nonexistent.crt"},
	} {
		if err := load(tt.yaml, map[string]string{}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want %q", tt.yaml, err, tt.want)
		}
	}
}

// TestRunTLS serves HTTPS and drives it with the AWS SDK through an
// http.Client that trusts only the test CA; plain HTTP on the same port is
// not answered as KMS. It also checks that the PIN variable is gone from the
// environment once kmsd runs.
func TestRunTLS(t *testing.T) {
	tok := softhsmtest.NewToken(t)
	dir := t.TempDir()
	creds := filepath.Join(dir, "state", "admin-credentials")
	certFile, keyFile, roots := testCert(t)
	kmsdEnv(t, map[string]string{
		"KMSD_HSM_PIN":          tok.PIN,
		"KMSD_HSM_MODULE":       tok.ModulePath,
		"KMSD_HSM_TOKEN_LABEL":  tok.TokenLabel,
		"KMSD_DATABASE":         filepath.Join(dir, "state", "kms.db"),
		"KMSD_CREDENTIALS_FILE": creds,
		"KMSD_LOG_LEVEL":        "warn",
		"KMSD_TLS_CERT_FILE":    certFile,
		"KMSD_TLS_KEY_FILE":     keyFile,
	})
	s := startKMSD(t)
	defer s.stop(t)
	if s.pinEnvAfterStart != "" {
		t.Errorf("KMSD_HSM_PIN is still set in the kmsd process environment")
	}
	text, err := os.ReadFile(creds)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "# endpoint: https://"+s.addr) {
		t.Errorf("credentials file does not name the https endpoint:\n%s", text)
	}

	httpClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	cfg, err := awsconfig.LoadDefaultConfig(t.Context(),
		awsconfig.WithSharedCredentialsFiles([]string{creds}),
		awsconfig.WithSharedConfigFiles([]string{}),
		awsconfig.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	client := awskms.NewFromConfig(cfg, func(o *awskms.Options) {
		o.BaseEndpoint = aws.String("https://" + s.addr)
		o.HTTPClient = httpClient
	})
	ck, err := client.CreateKey(t.Context(), &awskms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := client.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: ck.KeyMetadata.KeyId, Plaintext: []byte("over tls")})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := client.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	if err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	if string(dec.Plaintext) != "over tls" {
		t.Fatalf("decrypt: %q", dec.Plaintext)
	}

	// TLS 1.1 is refused.
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}}}
	if resp, err := old.Get("https://" + s.addr + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("a TLS 1.1 client was served")
	}
	// Plain HTTP gets no KMS answer.
	if resp, err := http.Get("http://" + s.addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP was served on the TLS port")
		}
	}
}

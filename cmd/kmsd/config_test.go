package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testEnv returns a getenv over a map.
func testEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// fakeModule creates an empty file standing in for a PKCS#11 module.
func fakeModule(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "libfake.so")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeFile(t *testing.T, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask-proof
		t.Fatal(err)
	}
	return p
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	mod := fakeModule(t)
	pinFile := writeFile(t, "pin", "1234\n", 0o600)

	tests := []struct {
		name   string
		yaml   string // "" means no file
		env    map[string]string
		listen string // -listen flag
		check  func(t *testing.T, c Config)
	}{
		{
			name: "embedded defaults",
			env:  map[string]string{"KMSD_HSM_PIN": "env-pin"},
			check: func(t *testing.T, c Config) {
				want := defaultConfig()
				want.HSM.Module = mod
				if c.PIN() != "env-pin" {
					t.Errorf("PIN() = %q", c.PIN())
				}
				c.HSM.pin = nil
				if c != want {
					t.Errorf("got %+v\nwant %+v", c, want)
				}
				if c.Listen != "127.0.0.1:8080" || c.Region != "us-east-1" ||
					c.Database != "./var/kms.db" || c.CredentialsFile != "./var/admin-credentials" ||
					c.HSM.TokenLabel != "kms" || c.HSM.PINFile != "./var/hsm-pin" ||
					c.DeletionCheckInterval != Duration(time.Minute) ||
					c.Log.Level != "info" || c.Log.Format != "text" || c.HSM.PoolSize != 0 {
					t.Errorf("defaults changed: %+v", c)
				}
			},
		},
		{
			name: "empty file keeps defaults",
			yaml: "# nothing\n",
			env:  map[string]string{"KMSD_HSM_PIN": "x"},
			check: func(t *testing.T, c Config) {
				if c.Listen != "127.0.0.1:8080" || c.Region != "us-east-1" {
					t.Errorf("got %+v", c)
				}
			},
		},
		{
			name: "file sets every section",
			yaml: `
listen: 0.0.0.0:9000
region: eu-west-3
database: /data/kms.db
credentials_file: /data/creds
deletion_check_interval: 30s
hsm:
  token_label: prod
  pin_file: ` + pinFile + `
  pool_size: 8
  pool_wait: 2s
log:
  level: debug
  format: json
http:
  max_body_bytes: 1048576
  allow_plaintext: true
  read_timeout: 5s
  max_header_bytes: 4096
  shutdown_timeout: 3s
advanced:
  invocation_bound: 100
  reserve_block: 10
`,
			check: func(t *testing.T, c Config) {
				if c.Listen != "0.0.0.0:9000" || c.Region != "eu-west-3" || c.Database != "/data/kms.db" ||
					c.CredentialsFile != "/data/creds" || c.DeletionCheckInterval != Duration(30*time.Second) {
					t.Errorf("top level: %+v", c)
				}
				if c.HSM.TokenLabel != "prod" || c.HSM.PoolSize != 8 || c.HSM.PoolWait != Duration(2*time.Second) ||
					c.HSM.Module != mod || c.PIN() != "1234" {
					t.Errorf("hsm: %+v", c.HSM)
				}
				if c.Log != (LogConfig{Level: "debug", Format: "json"}) {
					t.Errorf("log: %+v", c.Log)
				}
				if c.HTTP.MaxBodyBytes != 1<<20 || c.HTTP.ReadTimeout != Duration(5*time.Second) ||
					c.HTTP.MaxHeaderBytes != 4096 || c.HTTP.ShutdownTimeout != Duration(3*time.Second) ||
					c.HTTP.WriteTimeout != defaultConfig().HTTP.WriteTimeout {
					t.Errorf("http: %+v", c.HTTP)
				}
				if c.Advanced != (AdvancedConfig{InvocationBound: 100, ReserveBlock: 10}) {
					t.Errorf("advanced: %+v", c.Advanced)
				}
			},
		},
		{
			name: "environment beats file, flag beats environment",
			yaml: "listen: 127.0.0.1:1\nregion: eu-west-1\ndatabase: a.db\n",
			env: map[string]string{
				"KMSD_LISTEN":           "127.0.0.1:2",
				"KMSD_REGION":           "ap-southeast-2",
				"KMSD_DATABASE":         "b.db",
				"KMSD_CREDENTIALS_FILE": "c.ini",
				"KMSD_HSM_MODULE":       mod,
				"KMSD_HSM_TOKEN_LABEL":  "other",
				"KMSD_HSM_PIN_FILE":     pinFile,
				"KMSD_LOG_LEVEL":        "warn",
				"KMSD_LOG_FORMAT":       "json",
			},
			listen: "127.0.0.1:0",
			check: func(t *testing.T, c Config) {
				if c.Listen != "127.0.0.1:0" || c.Region != "ap-southeast-2" || c.Database != "b.db" ||
					c.CredentialsFile != "c.ini" || c.HSM.Module != mod || c.HSM.TokenLabel != "other" ||
					c.HSM.PINFile != pinFile || c.PIN() != "1234" || c.Log.Level != "warn" || c.Log.Format != "json" {
					t.Errorf("got %+v", c)
				}
			},
		},
		{
			name: "PIN environment variable wins over the PIN file",
			env:  map[string]string{"KMSD_HSM_PIN": "from-env", "KMSD_HSM_PIN_FILE": pinFile},
			check: func(t *testing.T, c Config) {
				if c.PIN() != "from-env" {
					t.Errorf("PIN from %q", c.PIN())
				}
			},
		},
		{
			name: "pin_env names another variable",
			yaml: "hsm:\n  pin_env: MY_PIN\n",
			env:  map[string]string{"MY_PIN": "mine", "KMSD_HSM_PIN": "not-this"},
			check: func(t *testing.T, c Config) {
				if c.PIN() != "mine" {
					t.Errorf("PIN from %q", c.PIN())
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opt := loadOptions{getenv: testEnv(tt.env), listen: tt.listen, modules: []string{"/nonexistent/lib.so", mod}}
			if tt.yaml != "" {
				opt.path = writeFile(t, "kmsd.yaml", tt.yaml, 0o644)
			}
			c, err := loadConfig(opt)
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadConfigErrors(t *testing.T) {
	t.Parallel()
	mod := fakeModule(t)
	pin := map[string]string{"KMSD_HSM_PIN": "1234"}

	tests := []struct {
		name    string
		yaml    string
		env     map[string]string
		modules []string
		want    []string // substrings that must all be in the one error
	}{
		{
			name: "unknown top-level field",
			yaml: "listen: 127.0.0.1:1\nlisten_addr: x\n",
			env:  pin,
			want: []string{"unknown option listen_addr"},
		},
		{
			name: "unknown nested fields reported together",
			yaml: "hsm:\n  pin: 1234\n  slot: 3\nlog:\n  colour: red\n",
			env:  pin,
			want: []string{"unknown option pin", "unknown option slot", "unknown option colour", "3 problem(s)"},
		},
		{
			name: "every validation problem in one error",
			yaml: `
listen: nowhere
region: US_EAST_1
deletion_check_interval: -1m
hsm:
  token_label: ""
  pool_size: -1
log:
  level: loud
  format: xml
http:
  read_timeout: 0s
  max_header_bytes: 0
`,
			env: pin,
			want: []string{
				"listen:", "region:", "deletion_check_interval:", "hsm.token_label:", "hsm.pool_size:",
				"log.level:", "log.format:", "http.read_timeout:", "http.max_header_bytes:", "9 problem(s)",
			},
		},
		{
			name: "decode and validation problems together",
			yaml: "region: nope\nbogus: 1\ndeletion_check_interval: 60\n",
			env:  pin,
			want: []string{"line 2: unknown option bogus", "want a duration", "region:"},
		},
		{
			name: "a negative count and a zero digest interval",
			yaml: "advanced:\n  invocation_bound: -1\naudit:\n  digest_interval: 0s\n",
			env:  pin,
			want: []string{"line 2: -1 is not a non-negative integer", "audit.digest_interval: must be positive"},
		},
		{
			name: "bare number is not a duration",
			yaml: "deletion_check_interval: 60\n",
			env:  pin,
			want: []string{"want a duration such as"},
		},
		{
			name: "bad duration string",
			yaml: "http:\n  idle_timeout: soon\n",
			env:  pin,
			want: []string{"line 2", "invalid duration"},
		},
		{
			name: "port out of range",
			yaml: "listen: 127.0.0.1:70000\n",
			env:  pin,
			want: []string{"invalid port"},
		},
		{
			name: "reserve block above bound",
			yaml: "advanced:\n  invocation_bound: 10\n  reserve_block: 11\n",
			env:  pin,
			want: []string{"advanced.reserve_block"},
		},
		{
			name: "no PIN anywhere",
			env:  map[string]string{"KMSD_HSM_PIN_FILE": "/nonexistent/pin"},
			want: []string{"hsm.pin_file", "no such file", "KMSD_HSM_PIN"},
		},
		{
			name:    "no module found",
			env:     pin,
			modules: []string{"/nonexistent/a.so", "/nonexistent/b.so"},
			want:    []string{"hsm.module", "/nonexistent/a.so, /nonexistent/b.so"},
		},
		{
			name: "explicit module missing",
			env:  map[string]string{"KMSD_HSM_PIN": "1", "KMSD_HSM_MODULE": "/nonexistent/x.so"},
			want: []string{"hsm.module", "/nonexistent/x.so"},
		},
		{
			name: "two documents",
			yaml: "listen: 127.0.0.1:1\n---\nlisten: 127.0.0.1:2\n",
			env:  pin,
			want: []string{"more than one YAML document"},
		},
		{
			name: "syntax error",
			yaml: "listen: [\n",
			env:  pin,
			want: []string{"kmsd.yaml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opt := loadOptions{getenv: testEnv(tt.env), modules: tt.modules}
			if opt.modules == nil {
				opt.modules = []string{mod}
			}
			if tt.yaml != "" {
				opt.path = writeFile(t, "kmsd.yaml", tt.yaml, 0o644)
			}
			_, err := loadConfig(opt)
			if err == nil {
				t.Fatal("loadConfig succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	t.Parallel()
	_, err := loadConfig(loadOptions{path: filepath.Join(t.TempDir(), "none.yaml"), getenv: testEnv(nil)})
	if err == nil || !strings.Contains(err.Error(), "none.yaml") {
		t.Fatalf("err = %v", err)
	}
}

func TestReadPINFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string
		wantErr string
	}{
		{"plain", "1234", 0o600, "1234", ""},
		{"trailing newline trimmed", "1234\n", 0o600, "1234", ""},
		{"trailing CRLF trimmed", "1234\r\n", 0o400, "1234", ""},
		{"only one newline trimmed", "1234\n\n", 0o600, "", "more than one line"},
		{"inner spaces kept", " 12 34 \n", 0o600, " 12 34 ", ""},
		{"empty", "", 0o600, "", "is empty"},
		{"just a newline", "\n", 0o600, "", "is empty"},
		{"group readable refused", "1234\n", 0o640, "", "chmod 600"},
		{"world readable refused", "1234\n", 0o604, "", "accessible by group or others"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := writeFile(t, "pin", tt.content, tt.mode)
			got, err := readPINFile(p)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "1234") {
					t.Errorf("error shows the PIN: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got %q, want %q", string(got), tt.want)
			}
		})
	}
	t.Run("directory refused", func(t *testing.T) {
		t.Parallel()
		d := t.TempDir()
		if err := os.Chmod(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := readPINFile(d); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestPINNeverPrinted(t *testing.T) {
	t.Parallel()
	const pin = "s3cr3t-pin-value"
	c, err := loadConfig(loadOptions{getenv: testEnv(map[string]string{"KMSD_HSM_PIN": pin}), modules: []string{fakeModule(t)}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		l := slog.New(h)
		l.Info("config", "config", c, "hsm", c.HSM, "pin", *c.HSM.pin)
	}
	fmt.Fprintf(&buf, "%v %+v %#v %v %+v %s %q", c, c, c, c.HSM, c.HSM, *c.HSM.pin, *c.HSM.pin)
	if strings.Contains(buf.String(), pin) {
		t.Fatalf("PIN printed:\n%s", buf.String())
	}
	if c.PIN() != pin {
		t.Fatalf("PIN() = %q", c.PIN())
	}
}

func TestSoftHSMConf(t *testing.T) {
	// Changes the working directory: not parallel.
	dir := t.TempDir()
	t.Chdir(dir)
	env := map[string]string{}
	setenv := func(k, v string) error { env[k] = v; return nil }

	if v, set, err := softHSMConf(testEnv(env), setenv); err != nil || set || v != "" {
		t.Fatalf("without softhsm.conf: %q %v %v", v, set, err)
	}
	if err := os.WriteFile("softhsm.conf", []byte("directories.tokendir = ./var\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v, set, err := softHSMConf(testEnv(env), setenv)
	want := filepath.Join(dir, "softhsm.conf")
	if err != nil || !set || v != want || env["SOFTHSM2_CONF"] != want {
		t.Fatalf("with softhsm.conf: %q %v %v env=%q", v, set, err, env["SOFTHSM2_CONF"])
	}
	env["SOFTHSM2_CONF"] = "/etc/softhsm/other.conf"
	if v, set, err := softHSMConf(testEnv(env), setenv); err != nil || set || v != "/etc/softhsm/other.conf" {
		t.Fatalf("already set: %q %v %v", v, set, err)
	}
}

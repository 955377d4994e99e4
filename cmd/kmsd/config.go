package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole kmsd configuration: one YAML file, then environment
// overrides, then flags. The zero file (no file at all) is defaultConfig, which
// runs against SoftHSM2 with the repository's softhsm.conf and a token under
// ./var.
//
// Relative paths are resolved against the working directory.
type Config struct {
	// Listen is the TCP address of the HTTP API, host:port. Port 0 picks a
	// free port (see the -addr-file flag).
	Listen string `yaml:"listen"`
	// Region is the AWS region the service answers for.
	Region string `yaml:"region"`
	// Database is the SQLite metadata file.
	Database string `yaml:"database"`
	// CredentialsFile receives the bootstrap admin access key on first start
	// (mode 0600, AWS shared-credentials form).
	CredentialsFile string `yaml:"credentials_file"`
	// DeletionCheckInterval is how often keys whose deletion window has
	// ended are looked for and destroyed.
	DeletionCheckInterval Duration `yaml:"deletion_check_interval"`
	// RotationCheckInterval is how often automatic key rotations that are
	// due, imported key material past its ValidTo and expired import
	// parameters are acted on (also once at start-up), and key creations
	// and destroys a crash or HSM fault left unfinished are settled
	// (kms.SettleUnfinished, in the same pass, before the rotations).
	RotationCheckInterval Duration `yaml:"rotation_check_interval"`

	HSM      HSMConfig      `yaml:"hsm"`
	Log      LogConfig      `yaml:"log"`
	HTTP     HTTPConfig     `yaml:"http"`
	Advanced AdvancedConfig `yaml:"advanced"`

	// Audit trail, request quotas, metrics and health listener
	// (config_observe.go).
	Audit   AuditConfig   `yaml:"audit"`
	Quotas  *QuotaConfig  `yaml:"quotas"`
	Metrics MetricsConfig `yaml:"metrics"`
}

// HSMConfig selects the PKCS#11 module and token.
type HSMConfig struct {
	// Module is the PKCS#11 library. Empty: the first of moduleCandidates
	// that exists (SoftHSM2 on Debian).
	Module string `yaml:"module"`
	// TokenLabel selects the token (the slot id changes; the label does not).
	TokenLabel string `yaml:"token_label"`
	// PINFile holds the user PIN (mode 0600 or stricter; one trailing
	// newline is ignored). Used when the PIN environment variable is unset.
	PINFile string `yaml:"pin_file"`
	// PINEnv names the environment variable that holds the PIN. It wins
	// over PINFile when set and non-empty. Default KMSD_HSM_PIN.
	PINEnv string `yaml:"pin_env"`
	// PoolSize is the number of PKCS#11 sessions; 0 means the hsm default.
	PoolSize int `yaml:"pool_size"`
	// PoolWait bounds the wait for a free session; 0 means the hsm default.
	PoolWait Duration `yaml:"pool_wait"`

	// pin is filled by resolvePIN from PINEnv or PINFile; never from the
	// YAML. A pointer, so that fmt's %v of the struct shows an address and
	// never the value.
	pin *secret
}

// LogConfig selects the log level and format.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text, json
}

// HTTPConfig tunes the HTTP server.
type HTTPConfig struct {
	// MaxBodyBytes limits request bodies; 0 means the httpapi default.
	MaxBodyBytes      int64    `yaml:"max_body_bytes"`
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	ReadTimeout       Duration `yaml:"read_timeout"`
	WriteTimeout      Duration `yaml:"write_timeout"`
	IdleTimeout       Duration `yaml:"idle_timeout"`
	MaxHeaderBytes    int      `yaml:"max_header_bytes"`
	// ShutdownTimeout bounds the graceful shutdown on SIGINT/SIGTERM.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// TLS serves HTTPS (tls.go). Without it, only a loopback listen
	// address is accepted unless AllowPlaintext is set.
	TLS            TLSConfig `yaml:"tls"`
	AllowPlaintext bool      `yaml:"allow_plaintext"`
}

// AdvancedConfig holds nonce-safety knobs. Leave them at 0 (the service
// defaults: 2^32 invocations per key version, reserved 2^16 at a time) unless
// you are testing rotation.
type AdvancedConfig struct {
	InvocationBound uint64 `yaml:"invocation_bound"`
	ReserveBlock    uint64 `yaml:"reserve_block"`
}

// moduleCandidates are tried in order when hsm.module is empty.
var moduleCandidates = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
}

// defaultPINEnv is the environment variable read for the PIN by default.
const defaultPINEnv = "KMSD_HSM_PIN"

func defaultConfig() Config {
	return Config{
		Listen:                "127.0.0.1:8080",
		Region:                "us-east-1",
		Database:              "./var/kms.db",
		CredentialsFile:       "./var/admin-credentials",
		DeletionCheckInterval: Duration(time.Minute),
		RotationCheckInterval: Duration(time.Minute),
		HSM: HSMConfig{
			TokenLabel: "kms",
			PINFile:    "./var/hsm-pin",
			PINEnv:     defaultPINEnv,
		},
		Log:   LogConfig{Level: "info", Format: "text"},
		Audit: AuditConfig{DigestInterval: Duration(defaultDigestInterval)},
		HTTP: HTTPConfig{
			ReadHeaderTimeout: Duration(10 * time.Second),
			ReadTimeout:       Duration(30 * time.Second),
			WriteTimeout:      Duration(30 * time.Second),
			IdleTimeout:       Duration(2 * time.Minute),
			MaxHeaderBytes:    64 << 10,
			ShutdownTimeout:   Duration(15 * time.Second),
		},
	}
}

// envOverrides maps environment variables to the field they override. The
// PIN itself is not here: it is read by resolvePIN from HSM.PINEnv.
var envOverrides = []struct {
	name string
	set  func(*Config, string)
}{
	{"KMSD_LISTEN", func(c *Config, v string) { c.Listen = v }},
	{"KMSD_REGION", func(c *Config, v string) { c.Region = v }},
	{"KMSD_DATABASE", func(c *Config, v string) { c.Database = v }},
	{"KMSD_CREDENTIALS_FILE", func(c *Config, v string) { c.CredentialsFile = v }},
	{"KMSD_HSM_MODULE", func(c *Config, v string) { c.HSM.Module = v }},
	{"KMSD_HSM_TOKEN_LABEL", func(c *Config, v string) { c.HSM.TokenLabel = v }},
	{"KMSD_HSM_PIN_FILE", func(c *Config, v string) { c.HSM.PINFile = v }},
	{"KMSD_LOG_LEVEL", func(c *Config, v string) { c.Log.Level = v }},
	{"KMSD_LOG_FORMAT", func(c *Config, v string) { c.Log.Format = v }},
	{"KMSD_TLS_CERT_FILE", func(c *Config, v string) { c.HTTP.TLS.CertFile = v }},
	{"KMSD_TLS_KEY_FILE", func(c *Config, v string) { c.HTTP.TLS.KeyFile = v }},
}

// loadOptions are the inputs of loadConfig, so tests need no real process
// environment or file system layout.
type loadOptions struct {
	path     string              // config file; "" means defaults only
	getenv   func(string) string // os.Getenv in production
	listen   string              // -listen flag; "" means not given
	modules  []string            // module candidates; nil means moduleCandidates
	statFile func(string) (fs.FileInfo, error)
}

// loadConfig builds the configuration: defaults, then the file, then the
// environment, then flags; then it validates everything and reads the PIN.
// Every problem found is reported in one error.
func loadConfig(opt loadOptions) (Config, error) {
	if opt.getenv == nil {
		opt.getenv = os.Getenv
	}
	if opt.modules == nil {
		opt.modules = moduleCandidates
	}
	if opt.statFile == nil {
		opt.statFile = os.Stat
	}
	cfg := defaultConfig()
	var decodeErrs []error
	if opt.path != "" {
		data, err := os.ReadFile(opt.path)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		if err := decodeConfig(data, &cfg); err != nil {
			var te *yaml.TypeError
			if !errors.As(err, &te) {
				return Config{}, fmt.Errorf("config %s: %w", opt.path, err)
			}
			// Type errors and unknown fields leave the rest decoded:
			// report them together with everything else.
			for _, msg := range te.Errors {
				decodeErrs = append(decodeErrs, errors.New(readableYAMLMessage(msg)))
			}
		}
	}
	for _, o := range envOverrides {
		if v := opt.getenv(o.name); v != "" {
			o.set(&cfg, v)
		}
	}
	if opt.listen != "" {
		cfg.Listen = opt.listen
	}

	errs := decodeErrs
	errs = append(errs, cfg.validate()...)
	errs = append(errs, cfg.validateTLS()...)
	if err := cfg.resolveModule(opt.modules, opt.statFile); err != nil {
		errs = append(errs, err)
	}
	if err := cfg.resolvePIN(opt.getenv); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return Config{}, configError(opt.path, errs)
	}
	return cfg, nil
}

// decodeConfig decodes YAML strictly into cfg (which holds the defaults).
// An empty file leaves the defaults.
func decodeConfig(data []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("more than one YAML document")
	}
	return nil
}

var (
	yamlUnknownField = regexp.MustCompile(`field (\S+) not found in type \S+`)
	yamlBadValue     = regexp.MustCompile("cannot unmarshal !!\\w+ `(.*)` into (\\S+)")
	yamlTypeNames    = map[string]string{
		"uint64": "a non-negative integer", "uint32": "a non-negative integer", "uint": "a non-negative integer",
		"int": "an integer", "int64": "an integer", "int32": "an integer", "bool": "true or false", "string": "a string",
	}
)

// readableYAMLMessage words one of the decoder's messages for an operator
// rather than in Go's types: "unknown option X" instead of "field X not
// found in type main.Config", "-1 is not a non-negative integer" instead of
// "cannot unmarshal !!int `-1` into uint64".
func readableYAMLMessage(m string) string {
	m = yamlUnknownField.ReplaceAllString(m, "unknown option $1")
	return yamlBadValue.ReplaceAllStringFunc(m, func(s string) string {
		sub := yamlBadValue.FindStringSubmatch(s)
		want, ok := yamlTypeNames[sub[2]]
		if !ok {
			want = "of the expected type"
		}
		return fmt.Sprintf("%s is not %s", sub[1], want)
	})
}

func configError(path string, errs []error) error {
	var b strings.Builder
	if path != "" {
		fmt.Fprintf(&b, "config %s: %d problem(s):", path, len(errs))
	} else {
		fmt.Fprintf(&b, "config: %d problem(s):", len(errs))
	}
	for _, e := range errs {
		b.WriteString("\n  - ")
		b.WriteString(e.Error())
	}
	return errors.New(b.String())
}

var regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)

// validate checks every field and returns all problems found.
func (c *Config) validate() []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if err := checkListen(c.Listen); err != nil {
		bad("listen: %v", err)
	}
	if !regionRE.MatchString(c.Region) {
		bad("region: %q is not a region name like us-east-1", c.Region)
	}
	if strings.TrimSpace(c.Database) == "" {
		bad("database: must not be empty")
	}
	if strings.TrimSpace(c.CredentialsFile) == "" {
		bad("credentials_file: must not be empty")
	}
	if c.DeletionCheckInterval <= 0 {
		bad("deletion_check_interval: must be positive, got %s", c.DeletionCheckInterval)
	}
	if c.RotationCheckInterval <= 0 {
		bad("rotation_check_interval: must be positive, got %s", c.RotationCheckInterval)
	}
	if c.HSM.TokenLabel == "" {
		bad("hsm.token_label: must not be empty")
	} else if len(c.HSM.TokenLabel) > 32 {
		bad("hsm.token_label: %q is longer than 32 bytes (PKCS#11 limit)", c.HSM.TokenLabel)
	}
	if c.HSM.PINEnv == "" {
		bad("hsm.pin_env: must not be empty")
	}
	if c.HSM.PoolSize < 0 {
		bad("hsm.pool_size: must be 0 (default) or positive, got %d", c.HSM.PoolSize)
	}
	if c.HSM.PoolWait < 0 {
		bad("hsm.pool_wait: must be 0 (default) or positive, got %s", c.HSM.PoolWait)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level: %q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format: %q is not one of text, json", c.Log.Format)
	}
	if c.HTTP.MaxBodyBytes < 0 {
		bad("http.max_body_bytes: must be 0 (default) or positive, got %d", c.HTTP.MaxBodyBytes)
	}
	if c.HTTP.MaxHeaderBytes <= 0 {
		bad("http.max_header_bytes: must be positive, got %d", c.HTTP.MaxHeaderBytes)
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{
		{"http.read_header_timeout", c.HTTP.ReadHeaderTimeout},
		{"http.read_timeout", c.HTTP.ReadTimeout},
		{"http.write_timeout", c.HTTP.WriteTimeout},
		{"http.idle_timeout", c.HTTP.IdleTimeout},
		{"http.shutdown_timeout", c.HTTP.ShutdownTimeout},
	} {
		if d.v <= 0 {
			bad("%s: must be positive, got %s", d.name, d.v)
		}
	}
	if c.Advanced.ReserveBlock != 0 && c.Advanced.InvocationBound != 0 &&
		c.Advanced.ReserveBlock > c.Advanced.InvocationBound {
		bad("advanced.reserve_block (%d) must not exceed advanced.invocation_bound (%d)",
			c.Advanced.ReserveBlock, c.Advanced.InvocationBound)
	}
	errs = append(errs, c.validateObservability()...)
	return errs
}

func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %v", addr, err)
	}
	if host != "" && host != "localhost" && net.ParseIP(host) == nil {
		// A host name other than localhost would be resolved at bind
		// time; accept only names that look like one.
		if strings.ContainsAny(host, " /\\") {
			return fmt.Errorf("%q has an invalid host", addr)
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q has an invalid port", addr)
	}
	return nil
}

// resolveModule fills HSM.Module from the candidates when it is empty, and
// checks that the module file exists.
func (c *Config) resolveModule(candidates []string, stat func(string) (fs.FileInfo, error)) error {
	if c.HSM.Module != "" {
		if _, err := stat(c.HSM.Module); err != nil {
			return fmt.Errorf("hsm.module: %v", err)
		}
		return nil
	}
	for _, p := range candidates {
		if _, err := stat(p); err == nil {
			c.HSM.Module = p
			return nil
		}
	}
	return fmt.Errorf("hsm.module: not set and no PKCS#11 module found at %s (install softhsm2, or set hsm.module / KMSD_HSM_MODULE)",
		strings.Join(candidates, ", "))
}

// resolvePIN reads the PIN from the environment variable named by
// HSM.PINEnv, else from HSM.PINFile.
func (c *Config) resolvePIN(getenv func(string) string) error {
	if c.HSM.PINEnv == "" {
		return nil // reported by validate
	}
	if v := getenv(c.HSM.PINEnv); v != "" {
		p := secret(v)
		c.HSM.pin = &p
		return nil
	}
	if c.HSM.PINFile == "" {
		return fmt.Errorf("hsm: no PIN: set %s or hsm.pin_file", c.HSM.PINEnv)
	}
	pin, err := readPINFile(c.HSM.PINFile)
	if err != nil {
		return fmt.Errorf("hsm.pin_file: %w (or set %s)", err, c.HSM.PINEnv)
	}
	c.HSM.pin = &pin
	return nil
}

// readPINFile reads a PIN file: it must be a regular file not accessible by
// group or others, and non-empty; one trailing newline (LF or CRLF) is
// dropped.
func readPINFile(path string) (secret, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("%s is accessible by group or others (mode %04o); run chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", err
	}
	s := string(data)
	s = strings.TrimSuffix(s, "\n")
	s = strings.TrimSuffix(s, "\r")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	if strings.ContainsAny(s, "\r\n") {
		return "", fmt.Errorf("%s holds more than one line", path)
	}
	return secret(s), nil
}

// PIN returns the HSM user PIN resolved by loadConfig.
func (c *Config) PIN() string {
	if c.HSM.pin == nil {
		return ""
	}
	return string(*c.HSM.pin)
}

// LogValue lists the effective configuration for the start-up log line. The
// PIN is never part of it; only where it came from.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("listen", c.Listen),
		slog.String("region", c.Region),
		slog.String("database", c.Database),
		slog.String("credentials_file", c.CredentialsFile),
		slog.Duration("deletion_check_interval", time.Duration(c.DeletionCheckInterval)),
		slog.Duration("rotation_check_interval", time.Duration(c.RotationCheckInterval)),
		slog.String("hsm_module", c.HSM.Module),
		slog.String("hsm_token_label", c.HSM.TokenLabel),
		slog.Int("hsm_pool_size", c.HSM.PoolSize),
		slog.String("log_level", c.Log.Level),
		slog.String("log_format", c.Log.Format),
	)
}

// secret is a string that never prints itself.
type secret string

func (secret) String() string               { return "REDACTED" }
func (secret) GoString() string             { return "REDACTED" }
func (secret) LogValue() slog.Value         { return slog.StringValue("REDACTED") }
func (secret) MarshalText() ([]byte, error) { return []byte("REDACTED"), nil }

// Duration is a time.Duration written in YAML as a Go duration string such
// as "30s" or "1m".
type Duration time.Duration

// UnmarshalYAML accepts only duration strings: a bare number would be
// ambiguous.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	// A *yaml.TypeError lets the decoder carry on and report every
	// problem together.
	if n.Kind != yaml.ScalarNode || n.Tag == "!!int" || n.Tag == "!!float" {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf(
			"line %d: want a duration such as \"30s\" or \"1m\", got %q", n.Line, n.Value)}}
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

func (d Duration) String() string { return time.Duration(d).String() }

// softHSMConf makes SoftHSM2 use the repository's softhsm.conf when nothing
// else is configured: if SOFTHSM2_CONF is unset and ./softhsm.conf exists, it
// sets SOFTHSM2_CONF to that file's absolute path. It returns the value in
// effect ("" when none) and whether it set it.
func softHSMConf(getenv func(string) string, setenv func(string, string) error) (string, bool, error) {
	if v := getenv("SOFTHSM2_CONF"); v != "" {
		return v, false, nil
	}
	abs, err := filepath.Abs("softhsm.conf")
	if err != nil {
		return "", false, err
	}
	if _, err := os.Stat(abs); err != nil {
		return "", false, nil
	}
	if err := setenv("SOFTHSM2_CONF", abs); err != nil {
		return "", false, err
	}
	return abs, true, nil
}

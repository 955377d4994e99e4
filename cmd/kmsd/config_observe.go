package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"hsmkms/kms/audit"
	"hsmkms/kms/quota"
)

// AuditConfig configures the audit trail.
type AuditConfig struct {
	// Mode: durable (default; a response leaves only once its event is on
	// disk), async (events are queued; a crash loses the queue), off.
	Mode string `yaml:"mode"`
	// Database is the audit trail's own SQLite file; default audit.db next
	// to the metadata database. Its own file gives it its own writer, so
	// audit commits never wait for key-metadata writes or the reverse.
	Database string `yaml:"database"`
	// DigestInterval is how often a signed digest of the new events is
	// written (default 5m; also at shutdown).
	DigestInterval Duration `yaml:"digest_interval"`
	// Retention prunes events older than this, at digest boundaries; 0
	// (default) keeps everything.
	Retention Duration `yaml:"retention"`
	// Reanchor lets kmsd start on an audit file that no longer holds the
	// last digest it signed (the metadata database remembers it): only
	// after an operator restored or replaced the file knowingly. Without
	// it kmsd refuses to start on such a file, which may have been
	// rewritten.
	Reanchor bool `yaml:"reanchor"`
}

// QuotaConfig configures the request quotas (kms/quota).
type QuotaConfig struct {
	// Disabled switches every quota off.
	Disabled bool `yaml:"disabled"`
	// Burst is how many seconds' worth of requests a full bucket holds
	// (default 1).
	Burst float64 `yaml:"burst"`
	// Rates overrides AWS's default requests per second for every account,
	// by quota name (cryptographic_symmetric, cryptographic_rsa,
	// cryptographic_ecc, cryptographic_hmac, GenerateRandom,
	// GenerateDataKeyPair/<spec>, or an operation name such as CreateKey).
	Rates map[string]float64 `yaml:"rates"`
	// Accounts overrides rates for single accounts (12-digit id -> name ->
	// rate).
	Accounts map[string]map[string]float64 `yaml:"accounts"`

	envValue string // $KMSD_QUOTAS, checked by validate
}

// MetricsConfig places /metrics, /healthz and /readyz.
type MetricsConfig struct {
	// Listen, when set (host:port), serves /metrics, /healthz and /readyz
	// on their own listener and not on the API's. Empty: all on the API
	// listener.
	Listen string `yaml:"listen"`
}

func init() {
	envOverrides = append(envOverrides,
		struct {
			name string
			set  func(*Config, string)
		}{"KMSD_AUDIT_MODE", func(c *Config, v string) { c.Audit.Mode = v }},
		struct {
			name string
			set  func(*Config, string)
		}{"KMSD_AUDIT_DATABASE", func(c *Config, v string) { c.Audit.Database = v }},
		struct {
			name string
			set  func(*Config, string)
		}{"KMSD_METRICS_LISTEN", func(c *Config, v string) { c.Metrics.Listen = v }},
		struct {
			name string
			set  func(*Config, string)
		}{"KMSD_QUOTAS", func(c *Config, v string) {
			// "off" switches the quotas off (as quotas.disabled: true);
			// anything else is reported by validate.
			q := QuotaConfig{}
			if c.Quotas != nil {
				q = *c.Quotas
			}
			q.Disabled = v == "off"
			q.envValue = v
			c.Quotas = &q
		}},
	)
}

// defaultDigestInterval is how often digests are signed unless configured.
const defaultDigestInterval = 5 * time.Minute

// validateObservability reports the problems of the audit, quota and
// metrics sections. Their defaults are applied where they are read (the
// accessors below), so the zero sections mean "defaults".
func (c *Config) validateObservability() []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch audit.Mode(c.Audit.Mode) {
	case "", audit.Durable, audit.Async, audit.Off:
	default:
		bad("audit.mode: %q is not one of durable, async, off", c.Audit.Mode)
	}
	if strings.TrimSpace(c.Database) != "" && filepath.Clean(c.auditDatabase()) == filepath.Clean(c.Database) {
		bad("audit.database: must not be the metadata database")
	}
	if c.Audit.DigestInterval <= 0 {
		bad("audit.digest_interval: must be positive, got %s", c.Audit.DigestInterval)
	}
	if c.Audit.Retention < 0 {
		bad("audit.retention: must be 0 (keep everything) or positive, got %s", c.Audit.Retention)
	}
	if c.Quotas != nil && c.Quotas.envValue != "" && c.Quotas.envValue != "off" {
		bad("KMSD_QUOTAS: %q is not \"off\"", c.Quotas.envValue)
	}
	if _, err := quota.New(c.quotaConfig(), nil); err != nil {
		bad("%v", err)
	}
	if c.Metrics.Listen != "" {
		if err := checkListen(c.Metrics.Listen); err != nil {
			bad("metrics.listen: %v", err)
		}
	}
	return errs
}

// auditMode is audit.mode with its default.
func (c *Config) auditMode() audit.Mode {
	if c.Audit.Mode == "" {
		return audit.Durable
	}
	return audit.Mode(c.Audit.Mode)
}

// auditDatabase is audit.database with its default: audit.db next to the
// metadata database.
func (c *Config) auditDatabase() string {
	if strings.TrimSpace(c.Audit.Database) != "" {
		return c.Audit.Database
	}
	return filepath.Join(filepath.Dir(c.Database), "audit.db")
}

func (c *Config) digestInterval() time.Duration {
	if c.Audit.DigestInterval == 0 {
		return defaultDigestInterval
	}
	return time.Duration(c.Audit.DigestInterval)
}

// quotaConfig is the quotas section for kms/quota.
func (c *Config) quotaConfig() quota.Config {
	if c.Quotas == nil {
		return quota.Config{}
	}
	return quota.Config{Rates: c.Quotas.Rates, Accounts: c.Quotas.Accounts, Burst: c.Quotas.Burst}
}

func (c *Config) quotasDisabled() bool { return c.Quotas != nil && c.Quotas.Disabled }

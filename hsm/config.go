package hsm

import (
	"errors"
	"log/slog"
	"runtime"
	"time"
)

// Config selects a PKCS#11 module and token and sizes the session pool.
type Config struct {
	// ModulePath is the PKCS#11 shared library, e.g.
	// /usr/lib/softhsm/libsofthsm2.so.
	ModulePath string
	// TokenLabel selects the token. Slot ids are not stable (SoftHSM assigns
	// a new one whenever a token is initialized or the module re-initialized),
	// so the label is the only selector.
	TokenLabel string
	// PIN is the user PIN. It is never logged: Config redacts it in String
	// and LogValue.
	PIN string
	// PoolSize is the number of sessions borrowed by requests (the anchor
	// session is extra). Default 2*runtime.NumCPU(), at least 2.
	PoolSize int
	// PoolWait bounds how long a request waits for a free session before it
	// fails with ErrUnavailable. Default 5s.
	PoolWait time.Duration
	// Logger receives operational events. Default slog.Default().
	Logger *slog.Logger
}

// DefaultPoolWait is the PoolWait used when Config leaves it zero.
const DefaultPoolWait = 5 * time.Second

// withDefaults returns a copy of c with zero fields filled in.
func (c Config) withDefaults() Config {
	if c.PoolSize <= 0 {
		c.PoolSize = max(2*runtime.NumCPU(), 2)
	}
	if c.PoolWait <= 0 {
		c.PoolWait = DefaultPoolWait
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.ModulePath == "" {
		errs = append(errs, errors.New("hsm: config: ModulePath is empty"))
	}
	if c.TokenLabel == "" {
		errs = append(errs, errors.New("hsm: config: TokenLabel is empty"))
	}
	if c.PIN == "" {
		errs = append(errs, errors.New("hsm: config: PIN is empty"))
	}
	return errors.Join(errs...)
}

// LogValue implements slog.LogValuer so that logging a Config never prints
// the PIN.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("module", c.ModulePath),
		slog.String("token", c.TokenLabel),
		slog.String("pin", redacted(c.PIN)),
		slog.Int("pool_size", c.PoolSize),
		slog.Duration("pool_wait", c.PoolWait),
	)
}

// String implements fmt.Stringer with the PIN redacted, so %v and %+v of a
// Config are safe too.
func (c Config) String() string {
	return "hsm.Config{ModulePath:" + c.ModulePath + " TokenLabel:" + c.TokenLabel +
		" PIN:" + redacted(c.PIN) + " PoolSize:" + itoa(c.PoolSize) + " PoolWait:" + c.PoolWait.String() + "}"
}

// GoString makes %#v safe as well.
func (c Config) GoString() string { return c.String() }

func redacted(secret string) string {
	if secret == "" {
		return "(empty)"
	}
	return "[REDACTED]"
}

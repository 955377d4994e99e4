package kms

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"hsmkms/hsm"
)

// Config configures a Service.
type Config struct {
	// Region is the AWS region the service answers for (key ARNs name it).
	// Default us-east-1.
	Region string
	Device hsm.Device
	Store  Store
	Logger *slog.Logger
	// Now returns the current time; tests replace it.
	Now func() time.Time
	// InvocationBound is the most AES-GCM encryptions one key version may
	// ever make with random IVs. Default 2^32 (NIST SP 800-38D, 8.3). Tests
	// lower it to watch the automatic move to a new key version.
	InvocationBound uint64
	// ReserveBlock is how many invocations are reserved from the store at a
	// time. Default 2^16.
	ReserveBlock uint64
}

// Defaults for Config.
const (
	DefaultRegion          = "us-east-1"
	DefaultInvocationBound = uint64(1) << 32
	DefaultReserveBlock    = uint64(1) << 16
)

// Service implements the AWS KMS operations, one method per operation. It
// is safe for concurrent use.
type Service struct {
	cfg    Config
	device hsm.Device
	store  Store
	log    *slog.Logger
	now    func() time.Time

	// versions caches Active key versions by versionKey. A version's backing
	// id never changes once it is Active, and a destroyed version belongs to
	// a deleted key that never gets this far, so entries need no expiry.
	versions sync.Map
	nonce    nonceGuard
	// keyLocks serialises version changes per key (map key id -> *sync.Mutex).
	keyLocks sync.Map
	// authz caches what authorization reads (authz.go).
	authz authzCache
	// ids caches verified credentials (identity.go).
	ids identityState
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Device == nil || cfg.Store == nil {
		return nil, errors.New("kms: Config needs a Device and a Store")
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.InvocationBound == 0 {
		cfg.InvocationBound = DefaultInvocationBound
	}
	if cfg.InvocationBound > DefaultInvocationBound {
		// A larger bound would switch the nonce-safety guarantee off.
		return nil, fmt.Errorf("kms: InvocationBound %d is above the AES-GCM random-IV limit of 2^32", cfg.InvocationBound)
	}
	if cfg.ReserveBlock == 0 {
		cfg.ReserveBlock = DefaultReserveBlock
	}
	if cfg.ReserveBlock > cfg.InvocationBound {
		cfg.ReserveBlock = cfg.InvocationBound
	}
	return &Service{
		cfg:    cfg,
		device: cfg.Device,
		store:  cfg.Store,
		log:    cfg.Logger,
		now:    cfg.Now,
		nonce:  nonceGuard{bound: cfg.InvocationBound, block: cfg.ReserveBlock},
	}, nil
}

// Region returns the region the service answers for.
func (s *Service) Region() string { return s.cfg.Region }

// LookupAccessKey returns the active access key with the given id, for SigV4
// verification: its plain-text secret (opened in the HSM, then cached
// briefly; see identity.go), its Principal and, for temporary credentials,
// the session token hash and expiry. Unknown or inactive ids give
// ErrStoreNotFound.
func (s *Service) LookupAccessKey(ctx context.Context, id string) (AccessKey, error) {
	return s.lookupCredential(ctx, id)
}

// Health reports whether the service can serve requests: the HSM answers
// and the database answers.
func (s *Service) Health(ctx context.Context) error {
	if err := s.device.Health(ctx); err != nil {
		return err
	}
	if _, err := s.store.GetSetting(ctx, settingAccountID); err != nil && !errors.Is(err, ErrStoreNotFound) {
		return err
	}
	return nil
}

// caller returns the authenticated principal of the request. Every request
// reaching the service has one; its absence is a wiring bug.
func caller(ctx context.Context) (Principal, error) {
	p, ok := PrincipalFrom(ctx)
	if !ok || p.AccountID == "" {
		return Principal{}, Internal(errors.New("kms: request without an authenticated principal"))
	}
	return p, nil
}

func versionKey(keyID string, version int) string {
	return keyID + "/" + strconv.Itoa(version)
}

// activeVersion returns an Active version of a key, from the cache when it
// can. A version that is not Active cannot be used: the caller answers as if
// the key were unavailable.
func (s *Service) activeVersion(ctx context.Context, keyID string, version int) (KeyVersion, error) {
	vk := versionKey(keyID, version)
	if v, ok := s.versions.Load(vk); ok {
		return v.(KeyVersion), nil
	}
	v, err := s.store.GetVersion(ctx, keyID, version)
	if err != nil {
		return KeyVersion{}, err
	}
	if v.State != VersionActive {
		return KeyVersion{}, errVersionNotActive
	}
	s.versions.Store(vk, v)
	return v, nil
}

var errVersionNotActive = errors.New("kms: key version is not active")

// keyMaterialID is the KeyMaterialId AWS reports: 64 lower-case hex
// characters naming one version of a key's material. It is derived from the
// backing id, which is not secret.
func keyMaterialID(backingID []byte) string {
	sum := sha256.Sum256(backingID)
	return hex.EncodeToString(sum[:])
}

// lockKey serialises changes of one key's versions within this process.
// Every creator of a version (CreateKey, rotations, imports) holds it from
// its intent to its commit or abandonment.
func (s *Service) lockKey(keyID string) func() {
	m, _ := s.keyLocks.LoadOrStore(keyID, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// tryLockKey is lockKey without waiting: ok is false while another
// goroutine of this process holds the key's lock. The background passes use
// it so that one creation hung in the HSM does not stop them for every
// other key; the holder settles its own work.
func (s *Service) tryLockKey(keyID string) (unlock func(), ok bool) {
	m, _ := s.keyLocks.LoadOrStore(keyID, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	if !mu.TryLock() {
		return nil, false
	}
	return mu.Unlock, true
}

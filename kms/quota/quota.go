// Package quota implements AWS KMS's request quotas: token buckets per
// account and per quota class (the shared symmetric cryptographic bucket,
// RSA, ECC and HMAC buckets, GenerateRandom, GenerateDataKeyPair per key
// pair spec, and one bucket per control-plane operation), with AWS's
// default rates, all overridable per account.
//
// Quotas are per process: several kmsd nodes each enforce the full rate.
package quota

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Class names a quota. The cryptographic classes are shared by several
// operations; every other class is one operation's name.
type Class string

// The shared cryptographic classes.
const (
	Symmetric      Class = "cryptographic_symmetric"
	RSA            Class = "cryptographic_rsa"
	ECC            Class = "cryptographic_ecc"
	HMAC           Class = "cryptographic_hmac"
	GenerateRandom Class = "GenerateRandom"
)

// DataKeyPair is the class of GenerateDataKeyPair and
// GenerateDataKeyPairWithoutPlaintext for one key pair spec.
func DataKeyPair(spec string) Class { return Class("GenerateDataKeyPair/" + spec) }

// DefaultRates are AWS's default request quotas in requests per second
// (reference 6.1). The symmetric rate is AWS's default for most regions
// (AWS grants more in its largest regions); RSA and ECC are the current
// shared rates. AWS counts HMAC operations and GenerateRandom in the
// symmetric quota; here they have their own buckets with the same rate, so
// one kind of traffic cannot starve the other.
var DefaultRates = map[Class]float64{
	Symmetric:      10000,
	RSA:            1000,
	ECC:            1000,
	HMAC:           10000,
	GenerateRandom: 10000,

	DataKeyPair("ECC_NIST_P256"):   25,
	DataKeyPair("ECC_NIST_P384"):   10,
	DataKeyPair("ECC_NIST_P521"):   5,
	DataKeyPair("ECC_SECG_P256K1"): 25,
	DataKeyPair("RSA_2048"):        1,
	DataKeyPair("RSA_3072"):        0.5,
	DataKeyPair("RSA_4096"):        0.1,
	DataKeyPair("SM2"):             25,
	// Not in the reference's table; an elliptic curve as cheap as P-256.
	DataKeyPair("ECC_NIST_EDWARDS25519"): 25,

	"CancelKeyDeletion":         5,
	"CreateAlias":               5,
	"CreateGrant":               50,
	"CreateKey":                 5,
	"DeleteAlias":               15,
	"DeleteImportedKeyMaterial": 5,
	"DescribeKey":               2000,
	"DisableKey":                5,
	"DisableKeyRotation":        5,
	"EnableKey":                 5,
	"EnableKeyRotation":         15,
	"GetKeyPolicy":              1000,
	"GetKeyRotationStatus":      1000,
	"GetParametersForImport":    0.25,
	"GetPublicKey":              2000,
	"ImportKeyMaterial":         5,
	"ListAliases":               500,
	"ListGrants":                100,
	"ListKeyPolicies":           100,
	"ListKeys":                  500,
	"ListResourceTags":          2000,
	"ListRetirableGrants":       100,
	"PutKeyPolicy":              15,
	"RetireGrant":               30,
	"RevokeGrant":               30,
	"ScheduleKeyDeletion":       15,
	"TagResource":               10,
	"UntagResource":             5,
	"UpdateAlias":               5,
	"UpdateKeyDescription":      5,
}

// keyDependent are the operations whose class is the key's kind.
var keyDependent = []string{"Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
	"Sign", "Verify", "GenerateMac", "VerifyMac"}

// OperationClass returns the class an operation is charged to before the
// key is known, and whether the operation is instead charged per key kind
// (KeyClass) once its key is resolved. ok is false for operations without a
// quota (GenerateDataKeyPair is charged by its key pair spec).
func OperationClass(operation string) (c Class, byKey, ok bool) {
	if slices.Contains(keyDependent, operation) {
		return "", true, true
	}
	c = Class(operation)
	_, ok = DefaultRates[c]
	return c, false, ok
}

// KeyClass is the cryptographic class of a key spec.
func KeyClass(keySpec string) Class {
	switch {
	case strings.HasPrefix(keySpec, "RSA_"):
		return RSA
	case strings.HasPrefix(keySpec, "ECC_"), keySpec == "SM2":
		return ECC
	case strings.HasPrefix(keySpec, "HMAC_"):
		return HMAC
	default:
		return Symmetric
	}
}

// Config overrides the default rates: Rates for every account, Accounts
// per account (on top of Rates). Keys are class names; values are requests
// per second (fractions allowed; 0 refuses every request of the class).
type Config struct {
	Rates    map[string]float64
	Accounts map[string]map[string]float64
	// Burst is how many seconds' worth of requests a bucket holds
	// (default 1: a full bucket allows the per-second rate at once).
	Burst float64
}

// Limiter enforces the quotas. It is safe for concurrent use.
type Limiter struct {
	rates    map[Class]float64
	accounts map[string]map[Class]float64
	burst    float64
	now      func() time.Time
	buckets  sync.Map // bucketKey -> *bucket
}

type bucketKey struct {
	account string
	class   Class
}

type bucket struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// New validates cfg and returns a Limiter.
func New(cfg Config, now func() time.Time) (*Limiter, error) {
	if now == nil {
		now = time.Now
	}
	l := &Limiter{rates: map[Class]float64{}, accounts: map[string]map[Class]float64{}, burst: cfg.Burst, now: now}
	if l.burst == 0 {
		l.burst = 1
	}
	var errs []string
	if l.burst < 0 {
		errs = append(errs, fmt.Sprintf("burst: must be positive, got %g", cfg.Burst))
	}
	for c, r := range DefaultRates {
		l.rates[c] = r
	}
	check := func(where, name string, r float64) bool {
		if _, ok := DefaultRates[Class(name)]; !ok {
			errs = append(errs, fmt.Sprintf("%s: unknown quota %q", where, name))
			return false
		}
		if r < 0 {
			errs = append(errs, fmt.Sprintf("%s.%s: rate must not be negative, got %g", where, name, r))
			return false
		}
		return true
	}
	for name, r := range cfg.Rates {
		if check("rates", name, r) {
			l.rates[Class(name)] = r
		}
	}
	for acct, m := range cfg.Accounts {
		if len(acct) != 12 || strings.Trim(acct, "0123456789") != "" {
			errs = append(errs, fmt.Sprintf("accounts: %q is not a 12-digit account id", acct))
			continue
		}
		am := map[Class]float64{}
		for name, r := range m {
			if check("accounts."+acct, name, r) {
				am[Class(name)] = r
			}
		}
		l.accounts[acct] = am
	}
	if len(errs) > 0 {
		slices.Sort(errs)
		return nil, fmt.Errorf("quotas: %s", strings.Join(errs, "; "))
	}
	return l, nil
}

// Rate returns the requests per second allowed for account and class.
func (l *Limiter) Rate(account string, c Class) float64 {
	if r, ok := l.accounts[account][c]; ok {
		return r
	}
	return l.rates[c]
}

// Allow takes one token from the account's bucket of class c and reports
// whether there was one. A class without a rate is not limited.
func (l *Limiter) Allow(account string, c Class) bool {
	if l == nil {
		return true
	}
	rate, ok := l.accounts[account][c]
	if !ok {
		rate, ok = l.rates[c]
		if !ok {
			return true
		}
	}
	capacity := max(1, rate*l.burst)
	k := bucketKey{account, c}
	v, ok := l.buckets.Load(k)
	if !ok {
		v, _ = l.buckets.LoadOrStore(k, &bucket{tokens: capacity, last: l.now()})
	}
	b := v.(*bucket)
	b.mu.Lock()
	defer b.mu.Unlock()
	now := l.now()
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(capacity, b.tokens+el*rate)
		b.last = now
	}
	if b.tokens >= 1 && rate > 0 {
		b.tokens--
		return true
	}
	return false
}

package kms

// What the audit trail, the request quotas and the metrics need from the
// service: a per-request hook that sees every key a request resolves (for
// the audit event's resources and the key-spec-dependent quota classes),
// the authorization of the audit admin API, the HSM-held key that signs
// audit digests, and key counts.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"

	"hsmkms/hsm"
)

// KeyUse describes a key a request resolved.
type KeyUse struct {
	ARN       string
	AccountID string
	KeySpec   string
	KeyUsage  string
	// Authorized: the hook is called again once the caller is authorized
	// to use the key (quotas charge another account's key only then).
	Authorized bool
}

// KeyHook is called for every key a request resolves, before the request
// is authorized on it. An error ends the request with that error (a quota
// answers ThrottlingException this way).
type KeyHook func(ctx context.Context, k KeyUse) error

type keyHookKey struct{}

// WithKeyHook returns ctx carrying a KeyHook for the request.
func WithKeyHook(ctx context.Context, h KeyHook) context.Context {
	return context.WithValue(ctx, keyHookKey{}, h)
}

// noteKey runs the request's KeyHook, if any, for a resolved key, and
// again (authorized) once authorizeKey allowed the caller to use it.
func (s *Service) noteKey(ctx context.Context, k KeyRecord, arn string, authorized bool) error {
	h, _ := ctx.Value(keyHookKey{}).(KeyHook)
	if h == nil {
		return nil
	}
	return h(ctx, KeyUse{ARN: arn, AccountID: k.AccountID, KeySpec: k.KeySpec, KeyUsage: k.KeyUsage, Authorized: authorized})
}

// AccountHook is called with the account an admin or STS request acts in
// when that is not the caller's own: the bootstrap admin managing another
// account, or an AssumeRole of another account's role. The audit trail
// files the event there, as CloudTrail delivers an IAM event to the
// account that owns the resource, so that account's auditors see what was
// done to it.
type AccountHook func(account string)

type accountHookKey struct{}

// WithAccountHook returns ctx carrying an AccountHook for the request.
func WithAccountHook(ctx context.Context, h AccountHook) context.Context {
	return context.WithValue(ctx, accountHookKey{}, h)
}

// noteAccount runs the request's AccountHook, if any.
func noteAccount(ctx context.Context, account string) {
	if h, _ := ctx.Value(accountHookKey{}).(AccountHook); h != nil && account != "" {
		h(account)
	}
}

// AuthorizeAudit decides whether the caller may run audit operation op
// (kmsadmin:<op>), exactly as the admin API decides (authorizeAdmin): the
// bootstrap admin everywhere, others only as their identity policies allow
// and only for their own account. It returns the account the caller's view
// is limited to ("" for the bootstrap admin, who sees every account).
// accountWide false means the operation spans accounts (verification of the
// whole chain): only the bootstrap admin may run it.
func (s *Service) AuthorizeAudit(ctx context.Context, op string, accountWide bool) (string, error) {
	p, err := caller(ctx)
	if err != nil {
		return "", err
	}
	admin, err := s.IsBootstrapAdmin(ctx, p)
	if err != nil {
		return "", Internal(err)
	}
	if admin {
		return "", nil
	}
	if !accountWide {
		return "", s.authorizeAdmin(ctx, op, "", "*")
	}
	if err := s.authorizeAdmin(ctx, op, p.AccountID, "arn:aws:iam::"+p.AccountID+":root"); err != nil {
		return "", err
	}
	return p.AccountID, nil
}

// auditSigningPurpose names the internal key that signs audit digests.
const auditSigningPurpose = "audit-digest-signing"

// AuditSigner signs audit digests with an ECC_NIST_P256 key pair generated
// inside the HSM: an internal key of the service (internalAccount), so the
// reconciler and the HSM-and-database rule cover it like any key, and no
// caller can reach it. Verification needs only its public key.
type AuditSigner struct {
	s       *Service
	r       resolved
	backing []byte
	public  *ecdsa.PublicKey
	der     []byte
}

// AuditSigner returns the digest signer, creating its key on first use.
func (s *Service) AuditSigner(ctx context.Context) (*AuditSigner, error) {
	r, err := s.internalSigningKey(ctx, auditSigningPurpose)
	if err != nil {
		return nil, err
	}
	backing, err := s.currentBacking(ctx, r)
	if err != nil {
		return nil, err
	}
	der, err := s.device.PublicKey(ctx, backing)
	if err != nil {
		return nil, fmt.Errorf("audit signing key: %w", err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("audit signing key: %w", err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("audit signing key is not an EC key")
	}
	return &AuditSigner{s: s, r: r, backing: backing, public: ec, der: der}, nil
}

// KeyID is the signing key's ARN, which digests name.
func (a *AuditSigner) KeyID() string { return a.r.arn }

// PublicKeyDER is the signing key's DER SubjectPublicKeyInfo.
func (a *AuditSigner) PublicKeyDER() []byte { return a.der }

// Sign signs a SHA-256 hash inside the HSM (ECDSA P-256, DER signature).
func (a *AuditSigner) Sign(ctx context.Context, hash []byte) ([]byte, error) {
	return a.s.device.Sign(ctx, a.backing, hsm.SignParams{Scheme: hsm.SchemeECDSA, Hash: crypto.SHA256, Curve: hsm.CurveP256}, hash)
}

// Verify checks a signature made by keyID.
func (a *AuditSigner) Verify(keyID string, hash, sig []byte) error {
	if keyID != a.r.arn {
		return fmt.Errorf("signed by %s, not by the audit signing key %s", keyID, a.r.arn)
	}
	if !ecdsa.VerifyASN1(a.public, hash, sig) {
		return errors.New("ECDSA signature does not verify")
	}
	return nil
}

// internalSigningKey is internalKey for an ECC_NIST_P256 signing key.
func (s *Service) internalSigningKey(ctx context.Context, purpose string) (resolved, error) {
	return s.internalKeyOf(ctx, purpose, usageSign, "ECC_NIST_P256")
}

// KeyStateCounter is a Store that can count keys by state (metrics).
type KeyStateCounter interface {
	CountKeysByState(ctx context.Context) (map[string]int, error)
}

// KeyCountsByState counts customer keys by state, if the store can.
func (s *Service) KeyCountsByState(ctx context.Context) (map[string]int, error) {
	c, ok := s.store.(KeyStateCounter)
	if !ok {
		return nil, errors.New("kms: the store cannot count keys")
	}
	return c.CountKeysByState(ctx)
}

// ProbeWritable checks that the metadata database takes writes (readiness).
func (s *Service) ProbeWritable(ctx context.Context) error {
	return s.store.PutSetting(ctx, "readyz_probe", s.now().UTC().Format("2006-01-02T15:04:05Z"))
}

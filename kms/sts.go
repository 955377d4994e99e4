package kms

// AssumeRole: temporary credentials for a role, as AWS STS issues them.
//
// The caller must be allowed by the role's trust policy, evaluated like a
// key policy for the action sts:AssumeRole on the role ARN
// (policy.Decide): a trust policy naming the caller (or its role) allows by
// itself; one naming the caller's account delegates to the caller's
// identity policies, which must then allow sts:AssumeRole too; callers from
// another account always need both; an explicit Deny anywhere wins. An
// absent role is refused exactly like a role that does not trust the
// caller, so role names cannot be probed.
//
// The credentials are an access key id "ASIA...", a secret and a session
// token. The session is stored with its secret sealed under the HSM
// (secrets.go) and only the SHA-256 of its token; requests signed with it
// must carry the token (X-Amz-Security-Token) and are refused with
// ExpiredTokenException after Expiration.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"

	"hsmkms/kms/policy"
)

const (
	minSessionSeconds     = 900
	defaultSessionSeconds = 3600
	// A session started from another session (role chaining) lasts at most
	// an hour, as in AWS.
	maxChainedSessionSeconds = 3600
	// Expired sessions are kept this long so that late requests get
	// ExpiredTokenException rather than an unknown-key answer.
	expiredSessionRetention = time.Hour
)

// AssumeRole issues temporary credentials for a role.
func (s *Service) AssumeRole(ctx context.Context, in *AssumeRoleInput) (*AssumeRoleOutput, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	account, kind, _, ok := parseIAMARN(in.RoleArn)
	if len(in.RoleArn) < 20 || len(in.RoleArn) > 2048 || !ok || kind != KindRole {
		return nil, validationf("Value '%s' at 'roleArn' failed to satisfy constraint: Member must be a role ARN (arn:aws:iam::ACCOUNT:role/NAME)", truncateForMessage(in.RoleArn))
	}
	if !sessionNamePattern.MatchString(in.RoleSessionName) {
		return nil, validationf("Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length between 2 and 64", truncateForMessage(in.RoleSessionName))
	}
	duration := in.DurationSeconds
	if duration == 0 {
		duration = defaultSessionSeconds
	}
	if duration < minSessionSeconds {
		return nil, validationf("Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to %d", duration, minSessionSeconds)
	}
	if duration > maxMaxSessionSeconds {
		return nil, validationf("Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to %d", duration, maxMaxSessionSeconds)
	}

	role, err := s.store.GetPrincipal(ctx, in.RoleArn)
	if err != nil || role.Kind != KindRole {
		req := &policy.Request{Principal: enginePrincipal(p), Action: "sts:AssumeRole", Resource: in.RoleArn}
		s.log.InfoContext(ctx, "assume role refused: no such role", "principal", p.ARN, "role", in.RoleArn, "err", err)
		return nil, Errorf(CodeAccessDenied, "%s", policy.AccessDeniedMessage(req.Principal.ARN, req.Action, req.Resource, policy.DeniedNoResourcePolicy))
	}
	if err := s.authorizeAssumeRole(ctx, p, role); err != nil {
		return nil, err
	}
	// Allowed: the event goes to the role's account, whose auditors see
	// who holds its role. A refused attempt stays with the caller's
	// account: filing it by the role's existence would tell the caller
	// which roles exist, and let anyone write into another account's
	// trail.
	noteAccount(ctx, account)
	if duration > role.MaxSessionSeconds {
		return nil, Errorf(CodeValidation, "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
	}
	if p.Type == PrincipalAssumedRole && duration > maxChainedSessionSeconds {
		return nil, Errorf(CodeValidation, "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
	}

	id, err := newAccessKeyID(temporaryKeyPrefix)
	if err != nil {
		return nil, Internal(err)
	}
	secretBytes := make([]byte, 30)
	tokenBytes := make([]byte, 64)
	if _, err := rand.Read(secretBytes); err != nil {
		return nil, Internal(err)
	}
	if _, err := rand.Read(tokenBytes); err != nil {
		return nil, Internal(err)
	}
	secret := base64.StdEncoding.EncodeToString(secretBytes)
	token := base64.StdEncoding.EncodeToString(tokenBytes)
	tokenHash := sha256.Sum256([]byte(token))
	sealed, err := s.sealSecret(ctx, id, secret)
	if err != nil {
		return nil, AsError(err)
	}
	now := s.now().UTC()
	// Whole seconds: the wire format has no fractions, and the client must
	// not believe in a second the server does not grant.
	expiration := now.Add(time.Duration(duration) * time.Second).Truncate(time.Second)
	if err := s.store.PutSession(ctx, SessionRecord{
		AccessKeyID: id, SealedSecret: sealed, TokenHash: tokenHash[:], AccountID: account,
		RoleARN: role.ARN, SessionName: in.RoleSessionName, SourceARN: p.ARN,
		Expiration: expiration, CreatedAt: now,
	}); err != nil {
		return nil, Internal(fmt.Errorf("store session: %w", err))
	}
	s.sweepSessions(ctx, now)
	s.log.InfoContext(ctx, "role assumed", "principal", p.ARN, "role", role.ARN,
		"session", in.RoleSessionName, "access_key_id", id, "expiration", expiration)
	return &AssumeRoleOutput{
		AccessKeyId:     id,
		SecretAccessKey: secret,
		SessionToken:    token,
		Expiration:      Timestamp(expiration),
		AssumedRoleArn:  assumedRoleARN(role.AccountID, role.Name, in.RoleSessionName),
		AssumedRoleId:   role.UniqueID + ":" + in.RoleSessionName,
	}, nil
}

// authorizeAssumeRole evaluates the role's trust policy together with the
// caller's identity policies.
func (s *Service) authorizeAssumeRole(ctx context.Context, p Principal, role PrincipalRecord) error {
	trust, err := parseTrustPolicy(role.TrustPolicy, "trust policy of "+role.Name)
	if err != nil {
		// Validated at CreateRole; a document that no longer parses (a
		// stricter parser) trusts nobody.
		s.log.ErrorContext(ctx, "stored trust policy does not parse; it allows nobody", "role", role.ARN, "err", err)
		trust, _ = policy.Parse(`{"Version":"2012-10-17","Statement":[]}`)
	}
	ids, err := s.identityPolicies(ctx, p)
	if err != nil {
		return Internal(err)
	}
	req := &policy.Request{
		Principal: enginePrincipal(p),
		Action:    "sts:AssumeRole",
		Resource:  role.ARN,
		Context:   s.requestContext(ctx, p),
	}
	d := policy.Decide(policy.Input{Request: req, KeyAccountID: role.AccountID, KeyPolicy: trust, IdentityPolicies: ids})
	if d.Allowed {
		return nil
	}
	return s.denied(ctx, req, d)
}

// sweepSessions deletes long-expired sessions, at most once a minute.
func (s *Service) sweepSessions(ctx context.Context, now time.Time) {
	last := s.ids.lastSweep.Load()
	if now.Unix()-last < 60 || !s.ids.lastSweep.CompareAndSwap(last, now.Unix()) {
		return
	}
	if n, err := s.store.DeleteSessionsExpiredBefore(ctx, now.Add(-expiredSessionRetention)); err != nil {
		s.log.WarnContext(ctx, "sweeping expired sessions failed", "err", err)
	} else if n > 0 {
		s.log.DebugContext(ctx, "expired sessions swept", "count", n)
	}
}

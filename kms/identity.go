package kms

// Identities: accounts, IAM users and roles, access keys and the
// credentials cache SigV4 verification reads on every request.
//
// SigV4 needs the plain-text secret of the signing key, but the store only
// keeps secrets sealed under an internal HSM-resident key (secrets.go). So
// a verified credential is cached in memory, secret and principal
// included, for credentialTTL: requests by the same key then cost no
// database read and no HSM call. Admin changes made through this process
// clear the cache at once; changes made by another kmsd process on the
// same database (deactivating or deleting a key, deleting a user) take
// effect here within credentialTTL.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// credentialTTL bounds how long a cached credential outlives a change made
// by another process.
const credentialTTL = 15 * time.Second

// maxCachedCredentials bounds the cache; when full it is emptied, which
// costs one HSM decryption per active key to refill.
const maxCachedCredentials = 10000

// Access key id prefixes, as AWS uses them.
const (
	longTermKeyPrefix  = "AKIA"
	temporaryKeyPrefix = "ASIA"
)

// identityState is the Service's in-memory identity state.
type identityState struct {
	// mu is read-locked on every request's lookup, write-locked on a miss.
	mu    sync.RWMutex
	creds map[string]cachedCredential
	// gen counts invalidations; a lookup that started before one does not
	// store what it read, which may already be stale.
	gen uint64
	// adminARN is the bootstrap admin's ARN once known (it never changes).
	adminARN atomic.Pointer[string]
	// lastSweep is when expired sessions were last deleted (Unix seconds).
	lastSweep atomic.Int64
}

type cachedCredential struct {
	key   AccessKey
	until time.Time
}

// invalidateCredentials forgets every cached credential; admin operations
// call it after any change that can affect authentication or principals.
func (s *Service) invalidateCredentials() {
	s.ids.mu.Lock()
	defer s.ids.mu.Unlock()
	s.ids.gen++
	s.ids.creds = nil
}

// lookupCredential returns the active credential with the given access key
// id with its plain-text secret and its Principal filled in. Unknown,
// inactive and deleted ids give ErrStoreNotFound.
func (s *Service) lookupCredential(ctx context.Context, id string) (AccessKey, error) {
	now := s.now()
	s.ids.mu.RLock()
	c, ok := s.ids.creds[id]
	gen := s.ids.gen
	s.ids.mu.RUnlock()
	if ok && now.Before(c.until) {
		return c.key, nil
	}

	var (
		k   AccessKey
		err error
	)
	if strings.HasPrefix(id, temporaryKeyPrefix) {
		k, err = s.loadSession(ctx, id)
	} else {
		k, err = s.loadAccessKey(ctx, id)
	}
	if err != nil {
		return AccessKey{}, err
	}

	s.ids.mu.Lock()
	defer s.ids.mu.Unlock()
	if s.ids.gen == gen {
		if s.ids.creds == nil || len(s.ids.creds) >= maxCachedCredentials {
			s.ids.creds = make(map[string]cachedCredential)
		}
		s.ids.creds[id] = cachedCredential{key: k, until: now.Add(credentialTTL)}
	}
	return k, nil
}

// loadAccessKey reads a long-term access key, opens its secret and
// describes its owner.
func (s *Service) loadAccessKey(ctx context.Context, id string) (AccessKey, error) {
	k, err := s.store.GetAccessKey(ctx, id)
	if err != nil {
		return AccessKey{}, err
	}
	if !k.Active {
		return AccessKey{}, ErrStoreNotFound
	}
	// A row not sealed yet (written by an older kmsd while this one runs)
	// still carries its plain secret; Bootstrap seals it at the next start.
	if k.Secret == "" {
		secret, err := s.openSecret(ctx, k.ID, k.SealedSecret)
		if err != nil {
			return AccessKey{}, err
		}
		k.Secret = secret
	}
	k.SealedSecret = nil
	p, err := s.principalOfKey(ctx, k)
	if err != nil {
		return AccessKey{}, err
	}
	k.Principal = p
	return k, nil
}

// principalOfKey describes the owner of a long-term access key.
func (s *Service) principalOfKey(ctx context.Context, k AccessKey) (Principal, error) {
	p := Principal{AccountID: k.AccountID, ARN: k.PrincipalARN, AccessKeyID: k.ID}
	if strings.HasSuffix(k.PrincipalARN, ":root") {
		// aws:userid of an account root is the account id.
		p.Type, p.UserID = PrincipalAccount, k.AccountID
		return p, nil
	}
	rec, err := s.store.GetPrincipal(ctx, k.PrincipalARN)
	if err != nil {
		// The key's user is gone (deleted by another process between the
		// two reads): the key is as good as deleted.
		return Principal{}, err
	}
	tags, err := s.store.PrincipalTags(ctx, rec.ARN)
	if err != nil {
		return Principal{}, err
	}
	p.Type, p.UserID, p.Username, p.Tags = PrincipalUser, rec.UniqueID, rec.Name, tagMap(tags)
	return p, nil
}

// loadSession reads temporary credentials; expired ones are returned as
// they are, so that the verifier can answer ExpiredTokenException.
func (s *Service) loadSession(ctx context.Context, id string) (AccessKey, error) {
	r, err := s.store.GetSession(ctx, id)
	if err != nil {
		return AccessKey{}, err
	}
	role, err := s.store.GetPrincipal(ctx, r.RoleARN)
	if err != nil {
		return AccessKey{}, err
	}
	tags, err := s.store.PrincipalTags(ctx, role.ARN)
	if err != nil {
		return AccessKey{}, err
	}
	secret, err := s.openSecret(ctx, id, r.SealedSecret)
	if err != nil {
		return AccessKey{}, err
	}
	return AccessKey{
		ID:               id,
		Secret:           secret,
		AccountID:        r.AccountID,
		PrincipalARN:     assumedRoleARN(role.AccountID, role.Name, r.SessionName),
		Active:           true,
		CreatedAt:        r.CreatedAt,
		SessionTokenHash: r.TokenHash,
		Expiration:       r.Expiration,
		Principal: Principal{
			AccountID:   r.AccountID,
			ARN:         assumedRoleARN(role.AccountID, role.Name, r.SessionName),
			Type:        PrincipalAssumedRole,
			AccessKeyID: id,
			UserID:      role.UniqueID + ":" + r.SessionName,
			RoleARN:     role.ARN,
			Tags:        tagMap(tags),
			// The session's credentials are issued with the session.
			TokenIssueTime: r.CreatedAt,
		},
	}, nil
}

// SessionTokenMatches reports, in constant time, whether token is the
// session token of temporary credentials k.
func (k AccessKey) SessionTokenMatches(token string) bool {
	if len(k.SessionTokenHash) == 0 {
		return false
	}
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(sum[:], k.SessionTokenHash) == 1
}

// LogValue keeps the secret out of logs whatever logs the key.
func (k AccessKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", k.ID), slog.String("principal", k.PrincipalARN))
}

// String keeps the secret out of fmt output.
func (k AccessKey) String() string {
	return "AccessKey{" + k.ID + " " + k.PrincipalARN + "}"
}

// GoString keeps the secret out of %#v.
func (k AccessKey) GoString() string { return k.String() }

func tagMap(tags []TagRecord) map[string]string {
	if len(tags) == 0 {
		return nil
	}
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[t.Key] = t.Value
	}
	return m
}

// ARNs.

func accountRootARN(account string) string { return "arn:aws:iam::" + account + ":root" }

func userARN(account, name string) string { return "arn:aws:iam::" + account + ":user/" + name }

func roleARN(account, name string) string { return "arn:aws:iam::" + account + ":role/" + name }

func assumedRoleARN(account, role, session string) string {
	return "arn:aws:sts::" + account + ":assumed-role/" + role + "/" + session
}

// parseIAMARN splits arn:aws:iam::ACCOUNT:user/NAME or role/NAME.
func parseIAMARN(arn string) (account, kind, name string, ok bool) {
	rest, ok := strings.CutPrefix(arn, "arn:aws:iam::")
	if !ok {
		return "", "", "", false
	}
	account, res, ok := strings.Cut(rest, ":")
	if !ok || !accountIDPattern.MatchString(account) {
		return "", "", "", false
	}
	kind, name, ok = strings.Cut(res, "/")
	if !ok || (kind != KindUser && kind != KindRole) || !iamNamePattern.MatchString(name) {
		return "", "", "", false
	}
	return account, kind, name, true
}

var (
	accountIDPattern = regexp.MustCompile(`^[0-9]{12}$`)
	// IAM user and role names: 1-64 of [\w+=,.@-].
	iamNamePattern = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	// Role session names: 2-64 of [\w+=,.@-].
	sessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
)

// newUniqueID returns an IAM unique id: prefix ("AIDA" for users, "AROA"
// for roles) and 17 characters of base32, 21 characters in all as in IAM.
func newUniqueID(prefix string) (string, error) {
	b := make([]byte, 11)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return prefix + base32.StdEncoding.EncodeToString(b)[:17], nil
}

// newAccessKeyID returns prefix + 16 base32 characters.
func newAccessKeyID(prefix string) (string, error) {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return prefix + base32.StdEncoding.EncodeToString(b), nil
}

// errNoSuchEntity builds the NotFoundException the admin API answers for an
// absent account, user, role, policy or access key.
func errNoSuchEntity(format string, args ...any) *Error {
	return Errorf(CodeNotFound, format, args...)
}

// storeError maps store sentinels to admin API errors; anything else is a
// server fault.
func storeError(err error, notFound, exists string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrStoreNotFound) && notFound != "":
		return errNoSuchEntity("%s", notFound)
	case errors.Is(err, ErrStoreAlreadyExists) && exists != "":
		return Errorf(CodeAlreadyExists, "%s", exists)
	}
	return Internal(fmt.Errorf("identity store: %w", err))
}

package httpapi

import (
	"context"
	"net"
	"net/http"
	"strings"

	"hsmkms/httpapi/sigv4"
	"hsmkms/kms"
)

// authenticate verifies the request's SigV4 signature and returns ctx
// carrying the caller as a kms.Principal.
func (s *server) authenticate(ctx context.Context, r *http.Request, st *requestState) (context.Context, error) {
	res, err := s.verifier.Verify(ctx, r, st.body)
	// The claimed key id is logged even when verification fails: failed
	// attempts are what an operator looks for.
	st.accessKeyID = res.Authorization.AccessKeyID
	if err != nil {
		return nil, err
	}
	return s.withCaller(ctx, r, st, res), nil
}

// withCaller returns ctx carrying the verified caller and the request's
// transport facts (STS requests, verified for service "sts", use it too).
func (s *server) withCaller(ctx context.Context, r *http.Request, st *requestState, res sigv4.Result) context.Context {
	p := principalOf(res.Key)
	st.principal = p.ARN
	notePrincipal(ctx, p) // for the audit event (observe.go)
	ctx = kms.WithRequestInfo(ctx, kms.RequestInfo{
		SourceIP:        sourceIP(r),
		SecureTransport: r.TLS != nil,
		UserAgent:       r.UserAgent(),
		RequestID:       st.id,
		Region:          res.Authorization.Region,
	})
	return kms.WithPrincipal(ctx, p)
}

// sourceIP is the client's address from the connection; headers such as
// X-Forwarded-For are not trusted, since clients can set them.
func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// principalOf describes the owner of an access key: the Principal the
// service filled in (user, root or assumed-role session, with unique id and
// tags), or, for a credential source that fills none, one derived from the
// key's ARN.
func principalOf(key kms.AccessKey) kms.Principal {
	if key.Principal.ARN != "" {
		p := key.Principal
		p.AccessKeyID = key.ID
		return p
	}
	typ := kms.PrincipalUser
	if strings.HasSuffix(key.PrincipalARN, ":root") {
		typ = kms.PrincipalAccount
	}
	return kms.Principal{
		AccountID:   key.AccountID,
		ARN:         key.PrincipalARN,
		Type:        typ,
		AccessKeyID: key.ID,
	}
}

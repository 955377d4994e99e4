package httpapi

import (
	"context"
	"net/http"
	"strings"

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
	p := principalOf(res.Key)
	st.principal = p.ARN
	return kms.WithPrincipal(ctx, p), nil
}

// principalOf describes the owner of an access key. Today keys belong to an
// account root or an IAM user; roles arrive with temporary credentials.
func principalOf(key kms.AccessKey) kms.Principal {
	typ := "IAMUser"
	if strings.HasSuffix(key.PrincipalARN, ":root") {
		typ = "Root"
	}
	return kms.Principal{
		AccountID:   key.AccountID,
		ARN:         key.PrincipalARN,
		Type:        typ,
		AccessKeyID: key.ID,
	}
}

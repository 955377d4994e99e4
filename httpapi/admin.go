package httpapi

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"hsmkms/httpapi/sigv4"
	"hsmkms/kms"
)

// adminTargetPrefix is the X-Amz-Target namespace of the admin API: the
// same JSON 1.1 protocol and SigV4 signing (service "kms") as the KMS API,
// with its own operation table. kms decides who may call it.
const adminTargetPrefix = "KmsAdmin."

// stsSigningName is the SigV4 service name of STS requests.
const stsSigningName = "sts"

// identityAPI is what the server needs for the admin API and STS.
type identityAPI struct {
	admin       map[string]handlerFunc
	sts         map[string]stsHandler
	stsVerifier *sigv4.Verifier
}

// newIdentityAPI builds the admin and STS tables; cfg has its defaults.
func newIdentityAPI(cfg Config) *identityAPI {
	return &identityAPI{
		admin: adminOperationTable(cfg.Service),
		sts:   stsOperationTable(cfg.Service),
		stsVerifier: &sigv4.Verifier{
			Region:  cfg.Region,
			Service: stsSigningName,
			Keys:    cfg.Credentials,
			Now:     cfg.Now,
		},
	}
}

// adminOperationTable is the one list of admin operations; a test pins it.
func adminOperationTable(s *kms.Service) map[string]handlerFunc {
	return map[string]handlerFunc{
		"CreateAccount":        op(s.AdminCreateAccount),
		"ListAccounts":         op(s.AdminListAccounts),
		"CreateUser":           op(s.AdminCreateUser),
		"DeleteUser":           op(s.AdminDeleteUser),
		"ListUsers":            op(s.AdminListUsers),
		"CreateRole":           op(s.AdminCreateRole),
		"DeleteRole":           op(s.AdminDeleteRole),
		"ListRoles":            op(s.AdminListRoles),
		"CreateAccessKey":      op(s.AdminCreateAccessKey),
		"DeleteAccessKey":      op(s.AdminDeleteAccessKey),
		"UpdateAccessKey":      op(s.AdminUpdateAccessKey),
		"ListAccessKeys":       op(s.AdminListAccessKeys),
		"AttachIdentityPolicy": op(s.AdminAttachIdentityPolicy),
		"DetachIdentityPolicy": op(s.AdminDetachIdentityPolicy),
		"ListIdentityPolicies": op(s.AdminListIdentityPolicies),
		"TagPrincipal":         op(s.AdminTagPrincipal),
		"UntagPrincipal":       op(s.AdminUntagPrincipal),
	}
}

// serveIdentityAPI serves the request if it is an admin API call
// (X-Amz-Target KmsAdmin.*) or an STS query-protocol call (no X-Amz-Target,
// a form body), and reports whether it did. serveAPI asks it first.
func (s *server) serveIdentityAPI(c *gin.Context) bool {
	target := c.GetHeader("X-Amz-Target")
	switch {
	case strings.HasPrefix(target, adminTargetPrefix):
		s.serveAdmin(c, strings.TrimPrefix(target, adminTargetPrefix))
		return true
	case target == "" && isFormRequest(c.GetHeader("Content-Type")):
		s.serveSTS(c)
		return true
	}
	return false
}

// serveAdmin is serveAPI for the admin table.
func (s *server) serveAdmin(c *gin.Context, name string) {
	st := stateOf(c)
	handle, ok := s.identity.admin[name]
	if !ok {
		fail(c, kms.Errorf(kms.CodeUnknownOperation, "Unknown operation."))
		return
	}
	st.operation = adminTargetPrefix + name
	if err := checkContentType(c.GetHeader("Content-Type")); err != nil {
		fail(c, err)
		return
	}
	ctx, err := s.authenticate(c.Request.Context(), c.Request, st)
	if err != nil {
		fail(c, err)
		return
	}
	resp, err := handle(ctx, st.body)
	if err != nil {
		fail(c, err)
		return
	}
	if resp == nil {
		// Operations without output answer {} so that every client can
		// parse the body.
		resp = []byte("{}")
	}
	c.Data(http.StatusOK, contentType, resp)
}

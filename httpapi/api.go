package httpapi

import (
	"mime"
	"net/http"

	"github.com/gin-gonic/gin"

	"hsmkms/kms"
)

// serveAPI is POST /: operation lookup, content type, authentication, then
// the operation itself, in that order, so that the cheapest checks that
// need no secret come first.
func (s *server) serveAPI(c *gin.Context) {
	if s.serveIdentityAPI(c) { // KmsAdmin.* and STS (admin.go)
		return
	}
	st := stateOf(c)
	name, handle, err := s.lookupOperation(c.GetHeader("X-Amz-Target"))
	if err != nil {
		fail(c, err)
		return
	}
	st.operation = name
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
	c.Data(http.StatusOK, contentType, resp)
}

// checkContentType accepts the JSON 1.1 media type the SDKs send, and plain
// application/json for hand-written clients, with any parameters.
func checkContentType(header string) error {
	mt, _, err := mime.ParseMediaType(header)
	if err == nil && (mt == contentType || mt == "application/json") {
		return nil
	}
	return kms.Errorf(kms.CodeSerialization, "Content-Type must be %s.", contentType)
}

// serveNotFound answers every path and method outside the API.
func serveNotFound(c *gin.Context) {
	failWithStatus(c, http.StatusNotFound, kms.Errorf(kms.CodeUnknownOperation,
		"The API is served at POST /; %s %s is not part of it.", c.Request.Method, c.Request.URL.Path))
}

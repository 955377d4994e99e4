package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"hsmkms/kms"
)

// contentType is what AWS JSON 1.1 services send, errors included.
const contentType = "application/x-amz-json-1.1"

// statusFor is the one mapping from an error code to an HTTP status. AWS
// KMS answers 400 for every client error (the SDKs type errors by __type,
// not status) and 500 for its own faults, which the SDKs retry; the KMS API
// reference gives DependencyTimeoutException status 500 too.
func statusFor(code kms.Code) int {
	switch {
	case code.ServerFault():
		return http.StatusInternalServerError
	default:
		return http.StatusBadRequest
	}
}

// errorBody is the AWS JSON error shape. AWS leaves "message" out for some
// errors (InvalidCiphertextException, KMSInvalidSignatureException).
type errorBody struct {
	Type    kms.Code `json:"__type"`
	Message string   `json:"message,omitempty"`
}

// fail ends the request with err mapped to its AWS code and status. Errors
// that are not *kms.Error become KMSInternalException with a generic
// message; the cause of every server fault is kept for the log line.
func fail(c *gin.Context, err error) {
	e := kms.AsError(err)
	failWithStatus(c, statusFor(e.Code), e)
}

// failWithStatus is fail for the rare answer whose status is not the code's
// (404 for paths outside the API).
func failWithStatus(c *gin.Context, status int, e *kms.Error) {
	st := stateOf(c)
	st.errorCode = e.Code
	if e.Code.ServerFault() {
		st.cause = e
	}
	body, _ := json.Marshal(errorBody{Type: e.Code, Message: e.Message}) // cannot fail: two strings
	c.Data(status, contentType, body)
	c.Abort()
}

package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"hsmkms/kms"
)

// readyTimeout bounds a readiness check, so a hung HSM makes /readyz answer
// 503 rather than hang the prober.
const readyTimeout = 2 * time.Second

// serveHealthz is the liveness probe: the process is up and serving HTTP.
func (s *server) serveHealthz(c *gin.Context) {
	c.Data(http.StatusOK, "text/plain; charset=utf-8", []byte("ok"))
}

type readiness struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// serveReadyz is the readiness probe: whether requests can be served now
// (the HSM answers). The reason is the error's client-safe message; the
// full cause goes to the log.
func (s *server) serveReadyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), readyTimeout)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		e := kms.AsError(err)
		st := stateOf(c)
		st.errorCode = e.Code
		st.cause = err
		c.JSON(http.StatusServiceUnavailable, readiness{Status: "not ready", Reason: e.Message})
		return
	}
	c.JSON(http.StatusOK, readiness{Status: "ready"})
}

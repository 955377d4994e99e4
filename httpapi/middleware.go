package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"hsmkms/kms"
)

// requestState is what the middleware and handlers learn about a request,
// for the access log line and for each other. It lives in the Gin context
// and is never passed to the service.
type requestState struct {
	id          string
	body        []byte // the complete request body, read once by limitBody
	operation   string
	errorCode   kms.Code
	cause       error // server faults only; logged, never sent
	accessKeyID string
	principal   string // ARN, once authenticated
}

type stateKey struct{}

func stateOf(c *gin.Context) *requestState {
	if st, ok := c.Get(stateKey{}); ok {
		return st.(*requestState)
	}
	// Only reachable if assignRequestID did not run, which engine() rules
	// out; a fresh state keeps callers simple.
	st := &requestState{}
	c.Set(stateKey{}, st)
	return st
}

// requestIDHeader is where AWS puts the request id; SDKs report it.
const requestIDHeader = "x-amzn-RequestId"

// assignRequestID gives the request its id and puts it on the response
// before anything can fail, so every answer carries it.
func assignRequestID(c *gin.Context) {
	st := &requestState{id: uuid.NewString()}
	c.Set(stateKey{}, st)
	c.Header(requestIDHeader, st.id)
	c.Next()
}

// logRequest writes one line per request. It logs who and what, never
// bodies, signatures or secrets; the cause of a server fault is included so
// that the request id leads to it.
func (s *server) logRequest(c *gin.Context) {
	start := time.Now()
	c.Next()
	st := stateOf(c)
	status := c.Writer.Status()
	// Successful requests log at Debug: at tens of thousands of requests a
	// second the line per request was a quarter of the server's CPU, and
	// the audit trail, not the log, is the record of who did what. Refused
	// requests log at Info and server faults at Error.
	level := slog.LevelDebug
	switch {
	case st.cause != nil || status >= 500:
		level = slog.LevelError
	case status >= 400:
		level = slog.LevelInfo
	}
	if !s.log.Enabled(c.Request.Context(), level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", st.id),
		slog.String("method", c.Request.Method),
		slog.String("path", c.Request.URL.Path),
		slog.Int("status", status),
		slog.Duration("latency", time.Since(start)),
		slog.String("remote_addr", c.Request.RemoteAddr),
	}
	if st.operation != "" {
		attrs = append(attrs, slog.String("operation", st.operation))
	}
	if st.errorCode != "" {
		attrs = append(attrs, slog.String("error_code", string(st.errorCode)))
	}
	if st.accessKeyID != "" {
		attrs = append(attrs, slog.String("access_key_id", st.accessKeyID))
	}
	if st.principal != "" {
		attrs = append(attrs, slog.String("principal", st.principal))
	}
	if st.cause != nil {
		attrs = append(attrs, slog.String("cause", st.cause.Error()))
	}
	s.log.LogAttrs(c.Request.Context(), level, "request", attrs...)
}

// recoverPanic turns a panic in anything after it into a logged
// KMSInternalException, so one bad request cannot take the server down.
func (s *server) recoverPanic(c *gin.Context) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler {
			panic(v) // net/http's deliberate abort; let it do its job
		}
		e := kms.Internal(fmt.Errorf("panic: %v\n%s", v, debug.Stack()))
		if c.Writer.Written() {
			// Too late to answer; record the cause and let the
			// connection end.
			stateOf(c).cause = e
			c.Abort()
			return
		}
		fail(c, e)
	}()
	c.Next()
}

// limitBody reads the whole body, at most maxBody bytes, before routing:
// SigV4 hashes it and the decoder parses it, so it is read once here and
// an oversized request is refused before any other work.
func (s *server) limitBody(c *gin.Context) {
	if c.Request.Method != http.MethodPost {
		// GET /healthz, /readyz, /metrics take no body: none is read
		// (bodylimit.go).
		c.Next()
		return
	}
	limit := s.bodyLimit(c.GetHeader("X-Amz-Target")) // bodylimit.go
	if c.Request.ContentLength > limit {
		fail(c, tooLarge())
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			fail(c, tooLarge())
			return
		}
		fail(c, kms.Errorf(kms.CodeSerialization, "The request body could not be read."))
		return
	}
	stateOf(c).body = body
	c.Request.Body = io.NopCloser(bytes.NewReader(body))
	c.Next()
}

func tooLarge() *kms.Error {
	return kms.Errorf(kms.CodeValidation, "Request body is too large.")
}

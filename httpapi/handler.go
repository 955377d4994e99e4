// Package httpapi serves the AWS KMS wire protocol (JSON 1.1 over POST /,
// X-Amz-Target dispatch, SigV4) in front of a *kms.Service, plus the
// liveness and readiness probes. It owns the protocol only: decoding,
// authentication, error mapping and logging. The operations live in kms.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"hsmkms/httpapi/sigv4"
	"hsmkms/kms"
	"hsmkms/kms/audit"
	"hsmkms/kms/metrics"
	"hsmkms/kms/quota"
)

// DefaultMaxBodyBytes bounds a request body. The largest KMS request
// members are a few KiB (4 KiB plaintext, 6 KiB ciphertext), so this leaves
// ample room while capping what one unauthenticated request can make the
// server buffer; the policy operations get PolicyMaxBodyBytes (bodylimit.go).
const DefaultMaxBodyBytes = 64 << 10

// CredentialSource finds the access key that signed a request. Unknown or
// inactive ids return an error wrapping kms.ErrStoreNotFound (or an inactive
// key, which is refused the same way). *kms.Service satisfies it.
type CredentialSource interface {
	LookupAccessKey(ctx context.Context, id string) (kms.AccessKey, error)
}

var _ CredentialSource = (*kms.Service)(nil)

// Config configures the handler. Only Service is required.
type Config struct {
	Service *kms.Service
	// Credentials verifies SigV4 access keys; defaults to Service.
	Credentials CredentialSource
	// Region is the only region a credential scope may name; defaults to
	// Service.Region().
	Region string
	// Logger receives one line per request; defaults to discarding.
	Logger *slog.Logger
	// MaxBodyBytes bounds request bodies; defaults to DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Now is the clock used for signature expiry; defaults to time.Now.
	Now func() time.Time
	// Ready reports whether the server can serve (GET /readyz); defaults to
	// Service.Health.
	Ready func(context.Context) error

	// Audit, AuditVerifier, Quotas and Metrics are the audit trail, the
	// digest signature check, the request quotas and the metrics
	// (observe.go); each may be nil. SeparateMetrics leaves GET /metrics
	// off this handler (served on its own listener).
	Audit           *audit.Log
	AuditVerifier   audit.SignatureVerifier
	Quotas          *quota.Limiter
	Metrics         *metrics.Metrics
	SeparateMetrics bool
}

// server is the state the handlers share; it never changes after
// NewHandler.
type server struct {
	log        *slog.Logger
	maxBody    int64
	operations map[string]handlerFunc
	verifier   *sigv4.Verifier
	ready      func(context.Context) error
	// identity serves the admin API and STS (admin.go, sts.go).
	identity *identityAPI
	// obs is the audit trail, quotas and metrics (observe.go).
	obs             *observer
	separateMetrics bool
}

// NewHandler returns the HTTP handler of the API: POST / for the KMS
// operations, GET /healthz and GET /readyz. It panics if cfg has no Service
// or no region can be determined, since either is a wiring mistake.
func NewHandler(cfg Config) http.Handler {
	return newServer(cfg).engine()
}

// newServer applies the defaults of cfg.
func newServer(cfg Config) *server {
	if cfg.Service == nil {
		panic("httpapi: Config.Service is required")
	}
	if cfg.Credentials == nil {
		cfg.Credentials = cfg.Service
	}
	if cfg.Region == "" {
		cfg.Region = cfg.Service.Region()
	}
	if cfg.Region == "" {
		panic("httpapi: no region: set Config.Region or the service's region")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Ready == nil {
		cfg.Ready = cfg.Service.Health
	}
	s := &server{
		log:        cfg.Logger,
		maxBody:    cfg.MaxBodyBytes,
		operations: operationTable(cfg.Service),
		verifier: &sigv4.Verifier{
			Region:  cfg.Region,
			Service: signingName,
			Keys:    cfg.Credentials,
			Now:     cfg.Now,
		},
		ready:    cfg.Ready,
		identity: newIdentityAPI(cfg),
		obs:      newObserver(cfg),

		separateMetrics: cfg.SeparateMetrics,
	}
	s.obs.registerAdmin(s.identity.admin) // KmsAdmin.LookupEvents, VerifyAuditTrail (auditapi.go)
	return s
}

// signingName is the SigV4 service name of KMS.
const signingName = "kms"

// engine builds the Gin engine with our middleware only, in the order every
// request passes through it.
func (s *server) engine() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	// Client addresses come from the connection, never from headers a
	// client can forge.
	_ = e.SetTrustedProxies(nil)
	// Unknown paths get our JSON 404 rather than Gin's redirects.
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.HandleMethodNotAllowed = false

	e.Use(
		assignRequestID, // first, so every response carries x-amzn-RequestId
		s.logRequest,    // outside recovery, so panics are logged with their 500
		s.obs.observe,   // audit event committed before the response leaves; metrics
		s.recoverPanic,  // a panic becomes KMSInternalException, never a crash
		s.limitBody,     // reads the body once, bounded
	)
	e.POST("/", s.serveAPI)
	e.GET("/healthz", s.serveHealthz)
	e.GET("/readyz", s.serveReadyz)
	s.obs.registerRoutes(e, s.separateMetrics) // GET /metrics
	e.NoRoute(serveNotFound)
	return e
}

package httpapi

// The audit trail, request quotas and metrics of the API. One middleware
// (observe) wraps every POST /: it holds the response in a buffer, lets the
// request run, builds the request's audit event, waits until the event is
// committed (durable mode) and only then sends the response. Two hooks in
// the generic adapter (beforeCall, afterCall) hand it the decoded request
// and response and charge the quotas; a kms.KeyHook sees every key the
// request resolves (for the event's resources and the key-dependent quota
// classes).

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"hsmkms/kms"
	"hsmkms/kms/audit"
	"hsmkms/kms/metrics"
	"hsmkms/kms/quota"
)

// throttleMessage is AWS's ThrottlingException message.
const throttleMessage = "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls."

// observer holds the audit log, quotas and metrics; every field may be nil.
type observer struct {
	audit   *audit.Log
	verify  audit.SignatureVerifier
	quotas  *quota.Limiter
	metrics *metrics.Metrics
	region  string
	service *kms.Service
}

func newObserver(cfg Config) *observer {
	return &observer{audit: cfg.Audit, verify: cfg.AuditVerifier, quotas: cfg.Quotas, metrics: cfg.Metrics,
		region: cfg.Region, service: cfg.Service}
}

// requestNote is what the hooks learn about one request.
type requestNote struct {
	st      *requestState
	start   time.Time
	caller  *kms.Principal
	input   any
	output  any
	keys    []kms.KeyUse
	account string             // the account an admin or STS request acted in (onAccount)
	charged map[chargeKey]bool // true: a token taken; false: throttled
	obs     *observer
}

type noteKey struct{}

func noteFrom(ctx context.Context) *requestNote {
	n, _ := ctx.Value(noteKey{}).(*requestNote)
	return n
}

// notePrincipal records the authenticated caller (auth.go, withCaller).
func notePrincipal(ctx context.Context, p kms.Principal) {
	if n := noteFrom(ctx); n != nil {
		n.caller = &p
	}
}

// beforeCall runs in the adapter between decoding and the operation: it
// records the decoded request, charges the operation's quota and installs
// the key hook. An error (ThrottlingException) ends the request.
func beforeCall(ctx context.Context, in any) (context.Context, error) {
	n := noteFrom(ctx)
	if n == nil {
		return ctx, nil
	}
	n.input = in
	op := n.st.operation
	if n.obs.quotas != nil && n.caller != nil {
		class, byKey, ok := quota.OperationClass(op)
		if in, isPair := in.(*kms.GenerateDataKeyPairInput); isPair && in.KeyPairSpec != nil {
			class, byKey, ok = quota.DataKeyPair(*in.KeyPairSpec), false, true
		}
		if ok && !byKey {
			if err := n.charge(n.caller.AccountID, class); err != nil {
				return ctx, err
			}
		}
	}
	return kms.WithAccountHook(kms.WithKeyHook(ctx, n.onKey), n.onAccount), nil
}

// onAccount is the request's kms.AccountHook: the account an admin or STS
// request acted in, where its event is filed.
func (n *requestNote) onAccount(account string) {
	if n.account == "" {
		n.account = account
	}
}

// afterCall records the decoded response of a successful operation.
func afterCall(ctx context.Context, out any) {
	if n := noteFrom(ctx); n != nil {
		n.output = out
	}
}

// onKey is the request's kms.KeyHook: called when a request resolves a
// key, and again once the caller is authorized to use it.
func (n *requestNote) onKey(_ context.Context, k kms.KeyUse) error {
	if !k.Authorized {
		n.keys = append(n.keys, k)
	}
	if n.obs.quotas == nil {
		return nil
	}
	if _, byKey, ok := quota.OperationClass(n.st.operation); ok && byKey {
		// Cryptographic requests count against the key owner's quota of
		// the key's kind. A caller from another account spends the
		// owner's quota only once authorized, so that it cannot throttle
		// the owner with requests the owner never allowed; before that it
		// spends its own account's, so that a flood of refused requests
		// is throttled where it comes from.
		class := quota.KeyClass(k.KeySpec)
		foreign := n.caller != nil && n.caller.AccountID != k.AccountID
		switch {
		case !foreign && !k.Authorized:
			return n.charge(k.AccountID, class)
		case foreign && !k.Authorized:
			return n.charge(n.caller.AccountID, class)
		case foreign && k.Authorized:
			return n.charge(k.AccountID, class)
		}
	}
	return nil
}

// chargeKey is an account's quota class.
type chargeKey struct {
	account string
	class   quota.Class
}

// charge takes a token of class for account, once per request, account and
// class (a cross-account ReEncrypt spends a token of each account).
//
// A refusal sticks for the rest of the request: a caller that drops the
// first ThrottlingException (ReEncrypt's early look at its source key) must
// not find the bucket charged on the next look.
func (n *requestNote) charge(account string, class quota.Class) error {
	ck := chargeKey{account, class}
	if allowed, seen := n.charged[ck]; seen {
		if allowed {
			return nil
		}
		return kms.Errorf(kms.CodeThrottling, throttleMessage)
	}
	if n.charged == nil {
		n.charged = map[chargeKey]bool{}
	}
	allowed := n.obs.quotas.Allow(account, class)
	n.charged[ck] = allowed
	if allowed {
		return nil
	}
	n.obs.metrics.Throttled(n.st.operation, string(class))
	return kms.Errorf(kms.CodeThrottling, throttleMessage)
}

// observe is the middleware of POST /.
func (o *observer) observe(c *gin.Context) {
	if c.Request.Method != http.MethodPost || c.Request.URL.Path != "/" {
		c.Next()
		return
	}
	st := stateOf(c)
	n := &requestNote{st: st, start: time.Now(), obs: o}
	c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), noteKey{}, n))
	orig := c.Writer
	buf := &bufferedWriter{ResponseWriter: orig, status: http.StatusOK}
	c.Writer = buf
	c.Next()
	c.Writer = orig

	if o.audit != nil {
		ev := o.event(c, n, buf)
		// Not the request's context: a client that hangs up must not keep
		// its request out of the trail. But bounded: on a stalled disk the
		// request answers a server fault after auditWait rather than
		// piling up with every other one.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), auditWait)
		err := o.audit.Record(rctx, ev)
		cancel()
		if err != nil {
			o.metrics.AuditFailed()
			st.cause = err
			st.errorCode = kms.CodeInternal
			// The response must not leave without its record: answer
			// as a server fault instead (the SDKs retry those).
			buf.reset()
			buf.Header().Set("Content-Type", contentType)
			buf.status = http.StatusInternalServerError
			body, _ := json.Marshal(errorBody{Type: kms.CodeInternal, Message: "The request could not be recorded in the audit trail."})
			buf.body.Write(body)
		}
	}
	buf.flush()
	o.metrics.ObserveRequest(st.operation, string(st.errorCode), time.Since(n.start))
}

// bufferedWriter holds the response until the audit event is committed.
type bufferedWriter struct {
	gin.ResponseWriter
	status  int
	written bool
	body    bytes.Buffer
}

func (w *bufferedWriter) WriteHeader(code int) {
	if code > 0 && !w.written {
		w.status = code
	}
}
func (w *bufferedWriter) WriteHeaderNow() { w.written = true }
func (w *bufferedWriter) Write(b []byte) (int, error) {
	w.written = true
	return w.body.Write(b)
}
func (w *bufferedWriter) WriteString(s string) (int, error) {
	w.written = true
	return w.body.WriteString(s)
}
func (w *bufferedWriter) Status() int   { return w.status }
func (w *bufferedWriter) Size() int     { return w.body.Len() }
func (w *bufferedWriter) Written() bool { return w.written }
func (w *bufferedWriter) Flush()        {}
func (w *bufferedWriter) reset()        { w.body.Reset(); w.written = true }

func (w *bufferedWriter) flush() {
	w.ResponseWriter.WriteHeader(w.status)
	if w.body.Len() > 0 {
		_, _ = w.ResponseWriter.Write(w.body.Bytes())
	} else {
		w.ResponseWriter.WriteHeaderNow()
	}
}

// kmsOperationNames is the set of operations the API serves.
var kmsOperationNames = sync.OnceValue(func() map[string]bool {
	names := map[string]bool{}
	for op := range operationTable(nil) {
		names[op] = true
	}
	return names
})

// readOnlyOperations are the operations CloudTrail marks readOnly.
func readOnly(op string) bool {
	for _, p := range []string{"Describe", "List", "Get", "Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey",
		"GenerateRandom", "Sign", "Verify", "GenerateMac", "VerifyMac", "LookupEvents", "VerifyAuditTrail"} {
		if strings.HasPrefix(op, p) {
			return true
		}
	}
	return false
}

// userAgentLimit bounds what a client can make the trail store.
const userAgentLimit = 1024

// event builds the request's CloudTrail-shaped record.
func (o *observer) event(c *gin.Context, n *requestNote, buf *bufferedWriter) *audit.Event {
	st := n.st
	source, name := "kms.amazonaws.com", st.operation
	switch {
	case strings.HasPrefix(name, adminTargetPrefix):
		source, name = "kmsadmin.kmsd", strings.TrimPrefix(name, adminTargetPrefix)
	case strings.HasPrefix(name, "STS."):
		source, name = "sts.amazonaws.com", strings.TrimPrefix(name, "STS.")
	case name == "":
		// Refused before its operation was resolved (a body over the
		// limit, say): named after its target only if that is a KMS
		// operation, so that lookups by event name find it; anything
		// else is "Unknown" rather than a name the client made up.
		name = "Unknown"
		if op, ok := strings.CutPrefix(c.GetHeader("X-Amz-Target"), targetPrefix); ok && kmsOperationNames()[op] {
			name = op
		}
	}
	ua := c.Request.UserAgent()
	if len(ua) > userAgentLimit {
		ua = ua[:userAgentLimit]
	}
	ev := &audit.Event{
		EventVersion:    audit.EventVersion,
		EventTime:       n.start.UTC().Format(audit.TimeFormat),
		EventSource:     source,
		EventName:       name,
		AWSRegion:       o.region,
		SourceIPAddress: sourceIP(c.Request),
		UserAgent:       ua,
		RequestID:       st.id,
		EventID:         uuid.NewString(),
		ReadOnly:        readOnly(name),
		EventType:       audit.EventType,
		ManagementEvent: true,
		EventCategory:   audit.EventCategory,
	}
	if p := n.caller; p != nil {
		ev.UserIdentity = audit.UserIdentity{Type: identityType(p.Type), PrincipalID: p.UserID, ARN: p.ARN,
			AccountID: p.AccountID, AccessKeyID: p.AccessKeyID}
		if ev.UserIdentity.PrincipalID == "" && p.Type == kms.PrincipalAccount {
			ev.UserIdentity.PrincipalID = p.AccountID
		}
		ev.RecipientAccountID = p.AccountID
	} else {
		// Not authenticated: only the claimed key id is known.
		ev.UserIdentity = audit.UserIdentity{Type: "Unknown", AccessKeyID: st.accessKeyID}
	}
	fields := auditFields[st.operation]
	ev.RequestParameters = renderFields(n.input, fields.request)
	if st.errorCode == "" && buf.status < 400 {
		ev.ResponseElements = renderFields(n.output, fields.response)
	} else {
		ev.ErrorCode = string(st.errorCode)
		ev.ErrorMessage = truncateRunes(errorMessage(buf), maxAuditMessage)
		if ev.ErrorCode == "" {
			ev.ErrorCode = http.StatusText(buf.status)
		}
	}
	seen := map[string]bool{}
	for _, k := range n.keys {
		if seen[k.ARN] {
			continue
		}
		seen[k.ARN] = true
		ev.Resources = append(ev.Resources, audit.Resource{AccountID: k.AccountID, Type: audit.ResourceType, ARN: k.ARN})
	}
	if out, ok := n.output.(*kms.CreateKeyOutput); ok && out.KeyMetadata != nil && len(ev.Resources) == 0 {
		ev.Resources = append(ev.Resources, audit.Resource{AccountID: out.KeyMetadata.AWSAccountId, Type: audit.ResourceType, ARN: out.KeyMetadata.Arn})
	}
	switch {
	case len(ev.Resources) > 0 && ev.Resources[0].AccountID != "":
		// CloudTrail delivers the event to the key owner's account.
		ev.RecipientAccountID = ev.Resources[0].AccountID
	case n.account != "":
		// And an IAM or STS event to the account of the principal it
		// changed or the role assumed.
		ev.RecipientAccountID = n.account
	}
	return ev
}

// identityType maps aws:PrincipalType to CloudTrail's userIdentity type.
func identityType(t string) string {
	switch t {
	case kms.PrincipalAccount:
		return "Root"
	case kms.PrincipalUser:
		return "IAMUser"
	}
	return t
}

// auditWait bounds how long a request waits for its audit record to be
// queued and committed (milliseconds normally).
const auditWait = 10 * time.Second

// maxAuditMessage bounds an event's errorMessage: messages may echo the
// request (an unauthenticated one too), which must not set the size of
// what every request stores.
const maxAuditMessage = 1024

// truncateRunes cuts s to at most n bytes on a rune boundary, marking the
// cut.
func truncateRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// errorMessage extracts the message of the error answer in buf (JSON for
// KMS and the admin API, XML for STS).
func errorMessage(buf *bufferedWriter) string {
	b := buf.body.Bytes()
	var j errorBody
	if json.Unmarshal(b, &j) == nil {
		return j.Message
	}
	var x struct {
		Error struct {
			Message string `xml:"Message"`
		} `xml:"Error"`
	}
	if xml.Unmarshal(b, &x) == nil {
		return x.Error.Message
	}
	return ""
}

// registerRoutes adds GET /metrics to the API's engine unless metrics are
// served on their own listener (MetricsHandler).
func (o *observer) registerRoutes(e *gin.Engine, separate bool) {
	if o.metrics != nil && !separate {
		e.GET("/metrics", gin.WrapH(o.metrics.Handler()))
	}
}

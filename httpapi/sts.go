package httpapi

// The AWS STS query protocol, for AssumeRole and GetCallerIdentity: POST /
// with an application/x-www-form-urlencoded body (Action=AssumeRole&
// Version=2011-06-15&...), SigV4 for service "sts", XML answers and STS's
// XML error shape. This is what the AWS SDKs' STS clients and credential
// providers (stscreds) speak, so they work against kmsd with an endpoint
// override.

import (
	"context"
	"encoding/xml"
	"errors"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"hsmkms/kms"
)

const (
	stsVersion   = "2011-06-15"
	stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"
	formType     = "application/x-www-form-urlencoded"
	xmlType      = "text/xml"
)

// stsHandler runs one STS action on the decoded form; it returns the
// *Result element of the answer.
type stsHandler func(ctx context.Context, form url.Values) (any, error)

// stsOperationTable lists the STS actions served.
func stsOperationTable(s *kms.Service) map[string]stsHandler {
	return map[string]stsHandler{
		"AssumeRole":        assumeRole(s),
		"GetCallerIdentity": getCallerIdentity,
	}
}

func isFormRequest(header string) bool {
	mt, _, err := mime.ParseMediaType(header)
	return err == nil && mt == formType
}

// serveSTS decodes the form, authenticates with the STS verifier, runs the
// action and writes the XML answer.
func (s *server) serveSTS(c *gin.Context) {
	st := stateOf(c)
	form, err := url.ParseQuery(string(st.body))
	if err != nil {
		failSTS(c, stsErr(kms.CodeSerialization, "The request body is not a valid form."))
		return
	}
	// The query protocol also takes parameters in the URL (SigV4 signs
	// it): they join the body's, so that one set of checks, the
	// repetition and the allow-list of each action, sees every parameter.
	// Left out, ?PolicyArns.member.1.arn=... would be ignored silently.
	query, err := url.ParseQuery(c.Request.URL.RawQuery)
	if err != nil {
		failSTS(c, stsErr(kms.CodeSerialization, "The query string is not a valid form."))
		return
	}
	for name, vs := range query {
		form[name] = append(form[name], vs...)
	}
	for name, vs := range form {
		if len(vs) > 1 {
			failSTS(c, stsErr(kms.CodeValidation, "Parameter "+name+" is repeated."))
			return
		}
	}
	action := form.Get("Action")
	handle, ok := s.identity.sts[action]
	if !ok {
		failSTS(c, &stsError{Code: "InvalidAction", Status: http.StatusBadRequest,
			Message: "Could not find operation " + truncate(action) + " for version " + truncate(form.Get("Version"))})
		return
	}
	st.operation = "STS." + action
	if v := form.Get("Version"); v != stsVersion {
		failSTS(c, &stsError{Code: "InvalidAction", Status: http.StatusBadRequest,
			Message: "Could not find operation " + action + " for version " + truncate(v)})
		return
	}
	res, err := s.identity.stsVerifier.Verify(c.Request.Context(), c.Request, st.body)
	st.accessKeyID = res.Authorization.AccessKeyID
	if err != nil {
		failSTS(c, err)
		return
	}
	ctx := s.withCaller(c.Request.Context(), c.Request, st, res)
	result, err := handle(ctx, form)
	if err != nil {
		failSTS(c, err)
		return
	}
	body, err := xml.Marshal(stsResponse{
		XMLName:  xml.Name{Space: stsNamespace, Local: action + "Response"},
		Result:   result,
		Metadata: stsMetadata{RequestID: st.id},
	})
	if err != nil {
		failSTS(c, kms.Internal(err))
		return
	}
	c.Data(http.StatusOK, xmlType, append([]byte(xml.Header), body...))
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

type stsResponse struct {
	XMLName  xml.Name
	Result   any         `xml:",any"`
	Metadata stsMetadata `xml:"ResponseMetadata"`
}

type stsMetadata struct {
	RequestID string `xml:"RequestId"`
}

// assumeRoleParams are the parameters of AssumeRole this service
// implements. Any other is refused, never ignored: session policies
// (Policy, PolicyArns.member.N.arn) narrow permissions, tags shape them,
// MFA fields gate access. An allow-list, because a list of refused names
// misses the members' many spellings (PolicyArns.member.2.arn, ...).
var assumeRoleParams = map[string]bool{
	"Action": true, "Version": true, "RoleArn": true, "RoleSessionName": true, "DurationSeconds": true,
}

// unsupportedParam returns the first parameter of form (in name order) that
// allowed lacks, by its top-level name ("PolicyArns" for
// PolicyArns.member.1.arn), or "".
func unsupportedParam(form url.Values, allowed map[string]bool) string {
	for _, name := range slices.Sorted(maps.Keys(form)) {
		if !allowed[name] {
			top, _, _ := strings.Cut(name, ".")
			return truncate(top)
		}
	}
	return ""
}

type assumeRoleResult struct {
	XMLName     xml.Name `xml:"AssumeRoleResult"`
	Credentials struct {
		AccessKeyId     string
		SecretAccessKey string
		SessionToken    string
		Expiration      string
	}
	AssumedRoleUser struct {
		AssumedRoleId string
		Arn           string
	}
	PackedPolicySize int
}

func assumeRole(s *kms.Service) stsHandler {
	return func(ctx context.Context, form url.Values) (any, error) {
		if p := unsupportedParam(form, assumeRoleParams); p != "" {
			return nil, kms.Errorf(kms.CodeValidation, "The parameter %s is not supported by this service.", p)
		}
		in := &kms.AssumeRoleInput{RoleArn: form.Get("RoleArn"), RoleSessionName: form.Get("RoleSessionName")}
		if in.RoleArn == "" {
			return nil, kms.Errorf(kms.CodeValidation, "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null")
		}
		if in.RoleSessionName == "" {
			return nil, kms.Errorf(kms.CodeValidation, "1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null")
		}
		if d := form.Get("DurationSeconds"); d != "" {
			n, err := strconv.Atoi(d)
			if err != nil || n <= 0 {
				return nil, kms.Errorf(kms.CodeValidation, "1 validation error detected: Value '%s' at 'durationSeconds' failed to satisfy constraint: Member must be a positive integer", truncate(d))
			}
			in.DurationSeconds = n
		}
		// The audit event's requestParameters and responseElements, as
		// for the KMS operations (observe.go).
		ctx, err := beforeCall(ctx, in)
		if err != nil {
			return nil, err
		}
		out, err := s.AssumeRole(ctx, in)
		if err != nil {
			return nil, err
		}
		afterCall(ctx, out)
		var r assumeRoleResult
		r.Credentials.AccessKeyId = out.AccessKeyId
		r.Credentials.SecretAccessKey = out.SecretAccessKey
		r.Credentials.SessionToken = out.SessionToken
		r.Credentials.Expiration = out.Expiration.Time().UTC().Format(time.RFC3339)
		r.AssumedRoleUser.AssumedRoleId = out.AssumedRoleId
		r.AssumedRoleUser.Arn = out.AssumedRoleArn
		return &r, nil
	}
}

type callerIdentityResult struct {
	XMLName xml.Name `xml:"GetCallerIdentityResult"`
	UserId  string
	Account string
	Arn     string
}

// getCallerIdentity answers who signed the request; like AWS it needs no
// permission.
func getCallerIdentity(ctx context.Context, _ url.Values) (any, error) {
	p, ok := kms.PrincipalFrom(ctx)
	if !ok {
		return nil, kms.Internal(errors.New("sts: request without an authenticated principal"))
	}
	return &callerIdentityResult{UserId: p.UserID, Account: p.AccountID, Arn: p.ARN}, nil
}

// stsError is an error in STS's terms.
type stsError struct {
	Code    string
	Message string
	Status  int
	Cause   error
}

func (e *stsError) Error() string { return e.Code + ": " + e.Message }

func stsErr(code kms.Code, msg string) error { return &kms.Error{Code: code, Message: msg} }

// stsCodes maps the service's codes to STS's error codes and statuses.
var stsCodes = map[kms.Code]struct {
	code   string
	status int
}{
	kms.CodeAccessDenied:               {"AccessDenied", http.StatusForbidden},
	kms.CodeValidation:                 {"ValidationError", http.StatusBadRequest},
	kms.CodeSerialization:              {"MalformedInput", http.StatusBadRequest},
	kms.CodeMalformedPolicy:            {"MalformedPolicyDocument", http.StatusBadRequest},
	kms.CodeUnrecognizedClient:         {"InvalidClientTokenId", http.StatusForbidden},
	kms.CodeInvalidSignature:           {"SignatureDoesNotMatch", http.StatusForbidden},
	kms.CodeIncompleteSignature:        {"IncompleteSignature", http.StatusBadRequest},
	kms.CodeMissingAuthenticationToken: {"MissingAuthenticationToken", http.StatusForbidden},
	kms.CodeExpiredToken:               {"ExpiredToken", http.StatusBadRequest},
}

// failSTS writes STS's XML error shape.
func failSTS(c *gin.Context, err error) {
	st := stateOf(c)
	var se *stsError
	if !errors.As(err, &se) {
		e := kms.AsError(err)
		se = &stsError{Code: "InternalFailure", Status: http.StatusInternalServerError,
			Message: "An internal error occurred.", Cause: e}
		if m, ok := stsCodes[e.Code]; ok {
			se = &stsError{Code: m.code, Status: m.status, Message: e.Message}
		}
	}
	st.errorCode = kms.Code(se.Code)
	kind := "Sender"
	if se.Status >= 500 {
		kind = "Receiver"
		st.cause = se.Cause
		if st.cause == nil {
			st.cause = se
		}
	}
	body, _ := xml.Marshal(stsErrorResponse{
		Error:     stsErrorBody{Type: kind, Code: se.Code, Message: se.Message},
		RequestID: st.id,
	})
	c.Data(se.Status, xmlType, append([]byte(xml.Header), body...))
	c.Abort()
}

type stsErrorResponse struct {
	XMLName   xml.Name     `xml:"https://sts.amazonaws.com/doc/2011-06-15/ ErrorResponse"`
	Error     stsErrorBody `xml:"Error"`
	RequestID string       `xml:"RequestId"`
}

type stsErrorBody struct {
	Type    string
	Code    string
	Message string
}

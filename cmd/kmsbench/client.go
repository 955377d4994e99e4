package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// apiFlags are the flags of every command that talks to kmsd.
type apiFlags struct {
	endpoint    string
	region      string
	credentials string
	profile     string
}

func (f *apiFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.endpoint, "endpoint", "http://127.0.0.1:8080", "kmsd `URL` (loopback only)")
	fs.StringVar(&f.region, "region", "us-east-1", "AWS `region` kmsd answers for")
	fs.StringVar(&f.credentials, "credentials", "var/admin-credentials",
		"AWS shared-credentials `file` (kmsd writes its bootstrap admin key in this form)")
	fs.StringVar(&f.profile, "profile", "default", "`profile` section of the credentials file")
}

// newClient builds an official AWS SDK KMS client for kmsd. Credentials come
// from the given file only (not from the environment or ~/.aws, so a stray
// AWS_ACCESS_KEY_ID cannot change what is measured). Retries are disabled:
// a retried request would hide an error and count its latency twice.
// maxConns sizes the connection pool so that every worker keeps its own
// keep-alive connection instead of reconnecting (Go's default keeps 2 idle
// connections per host).
func (f *apiFlags) newClient(ctx context.Context, maxConns int) (*kms.Client, error) {
	if err := checkLoopback(f.endpoint); err != nil {
		return nil, err
	}
	shared, err := config.LoadSharedConfigProfile(ctx, f.profile, func(o *config.LoadSharedConfigOptions) {
		o.CredentialsFiles = []string{f.credentials}
		o.ConfigFiles = []string{} // empty, not nil: nil means ~/.aws/config
	})
	if err != nil {
		return nil, fmt.Errorf("credentials file %s: %w", f.credentials, err)
	}
	if !shared.Credentials.HasKeys() {
		return nil, fmt.Errorf("credentials file %s: profile %q has no access key", f.credentials, f.profile)
	}
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = maxConns
		t.MaxIdleConnsPerHost = maxConns
		t.MaxConnsPerHost = 0
	})
	return kms.New(kms.Options{
		Region:       f.region,
		BaseEndpoint: aws.String(f.endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(
			shared.Credentials.AccessKeyID, shared.Credentials.SecretAccessKey, shared.Credentials.SessionToken),
		Retryer:    aws.NopRetryer{},
		HTTPClient: httpClient,
	}), nil
}

// checkLoopback refuses endpoints off this machine: kmsbench generates
// heavy load and must never aim it at a real service by mistake.
func checkLoopback(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("-endpoint %q: %w", endpoint, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("-endpoint %q: want http://HOST:PORT", endpoint)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return errors.New("-endpoint must be a loopback address (127.0.0.1, ::1 or localhost), got " + endpoint)
}

// serverPID returns pid when given, else the process listening on the
// endpoint's port.
func serverPID(pid int, endpoint string) (int, error) {
	if pid > 0 {
		return pid, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return 0, err
	}
	port, err := endpointPort(u.Host)
	if err != nil {
		return 0, fmt.Errorf("-endpoint %q has no port: %w", endpoint, err)
	}
	return pidListeningOn(port)
}

package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
)

// Globals are the flags every command accepts.
type Globals struct {
	EndpointURL string
	Region      string
	Profile     string
	Output      string
}

func (g *Globals) add(fs *flag.FlagSet) {
	fs.StringVar(&g.EndpointURL, "endpoint-url", g.EndpointURL, "KMS endpoint URL (default: AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL, the profile's endpoint_url, then AWS)")
	fs.StringVar(&g.Region, "region", g.Region, "AWS region (default: AWS_REGION, the profile's region, then us-east-1)")
	fs.StringVar(&g.Profile, "profile", g.Profile, "shared config profile (default: AWS_PROFILE, then default)")
	if g.Output == "" {
		g.Output = "json"
	}
	fs.StringVar(&g.Output, "output", g.Output, "output format of API commands: json or table")
}

func (g *Globals) check() error {
	if g.Output != "json" && g.Output != "table" {
		return fmt.Errorf("--output %q: want json or table", g.Output)
	}
	return nil
}

// kmsClient builds the SDK client the way the AWS CLI would configure it.
func (e *Env) kmsClient(ctx context.Context) (*awskms.Client, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if e.Profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(e.Profile))
	}
	if e.Region != "" {
		opts = append(opts, awsconfig.WithRegion(e.Region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		// The AWS CLI would refuse; a local kmsd does not care, and SigV4
		// needs some region.
		cfg.Region = "us-east-1"
	}
	return awskms.NewFromConfig(cfg, func(o *awskms.Options) {
		if e.EndpointURL != "" {
			o.BaseEndpoint = aws.String(e.EndpointURL)
		}
	}), nil
}

package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
)

// TLSConfig enables HTTPS. Both files are PEM; the certificate file may hold
// intermediate certificates after the leaf. They are read once, at start-up.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

func (t TLSConfig) enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// validateTLS checks the TLS settings and the rule that ties them to the
// listen address: SigV4 protects integrity, not confidentiality, so
// plaintexts, data keys and policies would cross the network in the clear.
// Plain HTTP is therefore accepted only on a loopback address, unless the
// operator says explicitly (http.allow_plaintext) that something in front
// (a TLS-terminating proxy, a service mesh) protects the traffic.
func (c *Config) validateTLS() []error {
	var errs []error
	t := c.HTTP.TLS
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		errs = append(errs, fmt.Errorf("http.tls.key_file: must be set with http.tls.cert_file"))
	case t.CertFile == "" && t.KeyFile != "":
		errs = append(errs, fmt.Errorf("http.tls.cert_file: must be set with http.tls.key_file"))
	case t.enabled():
		if _, err := loadServerTLS(t); err != nil {
			errs = append(errs, fmt.Errorf("http.tls: %w", err))
		}
	}
	if !t.enabled() && !c.HTTP.AllowPlaintext && checkListen(c.Listen) == nil && !loopbackListen(c.Listen) {
		errs = append(errs, fmt.Errorf("listen: %q is not a loopback address and TLS is off: set http.tls.cert_file and http.tls.key_file (or KMSD_TLS_CERT_FILE/KMSD_TLS_KEY_FILE), or http.allow_plaintext: true if a TLS proxy in front protects the traffic", c.Listen))
	}
	return errs
}

// loopbackListen reports whether addr binds to loopback only. An empty host
// binds every interface; host names other than localhost may resolve to
// anything, so they count as non-loopback.
func loopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false // reported by checkListen
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loadServerTLS loads the key pair and returns the server's TLS settings:
// TLS 1.2 or later (what the AWS SDKs require of AWS endpoints too); Go's
// default cipher suites for 1.2 are all AEAD with forward secrecy.
func loadServerTLS(t TLSConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}, nil
}

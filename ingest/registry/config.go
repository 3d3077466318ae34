package registry

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/floelake/floe/internal/conf"
)

// DefaultTimeout bounds one request to the registry unless timeout is set.
const DefaultTimeout = 10 * time.Second

// DefaultUnknownSchemaWait is how long the records of a schema id the
// registry does not know wait for it unless unknown_schema_wait is set.
const DefaultUnknownSchemaWait = 30 * time.Second

// Config is a pipeline's registry section: where the schema registry is and
// how to reach it.
//
//	registry:
//	  urls: [https://registry-1:8081, https://registry-2:8081]
//	  username: floe
//	  password_file: /etc/floe/registry-password
//	  tls:
//	    ca_file: /etc/floe/registry-ca.pem
//	  timeout: 10s
//	  unknown_schema_wait: 30s
type Config struct {
	// URLs are the registry's base URLs, http:// or https://, tried in
	// turn when one is unreachable. A base URL may have a path (a
	// registry behind a proxy at https://host/registry).
	URLs []string `yaml:"urls"`
	// TLS configures https:// URLs. With no ca_file the system's roots
	// verify the registry's certificate.
	TLS TLSConfig `yaml:"tls"`
	// Username and Password (or PasswordFile, whose content, less a
	// trailing newline, is the password) are sent as HTTP basic auth:
	// for Confluent Cloud, the API key and secret.
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	// Timeout bounds one request; zero is DefaultTimeout.
	Timeout conf.Duration `yaml:"timeout"`
	// UnknownSchemaWait is how long the records of a schema id the
	// registry does not know wait for it (the pipeline pauses and asks
	// again) before they are dead letters: a registry replica that has
	// not caught up yet answers "not found" for a schema a producer has
	// just registered with another. Unset: DefaultUnknownSchemaWait; 0: a
	// dead letter at once. Only an id larger than every id the pipeline
	// has resolved waits (registry ids increase; a smaller unknown one is
	// no schema a replica lags behind on).
	UnknownSchemaWait Wait `yaml:"unknown_schema_wait"`
}

// Wait is a duration for which zero is a setting of its own, unlike a
// conf.Duration's zero, which stands for a default: the zero Wait is
// unset, and WaitFor(0) is set to no wait. It reads "30s" or "0s" from
// YAML and the environment, as a conf.Duration does.
type Wait struct {
	d   time.Duration
	set bool
}

// WaitFor returns a Wait set to d.
func WaitFor(d time.Duration) Wait { return Wait{d: d, set: true} }

// IsSet reports whether the wait was set (to zero, possibly).
func (w Wait) IsSet() bool { return w.set }

// Or returns the wait, or def when it is unset.
func (w Wait) Or(def time.Duration) time.Duration {
	if !w.set {
		return def
	}
	return w.d
}

func (w Wait) String() string {
	if !w.set {
		return "unset"
	}
	return w.d.String()
}

// Describe says what a wait looks like, for error messages.
func (Wait) Describe() string { return conf.Duration(0).Describe() }

// UnmarshalText parses a Go duration string; an empty one leaves the wait
// unset, as MarshalText writes an unset one.
func (w *Wait) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*w = Wait{}
		return nil
	}
	var d conf.Duration
	if err := d.UnmarshalText(b); err != nil {
		return err
	}
	*w = WaitFor(d.D())
	return nil
}

// MarshalText formats the wait; an unset one is empty.
func (w Wait) MarshalText() ([]byte, error) {
	if !w.set {
		return nil, nil
	}
	return []byte(w.d.String()), nil
}

// UnknownWait is how long the records of a schema id the registry does not
// know wait for it: unknown_schema_wait, or its default.
func (c Config) UnknownWait() time.Duration { return c.UnknownSchemaWait.Or(DefaultUnknownSchemaWait) }

// TLSConfig configures the TLS client of https:// URLs.
type TLSConfig struct {
	// CAFile is a PEM file of the CA certificates that sign the registry's
	// certificate; empty: the system's.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key, for a
	// registry that authenticates clients by certificate (mutual TLS).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the registry's certificate must be for, when
	// it is not the URL's host.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any certificate the registry presents.
	// For tests only: anyone between floe and the registry can then
	// answer for it.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

func (t TLSConfig) set() bool {
	return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify
}

// Enabled reports whether the section names a registry. A pipeline whose
// format needs one (avro, protobuf) requires it; the composer checks that.
func (c Config) Enabled() bool { return len(c.URLs) > 0 }

// WithDefaults returns c with a zero timeout set to DefaultTimeout.
func (c Config) WithDefaults() Config {
	if c.Timeout == 0 {
		c.Timeout = conf.Duration(DefaultTimeout)
	}
	return c
}

// Validate reports every bad field, named relative to the registry section.
// The zero Config (no registry) is valid; one that sets anything must list
// its URLs. Files are not read here but by New.
func (c Config) Validate() error {
	var p conf.Problems
	zero := len(c.URLs) == 0 && !c.TLS.set() && c.Username == "" && c.Password == "" && c.PasswordFile == "" && c.Timeout == 0 &&
		!c.UnknownSchemaWait.IsSet()
	if zero {
		return nil
	}
	if len(c.URLs) == 0 {
		p.Addf("urls", "must list at least one schema registry URL, such as http://localhost:8081")
	}
	https := false
	for i, raw := range c.URLs {
		field := fmt.Sprintf("urls[%d]", i)
		u, err := url.Parse(raw)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			p.Addf(field, "must be an http:// or https:// URL such as http://localhost:8081, got %q", raw)
			continue
		case u.User != nil:
			// The URL is in every error message and log line.
			p.Addf(field, "must not hold credentials (they would show in logs and errors); set username and password (or password_file)")
		case u.RawQuery != "" || u.Fragment != "":
			p.Addf(field, "must be the registry's base URL, with no query or fragment, got %q", raw)
		}
		if u.Scheme == "https" {
			https = true
		}
	}
	if len(c.URLs) > 0 && !https && c.TLS.set() {
		p.Addf("tls", "applies to https:// URLs only, and no URL is https://")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		p.Addf("tls", "cert_file and key_file must be given together")
	}
	if c.TLS.InsecureSkipVerify && c.TLS.CAFile != "" {
		p.Addf("tls.insecure_skip_verify", "skips the verification ca_file is for; set one of them")
	}
	if c.Password != "" && c.PasswordFile != "" {
		p.Addf("password_file", "cannot be combined with password; set one of them")
	}
	if c.Username == "" && (c.Password != "" || c.PasswordFile != "") {
		p.Addf("username", "is required with a password")
	}
	if c.Username != "" && c.Password == "" && c.PasswordFile == "" {
		p.Addf("username", "needs password or password_file")
	}
	if c.Timeout < 0 {
		p.Addf("timeout", "must be a positive duration such as 10s (or 0 for %s), got %s", DefaultTimeout, c.Timeout)
	}
	if c.UnknownSchemaWait.Or(0) < 0 {
		p.Addf("unknown_schema_wait", "must be a positive duration such as 30s (or 0: a record of an unknown schema id is a dead letter at once), got %s", c.UnknownSchemaWait)
	}
	return p.Err()
}

// password returns the configured password, reading password_file.
func (c Config) password() (string, error) {
	if c.PasswordFile == "" {
		return c.Password, nil
	}
	b, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("registry: password_file: %w", err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("registry: password_file: %s holds no password", c.PasswordFile)
	}
	return pw, nil
}

// clientTLS builds the TLS client configuration; nil when nothing is set
// (https:// URLs then use the system's roots).
func (t TLSConfig) clientTLS() (*tls.Config, error) {
	if !t.set() {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in by the operator
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("registry: tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("registry: tls.ca_file: %s holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("registry: tls.cert_file and key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

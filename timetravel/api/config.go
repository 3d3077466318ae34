package api

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/floelake/floe/internal/conf"
)

// Config is the node.api section: where the API listens, its TLS, its
// tokens and its limits.
type Config struct {
	// GRPCAddr serves the gRPC API (e.g. 127.0.0.1:7070); empty, the
	// default, serves none (HTTP/JSON on node.http_addr stays).
	GRPCAddr string `yaml:"grpc_addr"`
	// TLS, when it names a certificate and key, serves gRPC and HTTP
	// (node.http_addr: the API, the console, the REST catalog, /metrics)
	// over TLS.
	TLS TLSConfig `yaml:"tls"`
	// Tokens are the bearer tokens the API accepts. With none, the API
	// is open to whoever reaches the node (logged at start-up): set
	// tokens before binding to anything but localhost.
	Tokens []Token `yaml:"tokens"`
	// MaxPageSize bounds a page of ListSnapshots.
	MaxPageSize int `yaml:"max_page_size"`
	// MaxRows and MaxBytes bound what one query or changes call returns;
	// past them the answer is truncated and says so.
	MaxRows  int64         `yaml:"max_rows"`
	MaxBytes conf.ByteSize `yaml:"max_bytes"`
	// QueryTimeout bounds one query's wall time.
	QueryTimeout conf.Duration `yaml:"query_timeout"`
	// MaxConcurrentQueries bounds the queries and changes calls running
	// at once; one more waits up to QueueTimeout, then gets 429.
	MaxConcurrentQueries int           `yaml:"max_concurrent_queries"`
	QueueTimeout         conf.Duration `yaml:"queue_timeout"`
}

// TLSConfig names a PEM certificate and key.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled reports whether TLS is configured.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// Token is one bearer token: its value inline or in a file (one line, the
// token), a name for the logs, and a scope.
type Token struct {
	Name  string `yaml:"name"`
	Token string `yaml:"token"`
	File  string `yaml:"token_file"`
	// Scope is read (every call that changes nothing) or admin (every
	// call).
	Scope string `yaml:"scope"`
}

// Scopes.
const (
	ScopeRead  = "read"
	ScopeAdmin = "admin"
)

// DefaultConfig is the API with no gRPC listener, no tokens and limits
// that keep one query from exhausting a node. A zero limit in a Config
// means its default (WithDefaults).
func DefaultConfig() Config {
	return Config{
		MaxPageSize:          1000,
		MaxRows:              1_000_000,
		MaxBytes:             256 << 20,
		QueryTimeout:         conf.Duration(60 * time.Second),
		MaxConcurrentQueries: 4,
		QueueTimeout:         conf.Duration(5 * time.Second),
	}
}

// WithDefaults returns c with every zero limit set to its default.
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	if c.MaxPageSize == 0 {
		c.MaxPageSize = d.MaxPageSize
	}
	if c.MaxRows == 0 {
		c.MaxRows = d.MaxRows
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = d.MaxBytes
	}
	if c.QueryTimeout == 0 {
		c.QueryTimeout = d.QueryTimeout
	}
	if c.MaxConcurrentQueries == 0 {
		c.MaxConcurrentQueries = d.MaxConcurrentQueries
	}
	if c.QueueTimeout == 0 {
		c.QueueTimeout = d.QueueTimeout
	}
	return c
}

// Validate reports every bad field (a zero limit is its default).
func (c Config) Validate() error {
	c = c.WithDefaults()
	var p conf.Problems
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		p.Addf("tls", "needs both cert_file and key_file (or neither)")
	}
	names := map[string]bool{}
	for i, t := range c.Tokens {
		at := fmt.Sprintf("tokens[%d]", i)
		if t.Name == "" {
			p.Addf(at+".name", "is required (it names the token in the logs)")
		} else if names[t.Name] {
			p.Addf(at+".name", "duplicate token name %q", t.Name)
		}
		names[t.Name] = true
		if (t.Token == "") == (t.File == "") {
			p.Addf(at, "needs exactly one of token and token_file")
		}
		if t.Token != "" && len(t.Token) < 16 {
			p.Addf(at+".token", "must be at least 16 characters")
		}
		if t.Scope != ScopeRead && t.Scope != ScopeAdmin {
			p.Addf(at+".scope", "must be read or admin; got %q", t.Scope)
		}
	}
	if c.MaxPageSize < 1 {
		p.Addf("max_page_size", "must be at least 1, got %d", c.MaxPageSize)
	}
	if c.MaxRows < 1 {
		p.Addf("max_rows", "must be at least 1, got %d", c.MaxRows)
	}
	if c.MaxBytes < 1<<20 {
		p.Addf("max_bytes", "must be at least 1MiB, got %d", c.MaxBytes)
	}
	if c.QueryTimeout.D() <= 0 {
		p.Addf("query_timeout", "must be a positive duration, got %s", c.QueryTimeout)
	}
	if c.MaxConcurrentQueries < 1 {
		p.Addf("max_concurrent_queries", "must be at least 1, got %d", c.MaxConcurrentQueries)
	}
	if c.QueueTimeout.D() < 0 {
		p.Addf("queue_timeout", "must not be negative, got %s", c.QueueTimeout)
	}
	return p.Err()
}

// loadTokens returns the tokens with the files' tokens read.
func loadTokens(ts []Token) ([]Token, error) {
	out := make([]Token, len(ts))
	for i, t := range ts {
		if t.File != "" {
			b, err := os.ReadFile(t.File)
			if err != nil {
				return nil, fmt.Errorf("api: token %q: %w", t.Name, err)
			}
			t.Token = strings.TrimSpace(string(b))
			if len(t.Token) < 16 {
				return nil, fmt.Errorf("api: token %q: %s holds %d characters; a token needs at least 16", t.Name, t.File, len(t.Token))
			}
		}
		out[i] = t
	}
	return out, nil
}

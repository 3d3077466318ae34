package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// serverTLS builds the TLS config of the raft transport and the API server
// from cluster.tls: nil when no certificate is configured. With a CA, peers
// must present a certificate it signed (mutual TLS), and it verifies the
// peers this node dials.
func serverTLS(c TLSConfig) (*tls.Config, error) {
	if c.CertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("cluster.tls: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pool, err := LoadCA(c.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs, cfg.ClientCAs, cfg.ClientAuth = pool, pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// clientTLS is the config this node dials other members' APIs with: the
// server config's certificate (presented for mutual TLS) and CA.
func clientTLS(c TLSConfig) (*tls.Config, error) {
	cfg, err := serverTLS(c)
	if err != nil || cfg == nil {
		return cfg, err
	}
	out := &tls.Config{Certificates: cfg.Certificates, RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	return out, nil
}

// ClientTLS is the TLS config the CLI dials a member's API with; nil when
// the cluster does not use TLS.
func ClientTLS(c TLSConfig) (*tls.Config, error) { return clientTLS(c) }

// LoadCA reads a PEM file of CA certificates.
func LoadCA(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cluster.tls.ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("cluster.tls.ca_file: %s holds no PEM certificate", path)
	}
	return pool, nil
}

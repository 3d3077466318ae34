package raftstore

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

const (
	// transportMaxPool is how many idle connections to each peer the
	// transport keeps.
	transportMaxPool = 3
	// transportTimeout bounds each RPC's I/O (scaled up for InstallSnapshot
	// by raft). A dead peer whose port is closed fails at once; this only
	// matters for a peer that is reachable but hung.
	transportTimeout = 10 * time.Second
	// transportMaxInFlight is 1: raft replicates to each follower one
	// AppendEntries at a time, never through its pipeline, which can
	// deadlock (see "Replication without raft's pipeline" in doc.go).
	transportMaxInFlight = 1
)

// streamLayer is a raft.StreamLayer over TCP, optionally TLS. raft's own
// TCPStreamLayer cannot do TLS and insists on an IP advertise address.
type streamLayer struct {
	net.Listener
	advertise net.Addr
	tls       *tls.Config
}

// advertiseAddr is a net.Addr for a host:port that may be a DNS name.
type advertiseAddr string

func (a advertiseAddr) Network() string { return "tcp" }
func (a advertiseAddr) String() string  { return string(a) }

// newNetworkTransport listens on cfg.BindAddr and returns the transport and
// the address this node advertises.
func newNetworkTransport(cfg Config, logger hclog.Logger) (*raft.NetworkTransport, raft.ServerAddress, error) {
	var (
		ln  net.Listener
		err error
	)
	if cfg.TLS != nil {
		ln, err = tls.Listen("tcp", cfg.BindAddr, cfg.TLS)
	} else {
		ln, err = net.Listen("tcp", cfg.BindAddr)
	}
	if err != nil {
		return nil, "", fmt.Errorf("raftstore: listen on BindAddr %s: %w", cfg.BindAddr, err)
	}
	adv := cfg.AdvertiseAddr
	if adv == "" {
		// BindAddr's host is a concrete address (Validate checked); take the
		// port actually bound, for BindAddr with port 0.
		host, _, _ := net.SplitHostPort(cfg.BindAddr)
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		adv = net.JoinHostPort(host, port)
	}
	stream := &streamLayer{Listener: ln, advertise: advertiseAddr(adv), tls: cfg.TLS}
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:          stream,
		MaxPool:         transportMaxPool,
		MaxRPCsInFlight: transportMaxInFlight,
		Timeout:         transportTimeout,
		Logger:          logger,
	})
	return trans, raft.ServerAddress(adv), nil
}

// Addr is the advertised address: raft's NetworkTransport uses it as
// LocalAddr, which is what the cluster configuration records.
func (s *streamLayer) Addr() net.Addr { return s.advertise }

// Dial connects to a peer; with TLS the handshake is bounded by the same
// timeout, so a peer that accepts but never answers cannot stall replication.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	if s.tls == nil {
		return d.Dial("tcp", string(address))
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	td := &tls.Dialer{NetDialer: d, Config: s.tls}
	return td.DialContext(ctx, "tcp", string(address))
}

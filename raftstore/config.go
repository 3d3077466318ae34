package raftstore

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Defaults for a Config field left at its zero value.
//
// The timeouts aim at a new leader within ~2 s of a leader's death on a LAN or
// loopback (measured by TestFailoverTimingTCP): a follower notices a silent
// leader after HeartbeatTimeout..3×HeartbeatTimeout (raft re-arms a random
// timer in [HT, 2·HT) and only fires if the last contact is older than HT),
// then one pre-vote and one vote round trip; a split vote costs another
// ElectionTimeout..2×ElectionTimeout. The leader heartbeats every HT/10, so
// 500 ms tolerates GC and fsync stalls of a few hundred milliseconds without
// spurious elections. Raft's own defaults (1 s / 1 s) give 2–4 s. The lease
// equals HeartbeatTimeout: with 250 ms, a leader on two busy cores stepped
// down now and then without any failure (seen in the chaos test); a longer
// lease only delays how soon a cut-off leader notices, never safety.
const (
	DefaultHeartbeatTimeout   = 500 * time.Millisecond
	DefaultElectionTimeout    = 500 * time.Millisecond
	DefaultLeaderLeaseTimeout = 500 * time.Millisecond
	DefaultCommitTimeout      = 50 * time.Millisecond

	// The ledger's state is small, so snapshots are cheap and frequent ones
	// keep raft.db small (bbolt reuses freed pages but never shrinks the file).
	DefaultSnapshotThreshold = 4096
	DefaultSnapshotInterval  = 30 * time.Second
	DefaultTrailingLogs      = 1024

	// SnapshotsRetained is how many snapshots the file snapshot store keeps.
	SnapshotsRetained = 2
)

// In-memory nodes (OpenInMemory) use faster timers: there is no disk or
// network, and tests want elections in well under a second.
const (
	inmemHeartbeatTimeout   = 100 * time.Millisecond
	inmemElectionTimeout    = 100 * time.Millisecond
	inmemLeaderLeaseTimeout = 50 * time.Millisecond
	inmemCommitTimeout      = 5 * time.Millisecond
)

// Config configures a Node. The zero value of every optional field means its
// default (see the Default* constants).
type Config struct {
	// NodeID is the stable identity of this node in the raft configuration.
	// It must never change for a DataDir (Open checks DataDir/node-id) and
	// must be unique in the cluster. Required: non-empty, no whitespace.
	NodeID string

	// BindAddr is host:port the raft TCP transport listens on, e.g.
	// 127.0.0.1:7001. Port 0 picks a free port (then AdvertiseAddr defaults
	// to the port actually bound). Required for Open.
	BindAddr string

	// AdvertiseAddr is host:port other members dial to reach this node; it is
	// what the cluster configuration records. Default: BindAddr. Required when
	// BindAddr's host is unspecified (0.0.0.0, ::, empty).
	AdvertiseAddr string

	// DataDir holds the raft log, stable store and snapshots (see doc.go for
	// the layout). Required for Open.
	DataDir string

	// Bootstrap forms a new single-node cluster (this node as the only voter)
	// if DataDir holds no raft state yet. It is ignored when state exists, so
	// it is safe to leave set on the first node across restarts — but see
	// doc.go: a node that lost its DataDir must not come back with Bootstrap.
	Bootstrap bool

	// TLS, if set, runs the transport over TLS with this config for both the
	// listening and the dialing side: it needs Certificates (or
	// GetCertificate), and for mutual TLS ClientAuth and ClientCAs. When
	// dialing, ServerName defaults to the host of the peer's address, so
	// certificates must carry the advertised host (IP SAN for an IP).
	TLS *tls.Config

	// Raft timers; see the Default* constants for the trade-offs.
	// LeaderLeaseTimeout ≤ HeartbeatTimeout ≤ ElectionTimeout.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration

	// SnapshotThreshold is how many log entries since the last snapshot
	// trigger a new one; SnapshotInterval is how often (randomised up to 2×)
	// that is checked.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration

	// TrailingLogs is how many entries stay in the log behind a snapshot, so
	// a slightly lagging follower catches up from the log rather than by
	// InstallSnapshot. (Not in the original brief: needed to bound raft.db
	// and to test InstallSnapshot.)
	TrailingLogs uint64

	// Logger receives raft's logs (adapted from hclog). Default
	// slog.Default().
	Logger *slog.Logger
}

// withDefaults returns c with every zero optional field set to its default.
func (c Config) withDefaults(inMemory bool) Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if inMemory {
		def(&c.HeartbeatTimeout, inmemHeartbeatTimeout)
		def(&c.ElectionTimeout, inmemElectionTimeout)
		def(&c.LeaderLeaseTimeout, inmemLeaderLeaseTimeout)
		def(&c.CommitTimeout, inmemCommitTimeout)
	} else {
		def(&c.HeartbeatTimeout, DefaultHeartbeatTimeout)
		def(&c.ElectionTimeout, DefaultElectionTimeout)
		def(&c.LeaderLeaseTimeout, DefaultLeaderLeaseTimeout)
		def(&c.CommitTimeout, DefaultCommitTimeout)
	}
	def(&c.SnapshotInterval, DefaultSnapshotInterval)
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = DefaultTrailingLogs
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports the first invalid field as a *ConfigError naming the
// field, its value and the allowed values. Zero optional fields are valid
// (they take their defaults).
func (c *Config) Validate() error {
	return c.withDefaults(false).validate(false)
}

func (c Config) validate(inMemory bool) error {
	bad := func(field string, value any, allowed string, args ...any) error {
		return &ConfigError{Field: field, Value: fmt.Sprintf("%q", fmt.Sprint(value)), Allowed: fmt.Sprintf(allowed, args...)}
	}
	if c.NodeID == "" || strings.ContainsFunc(c.NodeID, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) {
		return bad("NodeID", c.NodeID, "must be non-empty printable text without whitespace, stable for the DataDir and unique in the cluster")
	}
	if !inMemory {
		if c.BindAddr == "" {
			return bad("BindAddr", c.BindAddr, "required: host:port to listen on, e.g. 127.0.0.1:7001")
		}
		host, _, err := splitHostPort(c.BindAddr, true)
		if err != nil {
			return bad("BindAddr", c.BindAddr, "must be host:port with a port in 0..65535 (%v)", err)
		}
		if c.AdvertiseAddr == "" {
			if unspecifiedHost(host) {
				return bad("AdvertiseAddr", c.AdvertiseAddr, "required when BindAddr %q listens on all interfaces: the host:port peers dial", c.BindAddr)
			}
		} else {
			ahost, _, err := splitHostPort(c.AdvertiseAddr, false)
			if err != nil {
				return bad("AdvertiseAddr", c.AdvertiseAddr, "must be host:port with a port in 1..65535 (%v)", err)
			}
			if unspecifiedHost(ahost) {
				return bad("AdvertiseAddr", c.AdvertiseAddr, "must name a host peers can dial, not an unspecified address")
			}
		}
		if c.DataDir == "" {
			return bad("DataDir", c.DataDir, "required: directory for raft.db and snapshots/")
		}
		if c.TLS != nil && len(c.TLS.Certificates) == 0 && c.TLS.GetCertificate == nil {
			return bad("TLS", "no certificates", "TLS.Certificates or TLS.GetCertificate must be set (the same config serves and dials)")
		}
	}
	const minTimer = 5 * time.Millisecond
	switch {
	case c.HeartbeatTimeout < minTimer:
		return bad("HeartbeatTimeout", c.HeartbeatTimeout, "must be ≥ %v (0 means %v)", minTimer, DefaultHeartbeatTimeout)
	case c.ElectionTimeout < c.HeartbeatTimeout:
		return bad("ElectionTimeout", c.ElectionTimeout, "must be ≥ HeartbeatTimeout (%v) (0 means %v)", c.HeartbeatTimeout, DefaultElectionTimeout)
	case c.LeaderLeaseTimeout < minTimer || c.LeaderLeaseTimeout > c.HeartbeatTimeout:
		return bad("LeaderLeaseTimeout", c.LeaderLeaseTimeout, "must be in [%v, HeartbeatTimeout=%v] (0 means %v)", minTimer, c.HeartbeatTimeout, DefaultLeaderLeaseTimeout)
	case c.CommitTimeout < time.Millisecond:
		return bad("CommitTimeout", c.CommitTimeout, "must be ≥ 1ms (0 means %v)", DefaultCommitTimeout)
	case c.SnapshotInterval < minTimer:
		return bad("SnapshotInterval", c.SnapshotInterval, "must be ≥ %v (0 means %v)", minTimer, DefaultSnapshotInterval)
	}
	return nil
}

// splitHostPort splits a host:port and checks the port's range.
func splitHostPort(addr string, allowZeroPort bool) (host string, port int, err error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 || (port == 0 && !allowZeroPort) {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return host, port, nil
}

func unspecifiedHost(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

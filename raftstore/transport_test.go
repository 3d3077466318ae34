package raftstore

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// selfSigned returns a TLS config with a fresh self-signed certificate for
// 127.0.0.1 that trusts only itself, on both the server and the client side.
func selfSigned(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "floe raft test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}
}

func TestTLSTransport(t *testing.T) {
	cfg := Config{TLS: selfSigned(t)}
	nodes := newTCPCluster(t, cfg, "n1", "n2")
	leader := waitLeader(t, 10*time.Second, tcpNodes(nodes)...)
	applyN(t, leader, "a", 100)
	waitConverged(t, 10*time.Second, 100, tcpFSMs(nodes)...)

	// A node with a certificate the cluster does not trust is added to the
	// configuration but never receives anything.
	c3 := Config{NodeID: "n3", BindAddr: freeAddr(t), DataDir: filepath.Join(t.TempDir(), "n3"), TLS: selfSigned(t), Logger: testLogger(t)}
	stranger := &tcpNode{cfg: c3}
	stranger.open(t)
	if err := leader.AddVoter(ctxTimeout(t, 10*time.Second), "n3", stranger.n.Addr()); err != nil {
		t.Fatal(err) // two of three voters suffice to commit it
	}
	applyN(t, leader, "b", 10)
	time.Sleep(time.Second)
	if got := stranger.fsm.len(); got != 0 {
		t.Fatalf("untrusted node received %d entries", got)
	}
	if id, _ := stranger.n.Leader(); id != "" {
		t.Fatalf("untrusted node knows leader %q", id)
	}
	if err := leader.RemoveServer(ctxTimeout(t, 10*time.Second), "n3"); err != nil {
		t.Fatal(err)
	}
	applyN(t, leader, "c", 10)
	waitConverged(t, 10*time.Second, 120, tcpFSMs(nodes)...)
}

// TestTransportReplicatesWithoutPipeline checks that the transport refuses
// raft's pipelined replication, so raft replicates one AppendEntries at a
// time: its pipeline can deadlock when a follower answers with a newer term
// (see transportMaxInFlight), leaving the follower without entries and the
// leader's Shutdown hanging.
func TestTransportReplicatesWithoutPipeline(t *testing.T) {
	trans, addr, err := newNetworkTransport(Config{BindAddr: "127.0.0.1:0"}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer trans.Close()
	p, err := trans.AppendEntriesPipeline("peer", addr)
	if !errors.Is(err, raft.ErrPipelineReplicationNotSupported) {
		if p != nil {
			_ = p.Close()
		}
		t.Fatalf("AppendEntriesPipeline: got %v, want %v", err, raft.ErrPipelineReplicationNotSupported)
	}
}

package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/apache/iceberg-go"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/internal/schema"
	clusterv1 "github.com/floelake/floe/proto/floe/cluster/v1"
	"github.com/floelake/floe/raftstore"
)

// fakeService records what it is called with and answers with its funcs
// (nil: success).
type fakeService struct {
	mu     sync.Mutex
	cmds   [][]byte
	joins  []JoinRequest
	leaves []string

	apply  func(ctx context.Context, cmd []byte) (commit.ApplyResult, error)
	join   func(ctx context.Context, req JoinRequest) error
	leave  func(ctx context.Context, nodeID string) error
	status func(ctx context.Context) (Status, error)
	evolve func(ctx context.Context, req EvolveRequest) ([]string, error)
}

func (f *fakeService) Apply(ctx context.Context, cmd []byte) (commit.ApplyResult, error) {
	f.mu.Lock()
	f.cmds = append(f.cmds, cmd)
	f.mu.Unlock()
	if f.apply == nil {
		return commit.ApplyResult{}, nil
	}
	return f.apply(ctx, cmd)
}

func (f *fakeService) Join(ctx context.Context, req JoinRequest) error {
	f.mu.Lock()
	f.joins = append(f.joins, req)
	f.mu.Unlock()
	if f.join == nil {
		return nil
	}
	return f.join(ctx, req)
}

func (f *fakeService) Leave(ctx context.Context, nodeID string) error {
	f.mu.Lock()
	f.leaves = append(f.leaves, nodeID)
	f.mu.Unlock()
	if f.leave == nil {
		return nil
	}
	return f.leave(ctx, nodeID)
}

func (f *fakeService) EvolveSchema(ctx context.Context, req EvolveRequest) ([]string, error) {
	if f.evolve == nil {
		return nil, nil
	}
	return f.evolve(ctx, req)
}

func (f *fakeService) Status(ctx context.Context) (Status, error) {
	if f.status == nil {
		return Status{}, nil
	}
	return f.status(ctx)
}

// failWith makes every method of f fail with err.
func (f *fakeService) failWith(err error) {
	f.apply = func(context.Context, []byte) (commit.ApplyResult, error) { return commit.ApplyResult{}, err }
	f.join = func(context.Context, JoinRequest) error { return err }
	f.leave = func(context.Context, string) error { return err }
	f.status = func(context.Context) (Status, error) { return Status{}, err }
}

// serveRPC serves svc on 127.0.0.1 and returns the address and the server.
func serveRPC(t *testing.T, svc Service, tlsCfg *tls.Config) (string, *grpc.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := NewServer(svc, tlsCfg, nil)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String(), srv
}

func dialRPC(t *testing.T, addr string, tlsCfg *tls.Config) *Client {
	t.Helper()
	c, err := Dial(addr, tlsCfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// testTLS returns a server config with a self-signed certificate for
// 127.0.0.1 that requires client certificates (mutual TLS, as cluster.tls
// with a CA), and a client config that trusts and presents it.
func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "floe test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	server = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	client = &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}
	return server, client
}

func TestRPCRoundTrip(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	for name, cfg := range map[string]struct{ server, client *tls.Config }{
		"plain": {},
		"tls":   {serverTLS, clientTLS},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			want := commit.ApplyResult{
				Type:   commit.CmdAssign,
				Epochs: map[commit.PartitionKey]uint64{{Pipeline: "p", Topic: "t", Partition: 0}: 2, {Pipeline: "p", Topic: "t", Partition: 1}: 5},
			}
			svc := &fakeService{
				apply:  func(context.Context, []byte) (commit.ApplyResult, error) { return want, nil },
				status: func(context.Context) (Status, error) { return fullStatus(), nil },
			}
			addr, _ := serveRPC(t, svc, cfg.server)
			c := dialRPC(t, addr, cfg.client)
			require.Equal(t, addr, c.Addr())

			cmd, err := commit.EncodeAssign(commit.Assign{Owners: map[commit.PartitionKey]string{{Pipeline: "p", Topic: "t", Partition: 0}: "n1"}})
			require.NoError(t, err)
			got, err := c.Apply(ctx, cmd)
			require.NoError(t, err)
			require.Equal(t, want, got)

			req := JoinRequest{NodeID: "n3", RaftAddr: "10.0.0.3:7946", APIAddr: "10.0.0.3:7947"}
			require.NoError(t, c.Join(ctx, req))
			// The API address is optional.
			require.NoError(t, c.Join(ctx, JoinRequest{NodeID: "n4", RaftAddr: "10.0.0.4:7946"}))
			require.NoError(t, c.Leave(ctx, "n3"))

			st, err := c.Status(ctx)
			require.NoError(t, err)
			require.Equal(t, fullStatus(), st)

			svc.mu.Lock()
			defer svc.mu.Unlock()
			require.Equal(t, [][]byte{cmd}, svc.cmds)
			require.Equal(t, []JoinRequest{req, {NodeID: "n4", RaftAddr: "10.0.0.4:7946"}}, svc.joins)
			require.Equal(t, []string{"n3"}, svc.leaves)
		})
	}
}

// TestRPCApplyLedgerErrors: a command the ledger rejected is a result, and
// its error comes back as the ledger's own.
func TestRPCApplyLedgerErrors(t *testing.T) {
	var res commit.ApplyResult
	svc := &fakeService{apply: func(context.Context, []byte) (commit.ApplyResult, error) { return res, nil }}
	addr, _ := serveRPC(t, svc, nil)
	c := dialRPC(t, addr, nil)

	for _, ledgerErr := range []error{
		&commit.StaleEpochError{Pipeline: "p", Topic: "t", Partition: 3, Have: 4, Want: 5},
		&commit.NotOwnerError{Pipeline: "p", Topic: "t", Partition: 3, Owner: "n1", Proposer: "n2"},
		&commit.OffsetGapError{Table: "db.t", Topic: "t", Partition: 3, Want: 100, Got: 90},
		&commit.OffsetRegressionError{Table: "db.t", Topic: "t", Partition: 3, Have: 100, Got: 90},
		fmt.Errorf("%w: %q", commit.ErrUnknownMember, "n9"),
		fmt.Errorf("%w: unknown command type %q", commit.ErrBadCommand, "x"),
		fmt.Errorf("%w: table %q is fed by %q, not %q", commit.ErrPipelineMismatch, "db.t", "a", "b"),
		fmt.Errorf("%w: %d", commit.ErrUnknownSegment, 7),
		fmt.Errorf("%w: segment %d", commit.ErrNotCovered, 7),
		fmt.Errorf("%w: segment %d", commit.ErrPartialCommit, 7),
		fmt.Errorf("%w: entry %d after %d", commit.ErrStaleIndex, 3, 4),
		errors.New("not a ledger error"),
	} {
		t.Run(ledgerErr.Error(), func(t *testing.T) {
			res = commit.ApplyResult{Type: commit.CmdProposeSegment, Err: ledgerErr}
			got, err := c.Apply(context.Background(), []byte(`{}`))
			require.NoError(t, err)
			require.Equal(t, commit.CmdProposeSegment, got.Type)
			require.EqualError(t, got.Err, ledgerErr.Error())
			if errors.Unwrap(ledgerErr) != nil || errors.As(ledgerErr, new(*commit.StaleEpochError)) ||
				errors.As(ledgerErr, new(*commit.NotOwnerError)) || errors.As(ledgerErr, new(*commit.OffsetGapError)) ||
				errors.As(ledgerErr, new(*commit.OffsetRegressionError)) {
				// Every error the ledger defines comes back equal.
				require.Equal(t, res, got)
			}
		})
	}

	// Typed errors: errors.As with every field.
	res = commit.ApplyResult{Err: fmt.Errorf("wrapped: %w", &commit.OffsetGapError{Table: "db.t", Topic: "t", Partition: 1, Want: 5, Got: 9})}
	got, err := c.Apply(context.Background(), []byte(`{}`))
	require.NoError(t, err)
	var gap *commit.OffsetGapError
	require.ErrorAs(t, got.Err, &gap)
	require.Equal(t, commit.OffsetGapError{Table: "db.t", Topic: "t", Partition: 1, Want: 5, Got: 9}, *gap)
	require.Equal(t, commit.ClassFatal, commit.Classify(got.Err))
}

// callAll calls every method of c and returns their errors by name.
func callAll(c *Client) map[string]error {
	ctx := context.Background()
	_, applyErr := c.Apply(ctx, []byte(`{}`))
	_, statusErr := c.Status(ctx)
	return map[string]error{
		"apply":  applyErr,
		"join":   c.Join(ctx, JoinRequest{NodeID: "n3", RaftAddr: "10.0.0.3:7946"}),
		"leave":  c.Leave(ctx, "n3"),
		"status": statusErr,
	}
}

func TestRPCServiceErrors(t *testing.T) {
	svc := &fakeService{}
	addr, _ := serveRPC(t, svc, nil)
	c := dialRPC(t, addr, nil)

	for _, tc := range []struct {
		name  string
		err   error
		code  codes.Code
		is    []error
		isNot []error
		check func(t *testing.T, err error)
	}{
		{
			name:  "not leader",
			err:   &raftstore.NotLeaderError{LeaderID: "n2", LeaderAddr: "10.0.0.2:7946"},
			code:  codes.FailedPrecondition,
			is:    []error{raftstore.ErrNotLeader},
			isNot: []error{raftstore.ErrOutcomeUnknown, ErrUnreachable},
			check: func(t *testing.T, err error) {
				var nl *raftstore.NotLeaderError
				require.ErrorAs(t, err, &nl)
				require.Equal(t, raftstore.NotLeaderError{LeaderID: "n2", LeaderAddr: "10.0.0.2:7946"}, *nl)
				var cnl *NotLeaderError
				require.ErrorAs(t, err, &cnl)
				require.Equal(t, NotLeaderError{LeaderID: "n2", LeaderAddr: "10.0.0.2:7946"}, *cnl)
			},
		},
		{
			name: "not leader, with its API address, wrapped",
			err:  fmt.Errorf("forward: %w", &NotLeaderError{LeaderID: "n2", LeaderAddr: "10.0.0.2:7946", LeaderAPIAddr: "10.0.0.2:7947"}),
			code: codes.FailedPrecondition,
			is:   []error{raftstore.ErrNotLeader},
			check: func(t *testing.T, err error) {
				var cnl *NotLeaderError
				require.ErrorAs(t, err, &cnl)
				require.Equal(t, NotLeaderError{LeaderID: "n2", LeaderAddr: "10.0.0.2:7946", LeaderAPIAddr: "10.0.0.2:7947"}, *cnl)
				var nl *raftstore.NotLeaderError
				require.ErrorAs(t, err, &nl)
				require.Equal(t, raftstore.NotLeaderError{LeaderID: "n2", LeaderAddr: "10.0.0.2:7946"}, *nl)
			},
		},
		{
			name: "not leader, no leader known",
			err:  &raftstore.NotLeaderError{},
			code: codes.FailedPrecondition,
			is:   []error{raftstore.ErrNotLeader},
			check: func(t *testing.T, err error) {
				var nl *raftstore.NotLeaderError
				require.ErrorAs(t, err, &nl)
				require.Equal(t, raftstore.NotLeaderError{}, *nl)
			},
		},
		{
			name: "not leader, bare sentinel",
			err:  fmt.Errorf("%w: the leader n2 has no API address yet", raftstore.ErrNotLeader),
			code: codes.FailedPrecondition,
			is:   []error{raftstore.ErrNotLeader},
		},
		{
			name:  "outcome unknown",
			err:   fmt.Errorf("raftstore: apply: %w: %w", raftstore.ErrOutcomeUnknown, context.DeadlineExceeded),
			code:  codes.Unavailable,
			is:    []error{raftstore.ErrOutcomeUnknown, context.DeadlineExceeded},
			isNot: []error{raftstore.ErrNotLeader, raftstore.ErrShutdown, ErrUnreachable},
		},
		{
			name:  "leadership lost",
			err:   fmt.Errorf("raftstore: apply: leadership lost before the entry was known committed: %w (%w)", raftstore.ErrOutcomeUnknown, errors.New("leadership lost while committing log")),
			code:  codes.Unavailable,
			is:    []error{raftstore.ErrOutcomeUnknown},
			isNot: []error{context.DeadlineExceeded},
		},
		{
			name:  "shutdown",
			err:   fmt.Errorf("raftstore: barrier: %w", raftstore.ErrShutdown),
			code:  codes.Unavailable,
			is:    []error{raftstore.ErrShutdown},
			isNot: []error{raftstore.ErrOutcomeUnknown, ErrUnreachable},
		},
		{
			name: "shutdown in flight",
			err:  fmt.Errorf("raftstore: apply: %w while in flight: %w", raftstore.ErrShutdown, raftstore.ErrOutcomeUnknown),
			code: codes.Unavailable,
			is:   []error{raftstore.ErrShutdown, raftstore.ErrOutcomeUnknown},
		},
		{
			name:  "deadline, definitely failed",
			err:   fmt.Errorf("raftstore: apply: not started before the deadline: %w", context.DeadlineExceeded),
			code:  codes.DeadlineExceeded,
			is:    []error{context.DeadlineExceeded},
			isNot: []error{raftstore.ErrOutcomeUnknown, ErrUnreachable},
		},
		{
			name: "canceled",
			err:  fmt.Errorf("raftstore: barrier: %w", context.Canceled),
			code: codes.Canceled,
			is:   []error{context.Canceled},
		},
		{
			name: "invalid argument from the service",
			err:  fmt.Errorf("%w: node id %q has a slash", ErrInvalidArgument, "a/b"),
			code: codes.InvalidArgument,
			is:   []error{ErrInvalidArgument},
		},
		{
			name:  "schema refused",
			err:   fmt.Errorf("%w: %w", ErrSchemaRefused, &schema.IncompatibleError{Path: "note", Reason: "the table has long, the writer has string"}),
			code:  codes.FailedPrecondition,
			is:    []error{ErrSchemaRefused},
			isNot: []error{ErrInvalidArgument, raftstore.ErrNotLeader, ErrUnreachable},
		},
		{
			name: "member conflict",
			err:  fmt.Errorf("%w: address 10.0.0.3:7946 already belongs to member n1, not n3", raftstore.ErrMemberConflict),
			code: codes.AlreadyExists,
			is:   []error{raftstore.ErrMemberConflict},
		},
		{
			name:  "ledger sentinel",
			err:   fmt.Errorf("leave: %w", fmt.Errorf("%w: %q", commit.ErrUnknownMember, "n3")),
			code:  codes.FailedPrecondition,
			is:    []error{commit.ErrUnknownMember},
			isNot: []error{raftstore.ErrNotLeader},
		},
		{
			name: "ledger typed",
			err:  &commit.StaleEpochError{Pipeline: "p", Topic: "t", Partition: 1, Have: 1, Want: 2},
			code: codes.FailedPrecondition,
			check: func(t *testing.T, err error) {
				var stale *commit.StaleEpochError
				require.ErrorAs(t, err, &stale)
				require.Equal(t, commit.StaleEpochError{Pipeline: "p", Topic: "t", Partition: 1, Have: 1, Want: 2}, *stale)
			},
		},
		{
			name: "forwarded call unreachable",
			err:  fmt.Errorf("join: forward to n2: %w", ErrUnreachable),
			code: codes.Unavailable,
		},
		{
			name:  "anything else",
			err:   errors.New("boom"),
			code:  codes.Internal,
			isNot: []error{raftstore.ErrNotLeader, raftstore.ErrOutcomeUnknown, raftstore.ErrShutdown, ErrUnreachable, ErrInvalidArgument, context.DeadlineExceeded},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc.failWith(tc.err)
			for method, err := range callAll(c) {
				require.Error(t, err, method)
				require.EqualError(t, err, tc.err.Error(), method)
				require.Equal(t, tc.code, status.Code(err), method)
				for _, target := range tc.is {
					require.ErrorIs(t, err, target, method)
				}
				for _, target := range tc.isNot {
					require.NotErrorIs(t, err, target, method)
				}
				if tc.check != nil {
					tc.check(t, err)
				}
			}
		})
	}
}

func TestRPCInvalidArgument(t *testing.T) {
	svc := &fakeService{}
	addr, _ := serveRPC(t, svc, nil)
	c := dialRPC(t, addr, nil)
	ctx := context.Background()

	_, applyErr := c.Apply(ctx, nil)
	for name, err := range map[string]error{
		"apply without a command": applyErr,
		"join without a node id":  c.Join(ctx, JoinRequest{RaftAddr: "10.0.0.3:7946"}),
		"join without raft addr":  c.Join(ctx, JoinRequest{NodeID: "n3"}),
		"leave without a node id": c.Leave(ctx, ""),
	} {
		require.ErrorIs(t, err, ErrInvalidArgument, name)
		require.Equal(t, codes.InvalidArgument, status.Code(err), name)
		require.NotErrorIs(t, err, ErrUnreachable, name)
		require.NotErrorIs(t, err, raftstore.ErrOutcomeUnknown, name)
	}
	svc.mu.Lock()
	defer svc.mu.Unlock()
	require.Empty(t, svc.cmds)
	require.Empty(t, svc.joins)
	require.Empty(t, svc.leaves)
}

// EvolveSchema's two refusals come back apart: the table refusing the
// writer schema (its records are dead letters) and the leader not running
// the pipeline as the caller does (the records wait for the operator).
func TestRPCEvolveSchemaRefusals(t *testing.T) {
	svc := &fakeService{}
	addr, _ := serveRPC(t, svc, nil)
	c := dialRPC(t, addr, nil)
	writer := iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "note", Type: iceberg.PrimitiveTypes.String})
	req := EvolveRequest{Pipeline: "orders", SchemaID: 7, Writer: writer}

	refused := fmt.Errorf("%w: %w", ErrSchemaRefused, &schema.IncompatibleError{Path: "note", Reason: "the table has long, the writer has string"})
	var got EvolveRequest
	svc.evolve = func(_ context.Context, req EvolveRequest) ([]string, error) {
		got = req
		return nil, refused
	}
	_, err := c.EvolveSchema(context.Background(), req)
	require.Equal(t, "orders", got.Pipeline)
	require.EqualValues(t, 7, got.SchemaID)
	require.ErrorIs(t, err, ErrSchemaRefused)
	require.NotErrorIs(t, err, ErrInvalidArgument)
	require.NotErrorIs(t, err, ErrUnreachable)
	require.NotErrorIs(t, err, raftstore.ErrOutcomeUnknown)
	require.EqualError(t, err, refused.Error())
	require.Equal(t, codes.FailedPrecondition, status.Code(err))

	svc.evolve = func(context.Context, EvolveRequest) ([]string, error) {
		return nil, fmt.Errorf("%w: node n1 runs no pipeline %q", ErrInvalidArgument, "orders")
	}
	_, err = c.EvolveSchema(context.Background(), req)
	require.ErrorIs(t, err, ErrInvalidArgument)
	require.NotErrorIs(t, err, ErrSchemaRefused)
	require.Equal(t, codes.InvalidArgument, status.Code(err))
}

// closedAddr is a 127.0.0.1 address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// TestRPCUnreachable: a request that never left definitely failed.
func TestRPCUnreachable(t *testing.T) {
	c := dialRPC(t, closedAddr(t), nil)
	for method, err := range callAll(c) {
		require.ErrorIs(t, err, ErrUnreachable, method)
		require.NotErrorIs(t, err, raftstore.ErrOutcomeUnknown, method)
		require.Equal(t, codes.Unavailable, status.Code(err), method)
		require.Contains(t, err.Error(), c.Addr(), method)
	}
}

func TestRPCTLSMismatch(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	addr, _ := serveRPC(t, &fakeService{}, serverTLS)

	// Plaintext to a TLS server; a client that does not trust the server;
	// a client without a certificate (mutual TLS).
	untrusting := clientTLS.Clone()
	untrusting.RootCAs = x509.NewCertPool()
	anonymous := clientTLS.Clone()
	anonymous.Certificates = nil
	for name, cfg := range map[string]*tls.Config{"plaintext": nil, "untrusted server": untrusting, "no client cert": anonymous} {
		t.Run(name, func(t *testing.T) {
			c := dialRPC(t, addr, cfg)
			_, err := c.Status(context.Background())
			require.ErrorIs(t, err, ErrUnreachable)
		})
	}

	// A handshake that fails never sends the command.
	c := dialRPC(t, addr, untrusting)
	_, err := c.Apply(context.Background(), []byte(`{}`))
	require.ErrorIs(t, err, ErrUnreachable)
	require.NotErrorIs(t, err, raftstore.ErrOutcomeUnknown)

	// A server of another service: reachable, refuses, definitely failed.
	other := grpc.NewServer()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = other.Serve(ln) }()
	t.Cleanup(other.Stop)
	c = dialRPC(t, ln.Addr().String(), nil)
	_, err = c.Apply(context.Background(), []byte(`{}`))
	require.Equal(t, codes.Unimplemented, status.Code(err))
	require.NotErrorIs(t, err, ErrUnreachable)
	require.NotErrorIs(t, err, raftstore.ErrOutcomeUnknown)
}

// blockingService blocks in every method until released, after signalling
// entered; it ignores its context, like a node stuck on a slow disk.
func blockingService(t *testing.T) (svc *fakeService, entered <-chan struct{}) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	in := make(chan struct{}, 16)
	block := func() { in <- struct{}{}; <-release }
	return &fakeService{
		apply:  func(context.Context, []byte) (commit.ApplyResult, error) { block(); return commit.ApplyResult{}, nil },
		join:   func(context.Context, JoinRequest) error { block(); return nil },
		leave:  func(context.Context, string) error { block(); return nil },
		status: func(context.Context) (Status, error) { block(); return Status{}, nil },
	}, in
}

// connect makes c's connection and waits until it is ready, so that a
// call's deadline covers the call, not the dial.
func connect(t *testing.T, c *Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c.conn.Connect()
	for s := c.conn.GetState(); s != connectivity.Ready; s = c.conn.GetState() {
		if !c.conn.WaitForStateChange(ctx, s) {
			t.Fatalf("the connection to %s is not ready: %v", c.Addr(), s)
		}
	}
}

// TestRPCDeadlineAfterSend: the node got the command and did not answer
// before the call's deadline; the command may have been applied. The
// connection is ready before the calls start, and the node blocks until
// the test ends, so nothing but the deadline can end a call (on the client,
// or on the node, which gets the call's deadline and resets the stream
// when it passes).
func TestRPCDeadlineAfterSend(t *testing.T) {
	svc, entered := blockingService(t)
	addr, _ := serveRPC(t, svc, nil)
	c := dialRPC(t, addr, nil)
	connect(t, c)

	calls := map[string]func(ctx context.Context) error{
		"apply":  func(ctx context.Context) error { _, err := c.Apply(ctx, []byte(`{}`)); return err },
		"join":   func(ctx context.Context) error { return c.Join(ctx, JoinRequest{NodeID: "n3", RaftAddr: "a:1"}) },
		"leave":  func(ctx context.Context) error { return c.Leave(ctx, "n3") },
		"status": func(ctx context.Context) error { _, err := c.Status(ctx); return err },
	}
	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(calls))
	start := time.Now()
	for name, call := range calls {
		go func() {
			// Long enough for the request to be written on a busy
			// machine; the calls run at once, so the test waits for one.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			err := call(ctx)
			results <- result{name: name, err: err}
		}()
	}
	for range calls {
		select {
		case <-entered:
		case <-time.After(time.Minute):
			t.Fatal("a call never reached the node")
		}
	}
	for range calls {
		var r result
		select {
		case r = <-results:
		case <-time.After(time.Minute):
			t.Fatal("a call did not return after its deadline")
		}
		t.Logf("%s returned after %v: %v", r.name, time.Since(start), r.err)
		require.ErrorIs(t, r.err, ErrUnreachable, r.name)
		require.ErrorIs(t, r.err, context.DeadlineExceeded, r.name)
		require.Equal(t, codes.DeadlineExceeded, status.Code(r.err), r.name)
		if r.name == "status" {
			// Status changes nothing: no outcome to be unsure of.
			require.NotErrorIs(t, r.err, raftstore.ErrOutcomeUnknown, r.name)
		} else {
			require.ErrorIs(t, r.err, raftstore.ErrOutcomeUnknown, r.name)
		}
	}

	// A context already done: never sent, nothing unknown.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Apply(ctx, []byte(`{}`))
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, raftstore.ErrOutcomeUnknown)
	require.NotErrorIs(t, err, ErrUnreachable)
}

// TestRPCServerStopsAfterSend: the connection breaks while the node holds the
// command.
func TestRPCServerStopsAfterSend(t *testing.T) {
	svc, entered := blockingService(t)
	addr, srv := serveRPC(t, svc, nil)
	c := dialRPC(t, addr, nil)

	errc := make(chan error, 1)
	go func() { _, err := c.Apply(context.Background(), []byte(`{}`)); errc <- err }()
	<-entered
	srv.Stop()
	err := <-errc
	require.ErrorIs(t, err, ErrUnreachable)
	require.ErrorIs(t, err, raftstore.ErrOutcomeUnknown)
	require.NotErrorIs(t, err, context.DeadlineExceeded)
}

// TestRPCCallerCancels: the caller gave up after sending; the node is not
// known to be unreachable, the outcome is unknown.
func TestRPCCallerCancels(t *testing.T) {
	svc, entered := blockingService(t)
	addr, _ := serveRPC(t, svc, nil)
	c := dialRPC(t, addr, nil)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := c.Apply(ctx, []byte(`{}`)); errc <- err }()
	<-entered
	cancel()
	err := <-errc
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, raftstore.ErrOutcomeUnknown)
	require.NotErrorIs(t, err, ErrUnreachable)
}

// TestRPCDefaultDeadline: no call runs without a deadline, whether the
// client sets it or the server must.
func TestRPCDefaultDeadline(t *testing.T) {
	deadlines := make(chan time.Duration, 2)
	svc := &fakeService{status: func(ctx context.Context) (Status, error) {
		dl, ok := ctx.Deadline()
		if !ok {
			return Status{}, errors.New("no deadline")
		}
		deadlines <- time.Until(dl)
		return Status{}, nil
	}}
	addr, _ := serveRPC(t, svc, nil)

	_, err := dialRPC(t, addr, nil).Status(context.Background())
	require.NoError(t, err)

	// A client of another kind that sets none.
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	_, err = clusterv1.NewClusterServiceClient(conn).Status(context.Background(), &clusterv1.StatusRequest{})
	require.NoError(t, err)

	for range 2 {
		d := <-deadlines
		require.Greater(t, d, DefaultCallTimeout-5*time.Second)
		require.LessOrEqual(t, d, DefaultCallTimeout)
	}
}

func TestRPCPool(t *testing.T) {
	svc := &fakeService{status: func(context.Context) (Status, error) { return Status{NodeID: "n1"}, nil }}
	addr, _ := serveRPC(t, svc, nil)
	other := closedAddr(t)
	p := NewPool(nil, "")

	var wg sync.WaitGroup
	clients := make([]*Client, 16)
	errs := make([]error, len(clients))
	for i := range clients {
		wg.Go(func() {
			a := addr
			if i%2 == 1 {
				a = other
			}
			clients[i], errs[i] = p.Get(a)
		})
	}
	wg.Wait()
	for i, c := range clients {
		require.NoError(t, errs[i])
		require.Same(t, clients[i%2], c, "one client per address")
	}
	require.NotSame(t, clients[0], clients[1])

	st, err := clients[0].Status(context.Background())
	require.NoError(t, err)
	require.Equal(t, "n1", st.NodeID)
	_, err = clients[1].Status(context.Background())
	require.ErrorIs(t, err, ErrUnreachable)

	require.NoError(t, p.Close())
	require.NoError(t, p.Close())
	_, err = p.Get(addr)
	require.ErrorIs(t, err, ErrPoolClosed)
	// Its clients are closed.
	_, err = clients[0].Status(context.Background())
	require.Error(t, err)
}

// tokenAuth accepts one token, for Status only unless admin.
type tokenAuth struct{ token string }

func (a tokenAuth) Check(authz, method string) error {
	if authz != "Bearer "+a.token {
		return status.Error(codes.Unauthenticated, "no or unknown token")
	}
	return nil
}

// With an Authorizer, a call without the token is refused unrun (and is
// not mistaken for an unreachable node); a pool with the token gets
// through.
func TestRPCServerAuth(t *testing.T) {
	svc := &fakeService{status: func(context.Context) (Status, error) { return Status{NodeID: "n1"}, nil }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := NewServer(svc, nil, tokenAuth{"secret-secret-secret"})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	addr := ln.Addr().String()

	_, err = dialRPC(t, addr, nil).Status(context.Background())
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrUnreachable)
	require.Contains(t, err.Error(), "token")

	p := NewPool(nil, "secret-secret-secret")
	defer p.Close()
	c, err := p.Get(addr)
	require.NoError(t, err)
	st, err := c.Status(context.Background())
	require.NoError(t, err)
	require.Equal(t, "n1", st.NodeID)
}

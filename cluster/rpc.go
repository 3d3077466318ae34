package cluster

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/apache/iceberg-go"
	"github.com/floelake/floe/commit"
	clusterv1 "github.com/floelake/floe/proto/floe/cluster/v1"
	"github.com/floelake/floe/raftstore"
)

// The cluster API over gRPC (proto/floe/cluster/v1): NewServer serves a
// Service, Client calls one, and every error crosses the wire as the same Go
// error, so callers test errors.Is and errors.As on a Client exactly as on a
// local Node.
//
// Errors. Every error status the server returns carries a Failure detail
// listing the error's classes (not leader with the leader's identity,
// outcome unknown, shutdown, context, invalid argument, member conflict,
// schema refused) and the ledger error it wraps, if any; the Client
// rebuilds an error with the server's text that Is every sentinel of those
// classes and As the typed errors (*raftstore.NotLeaderError,
// *NotLeaderError, the commit ledger errors). The status code is for other
// clients: FailedPrecondition (not leader, ledger rejection, schema
// refused), Unavailable (outcome unknown, shutdown), DeadlineExceeded,
// Canceled, InvalidArgument, AlreadyExists (member conflict), Internal
// (anything else).
//
// A failure without a Failure detail comes from the transport: the node was
// not reached, or did not answer. The Client returns an error that
// Is(ErrUnreachable) (unless the caller's context was cancelled, or the node
// refused the call unrun: Unimplemented, Unauthenticated, PermissionDenied)
// and wraps the gRPC error and the context's error, if any. For the mutating calls
// (Apply, Join, Leave) it also Is(raftstore.ErrOutcomeUnknown) whenever the
// request may have reached the node (it was written to a connection): the
// caller must not assume the command failed. A request that was never
// written (connection refused, TLS handshake failure) definitely failed.

// DefaultCallTimeout bounds a call whose context has no deadline, on the
// client and on the server.
const DefaultCallTimeout = 10 * time.Second

// maxMessageSize bounds requests and responses: an Apply carries a segment's
// encoded data files, a Status every partition.
const maxMessageSize = 64 << 20

var (
	// ErrUnreachable means the node was not reached or did not answer in
	// time (refused or broken connection, TLS failure, deadline). The
	// Client's error wraps the gRPC error too. For a mutating call it may
	// also Is(raftstore.ErrOutcomeUnknown); see the notes at the top of rpc.go.
	ErrUnreachable = errors.New("cluster: node unreachable")

	// ErrInvalidArgument means a request is malformed (an empty node id or
	// command), or names a pipeline the node does not run the way the
	// caller does (EvolveSchema: no such pipeline, or one that does not
	// evolve its table's schema, so the nodes' configurations differ). A
	// Service wraps it to have the call fail with codes.InvalidArgument; a
	// Client's error then Is it.
	ErrInvalidArgument = errors.New("cluster: invalid argument")

	// ErrSchemaRefused means the table cannot take the writer schema an
	// EvolveSchema call asked it to (the table writer's plan found it
	// incompatible: a type changed or narrowed, a key or partition column
	// changed). It is the table's answer, not a failure: asking again gets
	// the same one, so the caller makes the records of that writer schema
	// dead letters. A Service wraps it to have the call fail with
	// codes.FailedPrecondition; a Client's error then Is it.
	ErrSchemaRefused = errors.New("cluster: the table refuses the writer schema")

	// ErrPoolClosed is returned by Pool.Get after Close.
	ErrPoolClosed = errors.New("cluster: client pool is closed")
)

// NotLeaderError is a *raftstore.NotLeaderError that also names the
// leader's cluster API address, which is what a caller re-dials (raftstore's
// LeaderAddr is the leader's raft address). LeaderAPIAddr is empty when the
// node that answered did not know it; the caller then maps LeaderID to an
// API address itself (Status.Members, or Status.LeaderAPIAddr of any
// member).
//
// A Service returns it (or wraps it) to have the address reach the Client;
// a Service that returns a plain *raftstore.NotLeaderError gets an empty
// LeaderAPIAddr. The Client returns an error that As both this type and
// *raftstore.NotLeaderError, with the same LeaderID and LeaderAddr. It
// Is(raftstore.ErrNotLeader).
type NotLeaderError struct {
	LeaderID      string
	LeaderAddr    string
	LeaderAPIAddr string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderAPIAddr == "" {
		return e.Unwrap().Error()
	}
	return fmt.Sprintf("cluster: not the leader (leader is %s at %s, API at %s)", e.LeaderID, e.LeaderAddr, e.LeaderAPIAddr)
}

// Is reports target == raftstore.ErrNotLeader.
func (e *NotLeaderError) Is(target error) bool { return target == raftstore.ErrNotLeader }

// Unwrap returns the *raftstore.NotLeaderError with the same LeaderID and
// LeaderAddr.
func (e *NotLeaderError) Unwrap() error {
	return &raftstore.NotLeaderError{LeaderID: e.LeaderID, LeaderAddr: e.LeaderAddr}
}

// failureClasses maps the sentinels a Failure lists to their kinds, in
// decreasing significance for the status code.
var failureClasses = []struct {
	kind clusterv1.FailureKind
	err  error
	code codes.Code
}{
	{clusterv1.FailureKind_FAILURE_KIND_NOT_LEADER, raftstore.ErrNotLeader, codes.FailedPrecondition},
	{clusterv1.FailureKind_FAILURE_KIND_OUTCOME_UNKNOWN, raftstore.ErrOutcomeUnknown, codes.Unavailable},
	{clusterv1.FailureKind_FAILURE_KIND_SHUTDOWN, raftstore.ErrShutdown, codes.Unavailable},
	{clusterv1.FailureKind_FAILURE_KIND_DEADLINE_EXCEEDED, context.DeadlineExceeded, codes.DeadlineExceeded},
	{clusterv1.FailureKind_FAILURE_KIND_CANCELED, context.Canceled, codes.Canceled},
	{clusterv1.FailureKind_FAILURE_KIND_INVALID_ARGUMENT, ErrInvalidArgument, codes.InvalidArgument},
	{clusterv1.FailureKind_FAILURE_KIND_MEMBER_CONFLICT, raftstore.ErrMemberConflict, codes.AlreadyExists},
	{clusterv1.FailureKind_FAILURE_KIND_SCHEMA_REFUSED, ErrSchemaRefused, codes.FailedPrecondition},
}

// errorToStatus turns a Service error into a status with a Failure detail.
func errorToStatus(err error) error {
	f := &clusterv1.Failure{}
	code := codes.Unknown
	for _, c := range failureClasses {
		if !errors.Is(err, c.err) {
			continue
		}
		f.Kinds = append(f.Kinds, c.kind)
		if code == codes.Unknown {
			code = c.code
		}
	}
	var (
		cnl *NotLeaderError
		rnl *raftstore.NotLeaderError
	)
	switch {
	case errors.As(err, &cnl):
		f.LeaderId, f.LeaderRaftAddr, f.LeaderApiAddr = cnl.LeaderID, cnl.LeaderAddr, cnl.LeaderAPIAddr
	case errors.As(err, &rnl):
		f.LeaderId, f.LeaderRaftAddr = rnl.LeaderID, rnl.LeaderAddr
	}
	if le, ok := ledgerKind(err); ok {
		f.Ledger = le
		if code == codes.Unknown {
			code = codes.FailedPrecondition
		}
	}
	if code == codes.Unknown {
		code = codes.Internal
		if errors.Is(err, ErrUnreachable) {
			// A call this node forwarded (to the leader) failed.
			code = codes.Unavailable
		}
	}
	st := status.New(code, err.Error())
	if withDetail, derr := st.WithDetails(f); derr == nil {
		st = withDetail
	}
	return st.Err()
}

// remoteError is an error the server returned, rebuilt: the server's text,
// and the sentinels and typed errors it matched there.
type remoteError struct {
	msg  string
	errs []error
}

func (e *remoteError) Error() string   { return e.msg }
func (e *remoteError) Unwrap() []error { return e.errs }

// statusToError rebuilds the error errorToStatus encoded; ok is false when
// st has no Failure detail (the status comes from the transport). The
// result also wraps st's error, so status.Code works on it.
func statusToError(st *status.Status) (err error, ok bool) {
	var f *clusterv1.Failure
	for _, d := range st.Details() {
		if ff, isF := d.(*clusterv1.Failure); isF {
			f = ff
			break
		}
	}
	if f == nil {
		return nil, false
	}
	re := &remoteError{msg: st.Message()}
	for _, k := range f.GetKinds() {
		if k == clusterv1.FailureKind_FAILURE_KIND_NOT_LEADER {
			re.errs = append(re.errs, &NotLeaderError{LeaderID: f.GetLeaderId(), LeaderAddr: f.GetLeaderRaftAddr(), LeaderAPIAddr: f.GetLeaderApiAddr()})
			continue
		}
		for _, c := range failureClasses {
			if c.kind == k {
				re.errs = append(re.errs, c.err)
			}
		}
	}
	if le := f.GetLedger(); le != nil {
		re.errs = append(re.errs, ledgerErrorFromWire(le))
	}
	re.errs = append(re.errs, st.Err())
	return re, true
}

// withDefaultTimeout gives ctx DefaultCallTimeout when it has no deadline.
func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, DefaultCallTimeout)
}

// grpcService adapts a Service to the generated server interface.
type grpcService struct {
	clusterv1.UnimplementedClusterServiceServer
	svc Service
}

// NewServer returns a gRPC server offering svc as ClusterService, over TLS
// when tlsCfg is not nil (with client certificates checked if tlsCfg asks
// for them). The caller runs it (Serve on a listener) and stops it. Calls
// without a deadline get DefaultCallTimeout; malformed requests fail with
// ErrInvalidArgument before reaching svc; svc's errors are mapped as the notes
// at the top of rpc.go describe.
//
// auth, when not nil, checks every call's bearer token (the node's API
// tokens: Status needs the read scope, the rest admin); members send theirs
// (Options.Token) with every call.
func NewServer(svc Service, tlsCfg *tls.Config, auth Authorizer) *grpc.Server {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxMessageSize),
		grpc.MaxSendMsgSize(maxMessageSize),
		// Clients ping idle connections (Dial); allow it.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			if auth != nil {
				var authz string
				if md, ok := metadata.FromIncomingContext(ctx); ok {
					if v := md.Get("authorization"); len(v) > 0 {
						authz = v[0]
					}
				}
				if err := auth.Check(authz, info.FullMethod); err != nil {
					return nil, err
				}
			}
			ctx, cancel := withDefaultTimeout(ctx)
			defer cancel()
			return handler(ctx, req)
		}),
	}
	if tlsCfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	s := grpc.NewServer(opts...)
	clusterv1.RegisterClusterServiceServer(s, &grpcService{svc: svc})
	return s
}

// Authorizer checks a call's authorization metadata ("Bearer <token>")
// for a method, returning a gRPC status error when it may not call it.
type Authorizer interface {
	Check(authorization, method string) error
}

// bearer sends a token with every call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false: members may talk plaintext on a
// trusted network, as the configuration allows.
func (bearer) RequireTransportSecurity() bool { return false }

// Register offers svc as ClusterService on reg (the node's API server
// serves it beside the floe API, under its tokens), with the same error
// mapping as NewServer's.
func Register(reg grpc.ServiceRegistrar, svc Service) {
	clusterv1.RegisterClusterServiceServer(reg, &grpcService{svc: svc})
}

func invalidArgument(format string, args ...any) error {
	return errorToStatus(fmt.Errorf("%w: "+format, append([]any{ErrInvalidArgument}, args...)...))
}

// Apply implements clusterv1.ClusterServiceServer.
func (g *grpcService) Apply(ctx context.Context, req *clusterv1.ApplyRequest) (*clusterv1.ApplyResponse, error) {
	if len(req.GetCommand()) == 0 {
		return nil, invalidArgument("apply needs a command")
	}
	res, err := g.svc.Apply(ctx, req.GetCommand())
	if err != nil {
		return nil, errorToStatus(err)
	}
	return applyResultToWire(res), nil
}

// Join implements clusterv1.ClusterServiceServer.
func (g *grpcService) Join(ctx context.Context, req *clusterv1.JoinRequest) (*clusterv1.JoinResponse, error) {
	if req.GetNodeId() == "" || req.GetRaftAddr() == "" {
		return nil, invalidArgument("join needs a node id and a raft address, got %q and %q", req.GetNodeId(), req.GetRaftAddr())
	}
	if err := g.svc.Join(ctx, joinRequestFromWire(req)); err != nil {
		return nil, errorToStatus(err)
	}
	return &clusterv1.JoinResponse{}, nil
}

// Leave implements clusterv1.ClusterServiceServer.
func (g *grpcService) Leave(ctx context.Context, req *clusterv1.LeaveRequest) (*clusterv1.LeaveResponse, error) {
	if req.GetNodeId() == "" {
		return nil, invalidArgument("leave needs a node id")
	}
	if err := g.svc.Leave(ctx, req.GetNodeId()); err != nil {
		return nil, errorToStatus(err)
	}
	return &clusterv1.LeaveResponse{}, nil
}

// EvolveSchema implements clusterv1.ClusterServiceServer.
func (g *grpcService) EvolveSchema(ctx context.Context, req *clusterv1.EvolveSchemaRequest) (*clusterv1.EvolveSchemaResponse, error) {
	if req.GetPipeline() == "" {
		return nil, invalidArgument("evolve schema needs a pipeline")
	}
	var w iceberg.Schema
	if err := json.Unmarshal([]byte(req.GetWriterSchema()), &w); err != nil {
		return nil, invalidArgument("writer_schema is not an Iceberg schema: %v", err)
	}
	changes, err := g.svc.EvolveSchema(ctx, EvolveRequest{Pipeline: req.GetPipeline(), SchemaID: req.GetSchemaId(), Writer: &w})
	if err != nil {
		return nil, errorToStatus(err)
	}
	return &clusterv1.EvolveSchemaResponse{Changes: changes}, nil
}

// Status implements clusterv1.ClusterServiceServer.
func (g *grpcService) Status(ctx context.Context, _ *clusterv1.StatusRequest) (*clusterv1.StatusResponse, error) {
	s, err := g.svc.Status(ctx)
	if err != nil {
		return nil, errorToStatus(err)
	}
	return statusToWire(s), nil
}

// Client calls one node's ClusterService. It satisfies Service, with the
// same errors as the node's own (see the notes at the top of rpc.go) plus the
// transport's (ErrUnreachable). Calls without a deadline get
// DefaultCallTimeout. The connection is made on first use and remade after a
// failure; a Client is safe for concurrent use.
type Client struct {
	addr string
	conn *grpc.ClientConn
	rpc  clusterv1.ClusterServiceClient
}

var _ Service = (*Client)(nil)

// Dial returns a Client for the node whose cluster API listens at addr
// (host:port), over TLS when tlsCfg is not nil (tlsCfg.ServerName defaults
// to addr's host). It does not connect: an unreachable node fails the first
// call, not Dial.
func Dial(addr string, tlsCfg *tls.Config) (*Client, error) { return DialToken(addr, tlsCfg, "") }

// DialToken is Dial with a bearer token sent with every call ("" none).
func DialToken(addr string, tlsCfg *tls.Config, token string) (*Client, error) {
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	}
	var extra []grpc.DialOption
	if token != "" {
		extra = append(extra, grpc.WithPerRPCCredentials(bearer(token)))
	}
	conn, err := grpc.NewClient(addr, append(extra,
		grpc.WithTransportCredentials(creds),
		grpc.WithStatsHandler(sentTracker{}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageSize), grpc.MaxCallSendMsgSize(maxMessageSize)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
		// gRPC's default reconnect backoff reaches two minutes, during
		// which every call fails at once: too long for a member that
		// restarts.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
	)...)
	if err != nil {
		return nil, fmt.Errorf("cluster: dial %s: %w", addr, err)
	}
	return &Client{addr: addr, conn: conn, rpc: clusterv1.NewClusterServiceClient(conn)}, nil
}

// Addr is the address the Client calls.
func (c *Client) Addr() string { return c.addr }

// Close closes the connection; calls in flight fail. Do not close a Client
// that a Pool returned: close the Pool.
func (c *Client) Close() error { return c.conn.Close() }

// Apply calls Service.Apply on the node. ApplyResult.Err comes back as the
// error the ledger returned (same typed error, same sentinel, same text).
func (c *Client) Apply(ctx context.Context, cmd []byte) (commit.ApplyResult, error) {
	var resp *clusterv1.ApplyResponse
	err := c.call(ctx, "apply", true, func(ctx context.Context) (err error) {
		resp, err = c.rpc.Apply(ctx, &clusterv1.ApplyRequest{Command: cmd})
		return err
	})
	if err != nil {
		return commit.ApplyResult{}, err
	}
	return applyResultFromWire(resp), nil
}

// Join calls Service.Join on the node.
func (c *Client) Join(ctx context.Context, req JoinRequest) error {
	return c.call(ctx, "join", true, func(ctx context.Context) error {
		_, err := c.rpc.Join(ctx, joinRequestToWire(req))
		return err
	})
}

// Leave calls Service.Leave on the node.
func (c *Client) Leave(ctx context.Context, nodeID string) error {
	return c.call(ctx, "leave", true, func(ctx context.Context) error {
		_, err := c.rpc.Leave(ctx, &clusterv1.LeaveRequest{NodeId: nodeID})
		return err
	})
}

// EvolveSchema calls Service.EvolveSchema on the node.
func (c *Client) EvolveSchema(ctx context.Context, req EvolveRequest) ([]string, error) {
	if req.Writer == nil {
		return nil, fmt.Errorf("%w: evolve schema needs a writer schema", ErrInvalidArgument)
	}
	w, err := json.Marshal(req.Writer)
	if err != nil {
		return nil, err
	}
	var resp *clusterv1.EvolveSchemaResponse
	err = c.call(ctx, "evolve schema", true, func(ctx context.Context) (err error) {
		resp, err = c.rpc.EvolveSchema(ctx, &clusterv1.EvolveSchemaRequest{Pipeline: req.Pipeline, SchemaId: req.SchemaID, WriterSchema: string(w)})
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp.GetChanges(), nil
}

// Status calls Service.Status on the node. Times come back in UTC.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var resp *clusterv1.StatusResponse
	err := c.call(ctx, "status", false, func(ctx context.Context) (err error) {
		resp, err = c.rpc.Status(ctx, &clusterv1.StatusRequest{})
		return err
	})
	if err != nil {
		return Status{}, err
	}
	return statusFromWire(resp), nil
}

// call runs one RPC with a deadline and maps its error.
func (c *Client) call(ctx context.Context, op string, mutating bool, rpc func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		// Never sent.
		return fmt.Errorf("cluster: %s at %s: %w", op, c.addr, err)
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	sent := new(atomic.Bool)
	err := rpc(context.WithValue(ctx, sentKey{}, sent))
	if err == nil {
		return nil
	}
	st := status.Convert(err)
	if remote, ok := statusToError(st); ok {
		return remote
	}
	return c.transportError(ctx, op, mutating, sent.Load(), st)
}

// transportError maps a status the server did not produce (see the notes at
// the top of rpc.go). ctx is the call's context; sent whether the request was written
// to a connection.
func (c *Client) transportError(ctx context.Context, op string, mutating, sent bool, st *status.Status) error {
	re := &remoteError{}
	ctxErr := ctx.Err()
	// The node answered, refusing the call before running it.
	refused := st.Code() == codes.Unimplemented || st.Code() == codes.Unauthenticated || st.Code() == codes.PermissionDenied
	what := "failed"
	switch {
	case refused:
	case errors.Is(ctxErr, context.Canceled):
		// The caller gave up; nothing says the node is unreachable.
		what = "cancelled"
	default:
		what = "unreachable"
		re.errs = append(re.errs, ErrUnreachable)
	}
	if mutating && sent && !refused {
		what += ", outcome unknown"
		re.errs = append(re.errs, raftstore.ErrOutcomeUnknown)
	}
	switch {
	case ctxErr != nil:
		re.errs = append(re.errs, ctxErr)
	case st.Code() == codes.DeadlineExceeded:
		// The deadline passed on the node first (it gets the call's
		// deadline, and resets the stream when it passes).
		re.errs = append(re.errs, context.DeadlineExceeded)
	}
	re.errs = append(re.errs, st.Err())
	re.msg = fmt.Sprintf("cluster: %s at %s: %s: %s", op, c.addr, what, st.Err())
	return re
}

// sentKey is the context key of a call's *atomic.Bool "request sent" flag.
type sentKey struct{}

// sentTracker sets a call's sent flag once its request message has been
// written to a connection: from then on the node may have received it.
type sentTracker struct{}

// TagRPC implements stats.Handler.
func (sentTracker) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }

// HandleRPC implements stats.Handler.
func (sentTracker) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if _, ok := s.(*stats.OutPayload); !ok {
		return
	}
	if sent, ok := ctx.Value(sentKey{}).(*atomic.Bool); ok {
		sent.Store(true)
	}
}

// TagConn implements stats.Handler.
func (sentTracker) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

// HandleConn implements stats.Handler.
func (sentTracker) HandleConn(context.Context, stats.ConnStats) {}

// Pool keeps one Client per address, for a node that calls the other
// members (forwarding to the leader). It is safe for concurrent use.
type Pool struct {
	tls   *tls.Config
	token string

	mu      sync.Mutex
	clients map[string]*Client
	closed  bool
}

// NewPool returns an empty Pool whose Clients use tlsCfg (nil: plaintext)
// and send token with every call ("" none).
func NewPool(tlsCfg *tls.Config, token string) *Pool {
	return &Pool{tls: tlsCfg, token: token, clients: map[string]*Client{}}
}

// Get returns the Client for addr, dialing it on first use. The Client
// belongs to the Pool: do not close it.
func (p *Pool) Get(addr string) (*Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrPoolClosed
	}
	if c, ok := p.clients[addr]; ok {
		return c, nil
	}
	c, err := DialToken(addr, p.tls, p.token)
	if err != nil {
		return nil, err
	}
	p.clients[addr] = c
	return c, nil
}

// Close closes every Client; later Gets fail with ErrPoolClosed. Safe to
// call more than once.
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	var err error
	for addr, c := range p.clients {
		err = errors.Join(err, c.Close())
		delete(p.clients, addr)
	}
	return err
}

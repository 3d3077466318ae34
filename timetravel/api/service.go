package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/floelake/floe/cluster"
	clusterv1 "github.com/floelake/floe/proto/floe/cluster/v1"
	floev1 "github.com/floelake/floe/proto/floe/v1"
)

// Service is the floe API of one node: the table service and the cluster
// service, over gRPC on Config.GRPCAddr and over HTTP/JSON through
// HTTPHandler.
//
// One implementation, two transports. The HTTP/JSON form is grpc-gateway's
// translation of each call into a gRPC call to an in-process server (over
// an in-memory connection, never the network), which runs the same
// interceptors as the public one: authentication, limits and error
// mapping are written once. Query and Changes are the exception: over
// HTTP they answer JSON lines written straight from the Arrow batches
// (http.go), which a gateway stream would wrap in envelopes.
type Service struct {
	cfg    Config
	log    *slog.Logger
	server *Server
	auth   *Auth
	public *grpc.Server
	inproc *grpc.Server
	mem    *bufconn.Listener
	conn   *grpc.ClientConn
	ln     net.Listener
	http   *httpAPI
}

// Options are what a Service serves beside the Backend.
type Options struct {
	// Cluster is the cluster service (Status, Join, Leave, and the
	// members' Apply), nil to leave it out.
	Cluster cluster.Service
	// TLS is the server's TLS configuration, nil for none (the node
	// builds it from Config.TLS).
	TLS    *tls.Config
	Logger *slog.Logger
}

// defaultCallTimeout bounds a unary call that has no deadline of its own:
// a rollback waits for the table writer's commit in progress.
const defaultCallTimeout = 2 * time.Minute

// maxMessageSize bounds requests and responses over gRPC.
const maxMessageSize = 64 << 20

// New builds the API; Serve starts the gRPC listener. ctx bounds the
// background work calls start (compactions).
func New(ctx context.Context, cfg Config, b Backend, opts Options) (*Service, error) {
	cfg = cfg.WithDefaults()
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	auth, err := NewAuth(cfg.Tokens)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: log, auth: auth, server: NewServer(ctx, b, cfg, log)}
	register := func(g *grpc.Server) {
		floev1.RegisterTableServiceServer(g, s.server)
		if opts.Cluster != nil {
			cluster.Register(g, opts.Cluster)
		}
	}
	s.public = grpc.NewServer(s.serverOptions(opts.TLS)...)
	register(s.public)
	s.inproc = grpc.NewServer(s.serverOptions(nil)...)
	register(s.inproc)
	s.mem = bufconn.Listen(1 << 20)
	go func() { _ = s.inproc.Serve(s.mem) }()
	s.conn, err = grpc.NewClient("passthrough:///floe-inproc",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return s.mem.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageSize), grpc.MaxCallSendMsgSize(maxMessageSize)))
	if err != nil {
		s.inproc.Stop()
		return nil, fmt.Errorf("api: in-process connection: %w", err)
	}
	gw := runtime.NewServeMux(
		runtime.WithErrorHandler(gatewayError),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}),
	)
	if err := floev1.RegisterTableServiceHandler(ctx, gw, s.conn); err != nil {
		s.Close()
		return nil, err
	}
	if opts.Cluster != nil {
		if err := clusterv1.RegisterClusterServiceHandler(ctx, gw, s.conn); err != nil {
			s.Close()
			return nil, err
		}
	}
	s.http = newHTTPAPI(s, gw)
	return s, nil
}

func (s *Service) serverOptions(tlsCfg *tls.Config) []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxMessageSize),
		grpc.MaxSendMsgSize(maxMessageSize),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.ChainUnaryInterceptor(s.auth.UnaryInterceptor, func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if _, ok := ctx.Deadline(); !ok {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, defaultCallTimeout)
				defer cancel()
			}
			resp, err := h(ctx, req)
			return resp, toStatus(err)
		}),
		grpc.ChainStreamInterceptor(s.auth.StreamInterceptor),
	}
	if tlsCfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	return opts
}

// Listen binds Config.GRPCAddr and serves gRPC there (nothing when it is
// empty).
func (s *Service) Listen() error {
	if s.cfg.GRPCAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("node.api.grpc_addr %s: %w", s.cfg.GRPCAddr, err)
	}
	s.ln = ln
	go func() {
		if err := s.public.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error("the gRPC API stopped", "err", err)
		}
	}()
	return nil
}

// GRPCAddr is the address gRPC listens on, once Listen bound it.
func (s *Service) GRPCAddr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Server is the table service (for tests and the node).
func (s *Service) Server() *Server { return s.server }

// Close stops both servers.
func (s *Service) Close() {
	stopped := make(chan struct{})
	go func() { s.public.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(2 * time.Second):
		s.public.Stop()
	}
	if s.conn != nil {
		_ = s.conn.Close()
	}
	s.inproc.Stop()
}

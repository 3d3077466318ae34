// Package client connects to the floe API of a node over gRPC
// (proto/floe/v1, proto/floe/cluster/v1): a connection with the bearer
// token on every call, the typed clients, errors in words and the rows of
// a Query or Changes stream.
//
//	c, err := client.Dial("127.0.0.1:7070", client.Options{Token: tok})
//	...
//	defer c.Close()
//	resp, err := c.Tables.ListTables(ctx, &floev1.ListTablesRequest{})
//	if err != nil {
//		return client.Plain(err) // "permission denied: ..."
//	}
package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"

	"github.com/apache/arrow-go/v18/arrow"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	clusterv1 "github.com/floelake/floe/proto/floe/cluster/v1"
	floev1 "github.com/floelake/floe/proto/floe/v1"
	"github.com/floelake/floe/timetravel"
)

// MaxMessageSize bounds a message received or sent, as the server bounds
// its own (a QueryResponse holds one Arrow batch of up to this size).
const MaxMessageSize = 64 << 20

// Options are how to reach a node's API.
type Options struct {
	// Token is the bearer token sent with every call ("" sends none). It
	// is sent over a plaintext connection too (a node on localhost
	// without TLS): use TLS to reach a node over a network.
	Token string
	// TLS connects over TLS, verifying the node's certificate against
	// the system's roots, or CAFile's. Setting CAFile, ServerName or
	// Insecure implies it.
	TLS bool
	// CAFile is a PEM file of the CA certificates to trust instead of
	// the system's.
	CAFile string
	// ServerName is the name to verify in the node's certificate
	// (default: the host of the address).
	ServerName string
	// Insecure skips the verification of the node's certificate (TLS
	// still encrypts): for tests only.
	Insecure bool
	// UserAgent is prepended to gRPC's user agent ("" for none).
	UserAgent string
	// DialOptions are added to the connection's options (after floe's).
	DialOptions []grpc.DialOption
}

// Client is a connection to a node's API and its typed clients.
type Client struct {
	addr    string
	conn    *grpc.ClientConn
	Tables  floev1.TableServiceClient
	Cluster clusterv1.ClusterServiceClient
}

// Dial returns a client of the API at addr (host:port). It does not
// connect: the first call does, and fails (codes.Unavailable) when the
// node cannot be reached.
func Dial(addr string, o Options) (*Client, error) {
	if addr == "" {
		return nil, errors.New("client: no address to dial")
	}
	creds := insecure.NewCredentials()
	if o.TLS || o.CAFile != "" || o.ServerName != "" || o.Insecure {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName, InsecureSkipVerify: o.Insecure} //nolint:gosec // Insecure is the caller's explicit choice
		if o.CAFile != "" {
			pool, err := loadCA(o.CAFile)
			if err != nil {
				return nil, err
			}
			cfg.RootCAs = pool
		}
		creds = credentials.NewTLS(cfg)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageSize), grpc.MaxCallSendMsgSize(MaxMessageSize)),
	}
	if tok := strings.TrimSpace(o.Token); tok != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(Bearer(tok)))
	}
	if o.UserAgent != "" {
		opts = append(opts, grpc.WithUserAgent(o.UserAgent))
	}
	opts = append(opts, o.DialOptions...)
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("client: dial %s: %w", addr, err)
	}
	return &Client{addr: addr, conn: conn, Tables: floev1.NewTableServiceClient(conn), Cluster: clusterv1.NewClusterServiceClient(conn)}, nil
}

// Addr is the address the client calls.
func (c *Client) Addr() string { return c.addr }

// Conn is the client's connection.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection; calls in flight fail.
func (c *Client) Close() error { return c.conn.Close() }

func loadCA(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("client: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("client: CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}

// Bearer is a token sent as "authorization: Bearer <token>" with every
// call. It does not require transport security, so that a token works on
// a plaintext connection to a node on localhost.
type Bearer string

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (b Bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (Bearer) RequireTransportSecurity() bool { return false }

// Error is a call's failure: the status code and the server's message.
type Error struct {
	Code    codes.Code
	Message string
}

// Error is the code in words, then the message: "not found: table ...".
func (e *Error) Error() string {
	if e.Message == "" {
		return CodeWords(e.Code)
	}
	return CodeWords(e.Code) + ": " + e.Message
}

// GRPCStatus lets status.FromError and status.Code read the error.
func (e *Error) GRPCStatus() *status.Status { return status.New(e.Code, e.Message) }

// Plain turns a gRPC status error into an *Error, whose text is the
// status's code in words and its message; nil stays nil, and an error
// that carries no status is returned as it is.
func Plain(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	return &Error{Code: st.Code(), Message: st.Message()}
}

// CodeWords is a code in lower-case words: codes.PermissionDenied is
// "permission denied", codes.OK "ok".
func CodeWords(c codes.Code) string {
	if c == codes.OK {
		return "ok"
	}
	s := c.String()
	var b strings.Builder
	for i, r := range s {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// RowStream is a Query or Changes call's stream.
type RowStream interface {
	Recv() (*floev1.QueryResponse, error)
}

// ReadRows reads a Query or Changes stream to its end: emit gets each
// record batch (released when emit returns: Retain one to keep it), and
// ReadRows returns the statistics of the last message. An error of the
// call is Plain; an error of emit is returned as it is.
func ReadRows(s RowStream, emit func(arrow.RecordBatch) error) (*floev1.QueryStats, error) {
	var stats *floev1.QueryStats
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			if stats == nil {
				return nil, errors.New("the answer ended without its statistics: it may be incomplete")
			}
			return stats, nil
		}
		if err != nil {
			return stats, Plain(err)
		}
		if len(m.GetArrowIpc()) > 0 {
			recs, err := timetravel.ReadIPCBatch(m.GetArrowIpc(), nil)
			if err != nil {
				return stats, err
			}
			for i, rec := range recs {
				err := emit(rec)
				rec.Release()
				if err != nil {
					for _, r := range recs[i+1:] {
						r.Release()
					}
					return stats, err
				}
			}
		}
		if m.GetStats() != nil {
			stats = m.GetStats()
		}
	}
}

package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	floev1 "github.com/floelake/floe/proto/floe/v1"
	"github.com/floelake/floe/timetravel"
	"github.com/floelake/floe/timetravel/api"
)

const testToken = "client-test-token-0123"

// fakeTables answers ListTables with one table and Query with the rows
// 0..n-1 of column id in batches of two, then the stats; a query whose
// where is "fail" fails after the first batch, "nostats" ends without
// statistics.
type fakeTables struct {
	floev1.UnimplementedTableServiceServer
}

func (fakeTables) ListTables(context.Context, *floev1.ListTablesRequest) (*floev1.ListTablesResponse, error) {
	return &floev1.ListTablesResponse{Tables: []*floev1.TableSummary{{Name: "ns.t"}}}, nil
}

func batch(from, to int64) arrow.RecordBatch {
	b := array.NewInt64Builder(memory.DefaultAllocator)
	defer b.Release()
	for i := from; i < to; i++ {
		b.Append(i)
	}
	col := b.NewArray()
	defer col.Release()
	sch := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
	return array.NewRecordBatch(sch, []arrow.Array{col}, to-from)
}

func (fakeTables) Query(req *floev1.QueryRequest, s floev1.TableService_QueryServer) error {
	n := req.GetLimit()
	for i := int64(0); i < n; i += 2 {
		rec := batch(i, min(i+2, n))
		data, err := timetravel.IPCBatch(rec)
		rec.Release()
		if err != nil {
			return err
		}
		if err := s.Send(&floev1.QueryResponse{ArrowIpc: data}); err != nil {
			return err
		}
		if req.GetWhere() == "fail" {
			return status.Error(codes.ResourceExhausted, "the query timed out after 60s (api.query_timeout)")
		}
	}
	if req.GetWhere() == "nostats" {
		return nil
	}
	return s.Send(&floev1.QueryResponse{Stats: &floev1.QueryStats{SnapshotId: 7, Rows: n}})
}

// serve runs the fake table service behind the API's authentication, over
// TLS when cert is not nil, and returns its address.
func serve(t *testing.T, cert *tls.Certificate) string {
	t.Helper()
	auth, err := api.NewAuth([]api.Token{{Name: "r", Token: testToken, Scope: api.ScopeRead}})
	require.NoError(t, err)
	opts := []grpc.ServerOption{grpc.UnaryInterceptor(auth.UnaryInterceptor), grpc.StreamInterceptor(auth.StreamInterceptor)}
	if cert != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12})))
	}
	srv := grpc.NewServer(opts...)
	floev1.RegisterTableServiceServer(srv, fakeTables{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

func dial(t *testing.T, addr string, o Options) *Client {
	t.Helper()
	c, err := Dial(addr, o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func listTables(c *Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Tables.ListTables(ctx, &floev1.ListTablesRequest{})
	return Plain(err)
}

// A token goes with every call over a plaintext connection; a call
// without one fails with the server's message, the code in words.
func TestBearerOverPlaintext(t *testing.T) {
	addr := serve(t, nil)
	require.NoError(t, listTables(dial(t, addr, Options{Token: testToken})))
	require.NoError(t, listTables(dial(t, addr, Options{Token: " " + testToken + "\n"})), "the token is trimmed")

	err := listTables(dial(t, addr, Options{}))
	require.EqualError(t, err, `unauthenticated: this node requires a bearer token: send "authorization: Bearer <token>" (the CLI's --token or FLOE_TOKEN)`)
	var ce *Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, codes.Unauthenticated, ce.Code)
	require.Equal(t, codes.Unauthenticated, status.Code(err), "the code survives Plain")

	err = listTables(dial(t, addr, Options{Token: "not-the-token-0123456"}))
	require.EqualError(t, err, "unauthenticated: the bearer token is not one this node accepts")
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	cert, caFile := selfSigned(t, dir)
	addr := serve(t, &cert)

	require.NoError(t, listTables(dial(t, addr, Options{Token: testToken, CAFile: caFile, ServerName: "floe.test"})))
	require.NoError(t, listTables(dial(t, addr, Options{Token: testToken, TLS: true, CAFile: caFile})), "the certificate names 127.0.0.1 too")
	require.NoError(t, listTables(dial(t, addr, Options{Token: testToken, Insecure: true})))

	// The system's roots do not know the certificate.
	err := listTables(dial(t, addr, Options{Token: testToken, TLS: true}))
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	require.ErrorContains(t, err, "certificate")
	// Nor does a plaintext client speak TLS.
	err = listTables(dial(t, addr, Options{Token: testToken}))
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)

	_, err = Dial(addr, Options{CAFile: filepath.Join(dir, "missing.pem")})
	require.ErrorContains(t, err, "missing.pem")
	empty := filepath.Join(dir, "empty.pem")
	require.NoError(t, os.WriteFile(empty, []byte("nothing"), 0o600))
	_, err = Dial(addr, Options{CAFile: empty})
	require.ErrorContains(t, err, "holds no PEM certificate")
}

func TestReadRows(t *testing.T) {
	c := dial(t, serve(t, nil), Options{Token: testToken})
	query := func(limit int64, where string) ([]int64, *floev1.QueryStats, error) {
		s, err := c.Tables.Query(context.Background(), &floev1.QueryRequest{Table: "ns.t", Limit: limit, Where: where})
		require.NoError(t, err)
		var ids []int64
		st, err := ReadRows(s, func(rec arrow.RecordBatch) error {
			ids = append(ids, rec.Column(0).(*array.Int64).Int64Values()...)
			return nil
		})
		return ids, st, err
	}
	ids, st, err := query(5, "")
	require.NoError(t, err)
	require.Equal(t, []int64{0, 1, 2, 3, 4}, ids)
	require.Equal(t, int64(7), st.GetSnapshotId())
	require.Equal(t, int64(5), st.GetRows())

	ids, _, err = query(5, "fail")
	require.Equal(t, []int64{0, 1}, ids, "the rows before the error")
	require.EqualError(t, err, "resource exhausted: the query timed out after 60s (api.query_timeout)")

	_, _, err = query(3, "nostats")
	require.ErrorContains(t, err, "ended without its statistics")

	// An error of emit ends the read, as it is.
	s, err := c.Tables.Query(context.Background(), &floev1.QueryRequest{Table: "ns.t", Limit: 4})
	require.NoError(t, err)
	stop := errors.New("stop")
	_, err = ReadRows(s, func(arrow.RecordBatch) error { return stop })
	require.ErrorIs(t, err, stop)
}

func TestPlain(t *testing.T) {
	require.NoError(t, Plain(nil))
	other := errors.New("not a status")
	require.Equal(t, other, Plain(other))
	err := Plain(status.Error(codes.PermissionDenied, "Rollback needs a token with the admin scope"))
	require.EqualError(t, err, "permission denied: Rollback needs a token with the admin scope")
	require.Equal(t, err, Plain(err))
	require.EqualError(t, Plain(status.Error(codes.NotFound, "")), "not found")
	for c, want := range map[codes.Code]string{
		codes.OK: "ok", codes.InvalidArgument: "invalid argument", codes.FailedPrecondition: "failed precondition",
		codes.ResourceExhausted: "resource exhausted", codes.Unavailable: "unavailable", codes.DeadlineExceeded: "deadline exceeded",
	} {
		require.Equal(t, want, CodeWords(c))
	}
}

// selfSigned writes a self-signed certificate for floe.test and
// 127.0.0.1, and returns it and the path of its PEM (the CA file).
func selfSigned(t *testing.T, dir string) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "floe.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"floe.test"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	require.NoError(t, err)
	path := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(path, certPEM, 0o600))
	return cert, path
}

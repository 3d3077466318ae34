package api

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	clusterv1 "github.com/floelake/floe/proto/floe/cluster/v1"
	floev1 "github.com/floelake/floe/proto/floe/v1"
)

func TestAuthScopes(t *testing.T) {
	file := filepath.Join(t.TempDir(), "admin.token")
	require.NoError(t, os.WriteFile(file, []byte("admin-secret-from-file\n"), 0o600))
	a, err := NewAuth([]Token{
		{Name: "dash", Token: "read-secret-0123456789", Scope: ScopeRead},
		{Name: "ops", File: file, Scope: ScopeAdmin},
	})
	require.NoError(t, err)
	read, admin := "Bearer read-secret-0123456789", "bearer admin-secret-from-file"
	for _, tc := range []struct {
		auth, method string
		want         codes.Code
	}{
		{"", floev1.TableService_ListTables_FullMethodName, codes.Unauthenticated},
		{"Basic abc", floev1.TableService_ListTables_FullMethodName, codes.Unauthenticated},
		{"Bearer nope-nope-nope-nope", floev1.TableService_ListTables_FullMethodName, codes.Unauthenticated},
		{read, floev1.TableService_ListTables_FullMethodName, codes.OK},
		{read, floev1.TableService_Query_FullMethodName, codes.OK},
		{read, clusterv1.ClusterService_Status_FullMethodName, codes.OK},
		{read, MethodRESTCatalog, codes.OK},
		{read, floev1.TableService_Rollback_FullMethodName, codes.PermissionDenied},
		{read, floev1.TableService_CreateTag_FullMethodName, codes.PermissionDenied},
		{read, floev1.TableService_DeleteTag_FullMethodName, codes.PermissionDenied},
		{read, floev1.TableService_Compact_FullMethodName, codes.PermissionDenied},
		{read, clusterv1.ClusterService_Join_FullMethodName, codes.PermissionDenied},
		{read, clusterv1.ClusterService_Apply_FullMethodName, codes.PermissionDenied},
		{read, "/some.future.Service/Call", codes.PermissionDenied},
		{admin, floev1.TableService_Rollback_FullMethodName, codes.OK},
		{admin, clusterv1.ClusterService_Leave_FullMethodName, codes.OK},
	} {
		err := a.Check(tc.auth, tc.method)
		require.Equal(t, tc.want, status.Code(err), "%q %s: %v", tc.auth, tc.method, err)
	}
	err = a.Check(read, floev1.TableService_Rollback_FullMethodName)
	require.ErrorContains(t, err, `Rollback needs a token with the admin scope; token "dash" has the read scope`)

	open, err := NewAuth(nil)
	require.NoError(t, err)
	require.True(t, open.Open())
	require.NoError(t, open.Check("", floev1.TableService_Rollback_FullMethodName))
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, Config{}.Validate(), "zero limits are the defaults")
	err := Config{
		TLS:     TLSConfig{CertFile: "c.pem"},
		Tokens:  []Token{{Token: "short", Scope: "write"}, {Name: "x", Token: "0123456789abcdef", File: "f", Scope: ScopeRead}},
		MaxRows: -1,
	}.Validate()
	for _, want := range []string{"tls: needs both", "tokens[0].name: is required", "tokens[0].token: must be at least 16",
		"tokens[0].scope: must be read or admin", "tokens[1]: needs exactly one of token and token_file", "max_rows"} {
		require.ErrorContains(t, err, want)
	}
}

func TestHTTPStatusAndRoutes(t *testing.T) {
	require.Equal(t, 409, httpStatus(codes.FailedPrecondition))
	require.Equal(t, 429, httpStatus(codes.ResourceExhausted))
	require.Equal(t, "NOT_FOUND", codeName(codes.NotFound))
	require.Equal(t, "INVALID_ARGUMENT", codeName(codes.InvalidArgument))
	for path, want := range map[string][2]string{
		"/api/v1/tables/ns.t/query":   {"ns.t", "query"},
		"/api/v1/tables/ns.t/changes": {"ns.t", "changes"},
	} {
		table, what, ok := rowsRoute(path)
		require.True(t, ok, path)
		require.Equal(t, want, [2]string{table, what})
	}
	for _, path := range []string{"/api/v1/tables/ns.t", "/api/v1/tables/ns.t/snapshots", "/api/v1/tables//query", "/api/v1/tables/a/b/query"} {
		_, _, ok := rowsRoute(path)
		require.False(t, ok, path)
	}
}

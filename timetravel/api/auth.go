package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	clusterv1 "github.com/floelake/floe/proto/floe/cluster/v1"
	floev1 "github.com/floelake/floe/proto/floe/v1"
)

// Authentication and authorization. A caller presents a bearer token
// (gRPC metadata "authorization: Bearer <token>", or the HTTP header of
// the same name); the token's scope decides what it may call. admin may
// call everything; read may call what changes nothing. A method not in
// readMethods needs admin: a call added later is closed until someone
// decides otherwise.
//
// Tokens are compared in constant time, through their SHA-256 digests
// (so the comparison does not leak a token's length either). With no
// tokens configured every call is allowed: the node logs that at start.

// readMethods are the calls a read token may make.
var readMethods = map[string]bool{
	floev1.TableService_ListTables_FullMethodName:    true,
	floev1.TableService_GetTable_FullMethodName:      true,
	floev1.TableService_ListSnapshots_FullMethodName: true,
	floev1.TableService_GetSnapshot_FullMethodName:   true,
	floev1.TableService_Query_FullMethodName:         true,
	floev1.TableService_Changes_FullMethodName:       true,
	floev1.TableService_GetCompaction_FullMethodName: true,
	clusterv1.ClusterService_Status_FullMethodName:   true,
	MethodRESTCatalog: true,
}

// Method scopes for the HTTP-only routes (query and changes over JSON
// lines, the console) reuse the gRPC method names.

// Auth checks tokens.
type Auth struct {
	tokens []authToken
	// peer is the first admin token: what a cluster member sends the
	// others.
	peer string
}

type authToken struct {
	name   string
	digest [32]byte
	admin  bool
}

// NewAuth returns the checker of tokens (loaded from their files).
func NewAuth(ts []Token) (*Auth, error) {
	ts, err := loadTokens(ts)
	if err != nil {
		return nil, err
	}
	a := &Auth{}
	for _, t := range ts {
		a.tokens = append(a.tokens, authToken{name: t.Name, digest: sha256.Sum256([]byte(t.Token)), admin: t.Scope == ScopeAdmin})
		if t.Scope == ScopeAdmin && a.peer == "" {
			a.peer = t.Token
		}
	}
	return a, nil
}

// PeerToken is the token a cluster member sends the others: the first
// admin token ("" with none).
func (a *Auth) PeerToken() string { return a.peer }

// Open reports whether no token is configured (every call allowed).
func (a *Auth) Open() bool { return len(a.tokens) == 0 }

// Check returns nil when the authorization value (a header's or
// metadata's: "Bearer <token>") may call method, else an Unauthenticated
// or PermissionDenied status error that says what is missing.
func (a *Auth) Check(authorization, method string) error {
	if a.Open() {
		return nil
	}
	if authorization == "" {
		return status.Error(codes.Unauthenticated, "this node requires a bearer token: send \"authorization: Bearer <token>\" (the CLI's --token or FLOE_TOKEN)")
	}
	scheme, tok, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(tok) == "" {
		return status.Error(codes.Unauthenticated, "the authorization must be \"Bearer <token>\"")
	}
	d := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	var found *authToken
	for i := range a.tokens {
		// Every token is compared, whichever matches.
		if subtle.ConstantTimeCompare(d[:], a.tokens[i].digest[:]) == 1 {
			found = &a.tokens[i]
		}
	}
	if found == nil {
		return status.Error(codes.Unauthenticated, "the bearer token is not one this node accepts")
	}
	if !found.admin && !readMethods[method] {
		return status.Errorf(codes.PermissionDenied, "%s needs a token with the admin scope; token %q has the read scope", shortMethod(method), found.name)
	}
	return nil
}

func shortMethod(m string) string {
	if i := strings.LastIndex(m, "/"); i >= 0 {
		return m[i+1:]
	}
	return m
}

func fromMetadata(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("authorization"); len(v) > 0 {
		return v[0]
	}
	return ""
}

// UnaryInterceptor checks every unary call.
func (a *Auth) UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := a.Check(fromMetadata(ctx), info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// StreamInterceptor checks every streaming call.
func (a *Auth) StreamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := a.Check(fromMetadata(ss.Context()), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}

package registry_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/floelake/floe/internal/testutil/registry"
)

const (
	userV1 = `{"type":"record","name":"User","namespace":"acme","fields":[{"name":"id","type":"long"}]}`
	// userV2 adds a field with a default: backward compatible with v1.
	userV2 = `{"type":"record","name":"User","namespace":"acme","fields":[{"name":"id","type":"long"},{"name":"name","type":"string","default":""}]}`
	// userBad changes id's type: not backward compatible.
	userBad = `{"type":"record","name":"User","namespace":"acme","fields":[{"name":"id","type":"string"}]}`

	moneyProto = `syntax = "proto3";
package acme;
message Money { int64 units = 1; string currency = 2; }`
	orderProto = `syntax = "proto3";
package acme;
import "acme/money.proto";
message Order { string id = 1; acme.Money total = 2; }`
)

func client(t *testing.T, s *registry.Server, opts ...sr.ClientOpt) *sr.Client {
	t.Helper()
	cl, err := sr.NewClient(append([]sr.ClientOpt{sr.URLs(s.URL())}, opts...)...)
	require.NoError(t, err)
	return cl
}

// requireCode fails unless err is the registry's answer status with code.
func requireCode(t *testing.T, err error, status, code int) {
	t.Helper()
	var re *sr.ResponseError
	require.ErrorAs(t, err, &re)
	require.Equal(t, status, re.StatusCode, "%v", err)
	require.Equal(t, code, re.ErrorCode, "%v", err)
	require.NotEmpty(t, re.Message)
}

func TestRegisterAndFetch(t *testing.T) {
	s := registry.Start(t)
	cl := client(t, s)
	ctx := context.Background()

	v1, err := cl.CreateSchema(ctx, "users-value", sr.Schema{Schema: userV1})
	require.NoError(t, err)
	require.Equal(t, 1, v1.ID)
	require.Equal(t, 1, v1.Version)
	require.Equal(t, "users-value", v1.Subject)

	// The same text under the same subject: the same id, no new version.
	id, err := cl.RegisterSchema(ctx, "users-value", sr.Schema{Schema: userV1}, -1, -1)
	require.NoError(t, err)
	require.Equal(t, 1, id)
	versions, err := cl.SubjectVersions(ctx, "users-value")
	require.NoError(t, err)
	require.Equal(t, []int{1}, versions)

	v2, err := cl.CreateSchema(ctx, "users-value", sr.Schema{Schema: userV2})
	require.NoError(t, err)
	require.Equal(t, 2, v2.ID)
	require.Equal(t, 2, v2.Version)

	// The same schema under another subject: the same id, that subject's
	// version 1.
	other, err := cl.CreateSchema(ctx, "people-value", sr.Schema{Schema: userV1})
	require.NoError(t, err)
	require.Equal(t, 1, other.ID)
	require.Equal(t, 1, other.Version)

	got, err := cl.SchemaByID(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, userV2, got.Schema)
	require.Equal(t, sr.TypeAvro, got.Type)

	text, err := cl.SchemaTextByID(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, userV1, text)

	latest, err := cl.SchemaByVersion(ctx, "users-value", -1)
	require.NoError(t, err)
	require.Equal(t, 2, latest.ID)
	require.Equal(t, 2, latest.Version)

	subjects, err := cl.Subjects(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"people-value", "users-value"}, subjects)

	usages, err := cl.SchemaVersionsByID(ctx, 1)
	require.NoError(t, err)
	require.ElementsMatch(t, []sr.SubjectVersion{{Subject: "people-value", Version: 1}, {Subject: "users-value", Version: 1}}, usages)

	bySubject, err := cl.SubjectsByID(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, []string{"people-value", "users-value"}, bySubject)

	found, err := cl.LookupSchema(ctx, "users-value", sr.Schema{Schema: userV2})
	require.NoError(t, err)
	require.Equal(t, 2, found.ID)
	require.Equal(t, 2, found.Version)

	types, err := cl.SupportedTypes(ctx)
	require.NoError(t, err)
	require.Len(t, types, 3)
}

func TestProtobufWithReferences(t *testing.T) {
	s := registry.Start(t)
	cl := client(t, s)
	ctx := context.Background()

	money, err := cl.CreateSchema(ctx, "acme/money.proto", sr.Schema{Schema: moneyProto, Type: sr.TypeProtobuf})
	require.NoError(t, err)
	order, err := cl.CreateSchema(ctx, "orders-value", sr.Schema{
		Schema: orderProto, Type: sr.TypeProtobuf,
		References: []sr.SchemaReference{{Name: "acme/money.proto", Subject: "acme/money.proto", Version: 1}},
	})
	require.NoError(t, err)

	got, err := cl.SchemaByID(ctx, order.ID)
	require.NoError(t, err)
	require.Equal(t, sr.TypeProtobuf, got.Type)
	require.Equal(t, []sr.SchemaReference{{Name: "acme/money.proto", Subject: "acme/money.proto", Version: 1}}, got.References)

	// A subject with a slash in it, escaped in the path.
	dep, err := cl.SchemaByVersion(ctx, "acme/money.proto", 1)
	require.NoError(t, err)
	require.Equal(t, money.ID, dep.ID)
	require.Equal(t, moneyProto, dep.Schema.Schema)

	refs, err := cl.SchemaReferences(ctx, "acme/money.proto", 1)
	require.NoError(t, err)
	require.Len(t, refs, 1)
	require.Equal(t, order.ID, refs[0].ID)

	// A referenced version cannot be deleted.
	_, err = cl.DeleteSubject(ctx, "acme/money.proto", sr.SoftDelete)
	requireCode(t, err, http.StatusUnprocessableEntity, registry.CodeReferenceExists)

	// A reference to nothing is an invalid schema.
	_, err = cl.CreateSchema(ctx, "broken-value", sr.Schema{
		Schema: orderProto, Type: sr.TypeProtobuf,
		References: []sr.SchemaReference{{Name: "acme/money.proto", Subject: "nope", Version: 1}},
	})
	requireCode(t, err, http.StatusUnprocessableEntity, registry.CodeInvalidSchema)
}

func TestAvroReferences(t *testing.T) {
	s := registry.Start(t)
	ctx := context.Background()
	cl := client(t, s)
	addr := `{"type":"record","name":"Address","namespace":"acme","fields":[{"name":"city","type":"string"}]}`
	person := `{"type":"record","name":"Person","namespace":"acme","fields":[{"name":"home","type":"acme.Address"}]}`

	_, err := cl.CreateSchema(ctx, "person-value", sr.Schema{Schema: person})
	requireCode(t, err, http.StatusUnprocessableEntity, registry.CodeInvalidSchema) // acme.Address is undefined

	_, err = cl.CreateSchema(ctx, "address", sr.Schema{Schema: addr})
	require.NoError(t, err)
	_, err = cl.CreateSchema(ctx, "person-value", sr.Schema{Schema: person,
		References: []sr.SchemaReference{{Name: "acme.Address", Subject: "address", Version: 1}}})
	require.NoError(t, err)
}

func TestErrors(t *testing.T) {
	s := registry.Start(t)
	cl := client(t, s)
	ctx := context.Background()
	s.MustRegister(t, "users-value", registry.Schema{Schema: userV1})

	_, err := cl.SchemaByID(ctx, 7)
	requireCode(t, err, http.StatusNotFound, registry.CodeSchemaNotFound)
	require.Equal(t, "Schema 7 not found", err.Error())

	_, err = cl.SubjectVersions(ctx, "nope")
	requireCode(t, err, http.StatusNotFound, registry.CodeSubjectNotFound)
	_, err = cl.SchemaByVersion(ctx, "nope", 1)
	requireCode(t, err, http.StatusNotFound, registry.CodeSubjectNotFound)
	_, err = cl.SchemaByVersion(ctx, "users-value", 9)
	requireCode(t, err, http.StatusNotFound, registry.CodeVersionNotFound)

	for _, bad := range []sr.Schema{
		{Schema: `{"type":"record","name":"X","fields":[{"name":"a","type":"nosuchtype"}]}`},
		{Schema: `not json`},
		{Schema: `{"type":"record"`, Type: sr.TypeJSON},
		{Schema: userV1, Type: sr.TypeProtobuf},
		{Schema: `syntax = "proto3"; message A { int32 x = 1;`, Type: sr.TypeProtobuf},
	} {
		_, err = cl.CreateSchema(ctx, "bad-value", bad)
		requireCode(t, err, http.StatusUnprocessableEntity, registry.CodeInvalidSchema)
	}

	// A bad version string, a bad level, an unknown path and method, as raw
	// requests (sr cannot send them).
	for _, c := range []struct {
		method, path, body string
		status, code       int
	}{
		{"GET", "/subjects/users-value/versions/zero", "", 422, registry.CodeInvalidVersion},
		{"GET", "/subjects/users-value/versions/0", "", 422, registry.CodeInvalidVersion},
		{"PUT", "/config", `{"compatibility":"SOMETIMES"}`, 422, registry.CodeInvalidCompatibility},
		{"GET", "/schemas/ids/x", "", 404, registry.CodeSchemaNotFound},
		{"GET", "/nope", "", 404, 404},
		{"POST", "/nope", "", 404, 404},
		{"PUT", "/schemas/ids/1", "", 405, 405},
		{"POST", "/subjects/users-value/versions", `{"schema":`, 400, 400},
	} {
		req, err := http.NewRequest(c.method, s.URL()+c.path, strings.NewReader(c.body))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, c.status, resp.StatusCode, "%s %s: %s", c.method, c.path, body)
		require.Equal(t, registry.ContentType, resp.Header.Get("Content-Type"))
		var e struct {
			Code    int    `json:"error_code"`
			Message string `json:"message"`
		}
		require.NoError(t, json.Unmarshal(body, &e), "%s", body)
		require.Equal(t, c.code, e.Code, "%s %s: %s", c.method, c.path, body)
		require.NotEmpty(t, e.Message)
	}
}

func TestDeleteSubject(t *testing.T) {
	s := registry.Start(t, registry.WithCompatibility(registry.CompatNone))
	cl := client(t, s)
	ctx := context.Background()
	s.MustRegister(t, "a", registry.Schema{Schema: userV1})
	s.MustRegister(t, "a", registry.Schema{Schema: userV2})
	s.MustRegister(t, "b", registry.Schema{Schema: `"string"`})

	deleted, err := cl.DeleteSubject(ctx, "a", sr.SoftDelete)
	require.NoError(t, err)
	require.Equal(t, []int{1, 2}, deleted)

	subjects, err := cl.Subjects(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"b"}, subjects)
	subjects, err = cl.Subjects(sr.WithParams(ctx, sr.ShowDeleted))
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, subjects)

	// Gone from the subject, not from the ids.
	_, err = cl.SchemaByVersion(ctx, "a", 1)
	requireCode(t, err, http.StatusNotFound, registry.CodeSubjectNotFound)
	v1, err := cl.SchemaByVersion(sr.WithParams(ctx, sr.ShowDeleted), "a", 1)
	require.NoError(t, err)
	require.Equal(t, 1, v1.ID)
	_, err = cl.SchemaByID(ctx, 1)
	require.NoError(t, err)

	_, err = cl.DeleteSubject(ctx, "a", sr.SoftDelete)
	requireCode(t, err, http.StatusNotFound, registry.CodeSubjectSoftDeleted)
	_, err = cl.DeleteSubject(ctx, "b", sr.HardDelete)
	requireCode(t, err, http.StatusNotFound, registry.CodeSubjectNotSoftDeleted)

	// Registering again starts after the deleted versions.
	id := s.MustRegister(t, "a", registry.Schema{Schema: userV1})
	require.Equal(t, 1, id)
	versions, err := cl.SubjectVersions(ctx, "a")
	require.NoError(t, err)
	require.Equal(t, []int{3}, versions)

	// A hard delete forgets the ids no version uses any more; ids are
	// never given out again.
	require.NoError(t, cl.DeleteSchema(ctx, "a", 3, sr.SoftDelete))
	hard, err := cl.DeleteSubject(ctx, "a", sr.HardDelete)
	require.NoError(t, err)
	require.Equal(t, []int{1, 2, 3}, hard)
	_, err = cl.SchemaByID(ctx, 2)
	requireCode(t, err, http.StatusNotFound, registry.CodeSchemaNotFound)
	id = s.MustRegister(t, "c", registry.Schema{Schema: userV2})
	require.Equal(t, 4, id)
}

func TestCompatibility(t *testing.T) {
	s := registry.Start(t)
	cl := client(t, s)
	ctx := context.Background()

	global := cl.Compatibility(ctx)
	require.NoError(t, global[0].Err)
	require.Equal(t, sr.CompatBackward, global[0].Level)

	res := cl.Compatibility(ctx, "users-value")
	requireCode(t, res[0].Err, http.StatusNotFound, registry.CodeSubjectCompatNotSet)
	res = cl.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), "users-value")
	require.NoError(t, res[0].Err)
	require.Equal(t, sr.CompatBackward, res[0].Level)

	s.MustRegister(t, "users-value", registry.Schema{Schema: userV1})
	_, err := cl.CreateSchema(ctx, "users-value", sr.Schema{Schema: userBad})
	requireCode(t, err, http.StatusConflict, registry.CodeIncompatibleSchema)
	check, err := cl.CheckCompatibility(sr.WithParams(ctx, sr.Verbose), "users-value", -1, sr.Schema{Schema: userBad})
	require.NoError(t, err)
	require.False(t, check.Is)
	require.NotEmpty(t, check.Messages)
	check, err = cl.CheckCompatibility(ctx, "users-value", -1, sr.Schema{Schema: userV2})
	require.NoError(t, err)
	require.True(t, check.Is)

	set := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}, "users-value")
	require.NoError(t, set[0].Err)
	require.Equal(t, sr.CompatNone, set[0].Level)
	res = cl.Compatibility(ctx, "users-value")
	require.NoError(t, res[0].Err)
	require.Equal(t, sr.CompatNone, res[0].Level)
	_, err = cl.CreateSchema(ctx, "users-value", sr.Schema{Schema: userBad})
	require.NoError(t, err)

	reset := cl.ResetCompatibility(ctx, "users-value")
	require.NoError(t, reset[0].Err)
	require.Equal(t, sr.CompatNone, reset[0].Level)

	set = cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFullTransitive})
	require.NoError(t, set[0].Err)
	global = cl.Compatibility(ctx)
	require.Equal(t, sr.CompatFullTransitive, global[0].Level)
}

func TestBasicAuth(t *testing.T) {
	s := registry.Start(t, registry.WithBasicAuth("floe", "s3cret"))
	s.MustRegister(t, "a", registry.Schema{Schema: userV1})
	ctx := context.Background()

	_, err := client(t, s).SchemaByID(ctx, 1)
	requireCode(t, err, http.StatusUnauthorized, registry.CodeUnauthorized)
	_, err = client(t, s, sr.BasicAuth("floe", "wrong")).SchemaByID(ctx, 1)
	requireCode(t, err, http.StatusUnauthorized, registry.CodeUnauthorized)
	_, err = client(t, s, sr.BasicAuth("floe", "s3cret")).SchemaByID(ctx, 1)
	require.NoError(t, err)
}

func TestFailuresAndCounters(t *testing.T) {
	s := registry.Start(t)
	s.MustRegister(t, "a", registry.Schema{Schema: userV1})
	cl := client(t, s)
	ctx := context.Background()

	_, err := cl.SchemaByID(ctx, 1)
	require.NoError(t, err)
	_, err = cl.SchemaByID(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, 2, s.Requests("/schemas/ids/1"))
	require.Equal(t, 2, s.TotalRequests())

	s.FailWith(http.StatusServiceUnavailable)
	_, err = cl.SchemaByID(ctx, 1)
	requireCode(t, err, http.StatusServiceUnavailable, http.StatusServiceUnavailable)

	s.DropConnections()
	_, err = cl.SchemaByID(ctx, 1)
	require.Error(t, err)
	var re *sr.ResponseError
	require.False(t, errors.As(err, &re), "a dropped connection has no answer: %v", err)

	s.Heal()
	_, err = cl.SchemaByID(ctx, 1)
	require.NoError(t, err)
	require.GreaterOrEqual(t, s.Requests("/schemas/ids/1"), 5)

	s.ResetRequests()
	require.Zero(t, s.TotalRequests())

	s.Close()
	_, err = cl.SchemaByID(ctx, 1)
	require.ErrorContains(t, err, "connection refused")
}

func TestTLSClientAuth(t *testing.T) {
	s := registry.Start(t, registry.WithClientAuth())
	require.True(t, strings.HasPrefix(s.URL(), "https://"))
	s.MustRegister(t, "a", registry.Schema{Schema: userV1})
	files := s.TLSFiles()

	pem, err := os.ReadFile(files.CAFile)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem))
	cert, err := tls.LoadX509KeyPair(files.ClientCert, files.ClientKey)
	require.NoError(t, err)

	ok := client(t, s, sr.DialTLSConfig(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	_, err = ok.SchemaByID(context.Background(), 1)
	require.NoError(t, err)

	noCert := client(t, s, sr.DialTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	_, err = noCert.SchemaByID(context.Background(), 1)
	require.ErrorContains(t, err, "certificate required")
}

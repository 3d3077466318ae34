package registry_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/avro"

	"github.com/floelake/floe/ingest/registry"
	"github.com/floelake/floe/internal/conf"
	srtest "github.com/floelake/floe/internal/testutil/registry"
)

const (
	userAvro = `{"type":"record","name":"User","namespace":"acme","fields":[{"name":"id","type":"long"}]}`

	currencyProto = `syntax = "proto3";
package acme;
enum Currency { EUR = 0; USD = 1; }`
	moneyProto = `syntax = "proto3";
package acme;
import "acme/currency.proto";
message Money { int64 units = 1; acme.Currency currency = 2; }`
	orderProto = `syntax = "proto3";
package acme;
import "acme/money.proto";
import "acme/currency.proto";
message Order { string id = 1; acme.Money total = 2; acme.Currency billed_in = 3; }`
)

// counting counts what a Client reports.
type counting struct {
	fetched, failed, hits atomic.Int64
}

func (m *counting) SchemaFetched(ok bool, _ time.Duration) {
	if ok {
		m.fetched.Add(1)
	} else {
		m.failed.Add(1)
	}
}
func (m *counting) CacheHit() { m.hits.Add(1) }

func newClient(t *testing.T, cfg registry.Config, opts ...registry.Option) *registry.Client {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = conf.Duration(2 * time.Second)
	}
	c, err := registry.New(cfg, opts...)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func at(urls ...string) registry.Config { return registry.Config{URLs: urls} }

// requireClass fails unless err is an *Error of class whose message names
// the URL and the id.
func requireClass(t *testing.T, err error, class error, url string, id uint32) *registry.Error {
	t.Helper()
	require.Error(t, err)
	var e *registry.Error
	require.ErrorAs(t, err, &e)
	for _, c := range []error{registry.ErrUnknownSchema, registry.ErrUnreachable, registry.ErrAuth, registry.ErrNotFramed} {
		require.Equal(t, c == class, errors.Is(err, c), "%v: is %v", err, c)
	}
	require.Contains(t, err.Error(), url)
	require.Contains(t, err.Error(), "schema id "+uintString(id))
	require.Equal(t, id, e.ID)
	return e
}

func uintString(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

func TestSchema(t *testing.T) {
	s := srtest.Start(t)
	avroID := s.MustRegister(t, "users-value", srtest.Schema{Schema: userAvro})
	protoID := s.MustRegister(t, "acme/currency.proto", srtest.Schema{Schema: currencyProto, SchemaType: "PROTOBUF"})
	jsonID := s.MustRegister(t, "events-value", srtest.Schema{Schema: `{"type":"object"}`, SchemaType: "JSON"})
	c := newClient(t, at(s.URL()))
	ctx := context.Background()

	got, err := c.Schema(ctx, uint32(avroID))
	require.NoError(t, err)
	require.Equal(t, &registry.Schema{ID: uint32(avroID), Type: registry.TypeAvro, Text: userAvro}, got)

	got, err = c.Schema(ctx, uint32(protoID))
	require.NoError(t, err)
	require.Equal(t, registry.TypeProtobuf, got.Type)
	require.Equal(t, currencyProto, got.Text)

	got, err = c.Schema(ctx, uint32(jsonID))
	require.NoError(t, err)
	require.Equal(t, registry.TypeJSON, got.Type)

	// No references: Resolve has nothing more to say.
	got, texts, err := c.Resolve(ctx, uint32(avroID))
	require.NoError(t, err)
	require.Equal(t, userAvro, got.Text)
	require.Nil(t, texts)
}

func TestSchemaFetchedOncePerID(t *testing.T) {
	s := srtest.Start(t)
	ids := []uint32{
		uint32(s.MustRegister(t, "users-value", srtest.Schema{Schema: userAvro})),
		uint32(s.MustRegister(t, "acme/currency.proto", srtest.Schema{Schema: currencyProto, SchemaType: "PROTOBUF"})),
	}
	var m counting
	c := newClient(t, at(s.URL()), registry.WithMetrics(&m))
	// Slow answers, so that the callers pile up on the first request.
	s.SetDelay(30 * time.Millisecond)

	const callers = 50
	start := make(chan struct{})
	got := make([]*registry.Schema, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			got[i], errs[i] = c.Schema(context.Background(), ids[i%2])
		}()
	}
	close(start)
	wg.Wait()
	for i := range callers {
		require.NoError(t, errs[i])
		require.Same(t, got[i%2], got[i], "callers of one id share one *Schema")
	}
	for _, id := range ids {
		require.Equal(t, 1, s.Requests("/schemas/ids/"+uintString(id)), "id %d", id)
	}
	require.Equal(t, int64(2), m.fetched.Load())

	s.SetDelay(0)
	hits := m.hits.Load()
	for range 10 {
		_, err := c.Schema(context.Background(), ids[0])
		require.NoError(t, err)
	}
	require.Equal(t, 2, s.TotalRequests())
	require.Equal(t, hits+10, m.hits.Load())
}

func TestResolveReferencesRecursively(t *testing.T) {
	s := srtest.Start(t)
	s.MustRegister(t, "acme/currency.proto", srtest.Schema{Schema: currencyProto, SchemaType: "PROTOBUF"})
	moneyID := s.MustRegister(t, "acme/money.proto", srtest.Schema{Schema: moneyProto, SchemaType: "PROTOBUF",
		References: []srtest.Reference{{Name: "acme/currency.proto", Subject: "acme/currency.proto", Version: 1}}})
	orderID := uint32(s.MustRegister(t, "orders-value", srtest.Schema{Schema: orderProto, SchemaType: "PROTOBUF",
		References: []srtest.Reference{
			{Name: "acme/money.proto", Subject: "acme/money.proto", Version: 1},
			{Name: "acme/currency.proto", Subject: "acme/currency.proto", Version: 1},
		}}))
	var m counting
	c := newClient(t, at(s.URL()), registry.WithMetrics(&m))
	ctx := context.Background()

	order, texts, err := c.Resolve(ctx, orderID)
	require.NoError(t, err)
	require.Equal(t, orderProto, order.Text)
	require.Len(t, order.References, 2)
	require.Equal(t, map[string]string{"acme/money.proto": moneyProto, "acme/currency.proto": currencyProto}, texts)

	_, deps, err := c.Dependencies(ctx, orderID)
	require.NoError(t, err)
	var names []string
	for _, d := range deps {
		names = append(names, d.Name)
	}
	require.Equal(t, []string{"acme/currency.proto", "acme/money.proto"}, names, "dependencies first")
	require.Equal(t, "acme/money.proto", deps[1].Schema.Subject)
	require.Equal(t, 1, deps[1].Schema.Version)
	require.Equal(t, uint32(moneyID), deps[1].Schema.ID)

	// Each subject version was fetched once, though the currency is
	// referenced twice.
	require.Equal(t, 1, s.Requests("/subjects/acme/money.proto/versions/1"))
	require.Equal(t, 1, s.Requests("/subjects/acme/currency.proto/versions/1"))
	require.Equal(t, 3, s.TotalRequests())

	// Resolving again, or resolving the money schema by its id, asks for
	// nothing it has.
	_, _, err = c.Resolve(ctx, orderID)
	require.NoError(t, err)
	_, texts, err = c.Resolve(ctx, uint32(moneyID))
	require.NoError(t, err)
	require.Equal(t, map[string]string{"acme/currency.proto": currencyProto}, texts)
	require.Equal(t, 4, s.TotalRequests(), "only /schemas/ids/%d", moneyID)
	require.Equal(t, int64(4), m.fetched.Load())
}

func TestDependenciesParseAsAvro(t *testing.T) {
	s := srtest.Start(t)
	city := `{"type":"record","name":"City","namespace":"acme","fields":[{"name":"name","type":"string"}]}`
	addr := `{"type":"record","name":"Address","namespace":"acme","fields":[{"name":"city","type":"acme.City"}]}`
	person := `{"type":"record","name":"Person","namespace":"acme","fields":[{"name":"home","type":"acme.Address"},{"name":"born","type":"acme.City"}]}`
	s.MustRegister(t, "city", srtest.Schema{Schema: city})
	s.MustRegister(t, "address", srtest.Schema{Schema: addr, References: []srtest.Reference{{Name: "acme.City", Subject: "city", Version: 1}}})
	id := s.MustRegister(t, "person-value", srtest.Schema{Schema: person, References: []srtest.Reference{
		{Name: "acme.Address", Subject: "address", Version: 1},
		{Name: "acme.City", Subject: "city", Version: 1},
	}})
	c := newClient(t, at(s.URL()))

	root, deps, err := c.Dependencies(context.Background(), uint32(id))
	require.NoError(t, err)
	var cache avro.SchemaCache
	for _, d := range deps {
		_, err := cache.Parse(d.Schema.Text)
		require.NoError(t, err, d.Name)
	}
	_, err = cache.Parse(root.Text)
	require.NoError(t, err)
}

func TestUnknownSchema(t *testing.T) {
	s := srtest.Start(t)
	var m counting
	c := newClient(t, at(s.URL()), registry.WithMetrics(&m))
	ctx := context.Background()

	_, err := c.Schema(ctx, 7)
	e := requireClass(t, err, registry.ErrUnknownSchema, s.URL(), 7)
	require.Equal(t, http.StatusNotFound, e.Status)
	require.Equal(t, srtest.CodeSchemaNotFound, e.Code)
	require.ErrorContains(t, err, "Schema 7 not found")
	require.Equal(t, int64(1), m.failed.Load())

	// Remembered for a while: no request per record.
	_, err = c.Schema(ctx, 7)
	require.ErrorIs(t, err, registry.ErrUnknownSchema)
	require.Equal(t, 1, s.Requests("/schemas/ids/7"))

	// Without the memory, a schema registered since is found.
	c = newClient(t, at(s.URL()), registry.WithUnknownTTL(0))
	_, err = c.Schema(ctx, 7)
	require.ErrorIs(t, err, registry.ErrUnknownSchema)
	s.MustRegister(t, "late", srtest.Schema{Schema: userAvro, ID: 7})
	got, err := c.Schema(ctx, 7)
	require.NoError(t, err)
	require.Equal(t, userAvro, got.Text)
}

func TestUnknownReference(t *testing.T) {
	s := srtest.Start(t)
	s.MustRegister(t, "acme/currency.proto", srtest.Schema{Schema: currencyProto, SchemaType: "PROTOBUF"})
	moneyID := uint32(s.MustRegister(t, "money-value", srtest.Schema{Schema: moneyProto, SchemaType: "PROTOBUF",
		References: []srtest.Reference{{Name: "acme/currency.proto", Subject: "acme/currency.proto", Version: 1}}}))
	// Delete the referencing version (its id still answers), then the
	// referenced subject for good.
	require.NoError(t, deleteSubject(s, "money-value", false))
	require.NoError(t, deleteSubject(s, "acme/currency.proto", false))
	require.NoError(t, deleteSubject(s, "acme/currency.proto", true))

	c := newClient(t, at(s.URL()))
	_, _, err := c.Resolve(context.Background(), moneyID)
	e := requireClass(t, err, registry.ErrUnknownSchema, s.URL(), moneyID)
	require.NotNil(t, e.Ref)
	require.Equal(t, "acme/currency.proto", e.Ref.Subject)
	require.ErrorContains(t, err, `reference "acme/currency.proto" (subject "acme/currency.proto", version 1)`)
	require.Equal(t, srtest.CodeSubjectNotFound, e.Code)
}

func deleteSubject(s *srtest.Server, subject string, permanent bool) error {
	u := s.URL() + "/subjects/" + strings.ReplaceAll(subject, "/", "%2F")
	if permanent {
		u += "?permanent=true"
	}
	req, err := http.NewRequest(http.MethodDelete, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

func TestUnreachable(t *testing.T) {
	s := srtest.Start(t)
	id := uint32(s.MustRegister(t, "users-value", srtest.Schema{Schema: userAvro}))
	ctx := context.Background()
	c := newClient(t, registry.Config{URLs: []string{s.URL()}, Timeout: conf.Duration(200 * time.Millisecond)})

	s.FailWith(http.StatusServiceUnavailable)
	_, err := c.Schema(ctx, id)
	e := requireClass(t, err, registry.ErrUnreachable, s.URL(), id)
	require.Equal(t, http.StatusServiceUnavailable, e.Status)
	require.ErrorContains(t, err, "503")

	s.FailWith(http.StatusInternalServerError)
	_, err = c.Schema(ctx, id)
	requireClass(t, err, registry.ErrUnreachable, s.URL(), id)

	s.DropConnections()
	_, err = c.Schema(ctx, id)
	requireClass(t, err, registry.ErrUnreachable, s.URL(), id)

	s.Hang()
	_, err = c.Schema(ctx, id)
	requireClass(t, err, registry.ErrUnreachable, s.URL(), id)
	require.ErrorContains(t, err, "timeout")

	// Nothing of it was cached.
	s.Heal()
	got, err := c.Schema(ctx, id)
	require.NoError(t, err)
	require.Equal(t, userAvro, got.Text)

	down := srtest.Start(t)
	down.Close()
	c = newClient(t, at(down.URL()))
	_, err = c.Schema(ctx, 1)
	requireClass(t, err, registry.ErrUnreachable, down.URL(), 1)
	require.ErrorContains(t, err, "connection refused")
}

func TestNotARegistry(t *testing.T) {
	for name, h := range map[string]http.HandlerFunc{
		"404 page": func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) },
		"html": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<html><body>Kafka UI</body></html>"))
		},
		"json": func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"status":"ok"}`)) },
	} {
		t.Run(name, func(t *testing.T) {
			hs := httptest.NewServer(h)
			t.Cleanup(hs.Close)
			c := newClient(t, at(hs.URL))
			_, err := c.Schema(context.Background(), 3)
			requireClass(t, err, registry.ErrUnreachable, hs.URL, 3)
			require.ErrorContains(t, err, "is the url right")
		})
	}
}

func TestFailover(t *testing.T) {
	down := srtest.Start(t)
	down.Close()
	up := srtest.Start(t)
	id := uint32(up.MustRegister(t, "users-value", srtest.Schema{Schema: userAvro}))
	up.MustRegister(t, "b", srtest.Schema{Schema: `"string"`})
	c := newClient(t, at(down.URL(), up.URL()))

	got, err := c.Schema(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, userAvro, got.Text)

	// An answer of the registry is not asked again elsewhere.
	_, err = c.Schema(context.Background(), 99)
	requireClass(t, err, registry.ErrUnknownSchema, up.URL(), 99)

	// A 5xx moves on like a refused connection.
	flaky := srtest.Start(t)
	flaky.FailWith(http.StatusServiceUnavailable)
	c = newClient(t, at(flaky.URL(), up.URL()))
	_, err = c.Schema(context.Background(), id)
	require.NoError(t, err)

	up.Close()
	_, err = c.Schema(context.Background(), id+1)
	e := requireClass(t, err, registry.ErrUnreachable, flaky.URL(), id+1)
	require.Contains(t, e.URL, up.URL(), "names every URL tried")
	require.ErrorContains(t, err, "503")
	require.ErrorContains(t, err, "connection refused")
}

func TestAuth(t *testing.T) {
	s := srtest.Start(t, srtest.WithBasicAuth("floe", "s3cret"))
	id := uint32(s.MustRegister(t, "users-value", srtest.Schema{Schema: userAvro}))
	ctx := context.Background()

	_, err := newClient(t, at(s.URL())).Schema(ctx, id)
	e := requireClass(t, err, registry.ErrAuth, s.URL(), id)
	require.Equal(t, http.StatusUnauthorized, e.Status)
	require.ErrorContains(t, err, "check username and password")

	_, err = newClient(t, registry.Config{URLs: []string{s.URL()}, Username: "floe", Password: "wrong"}).Schema(ctx, id)
	requireClass(t, err, registry.ErrAuth, s.URL(), id)

	pw := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(pw, []byte("s3cret\n"), 0o600))
	c := newClient(t, registry.Config{URLs: []string{s.URL()}, Username: "floe", PasswordFile: pw})
	got, err := c.Schema(ctx, id)
	require.NoError(t, err)
	require.Equal(t, userAvro, got.Text)

	s.FailWith(http.StatusForbidden)
	_, err = c.Schema(ctx, id+1)
	e = requireClass(t, err, registry.ErrAuth, s.URL(), id+1)
	require.Equal(t, http.StatusForbidden, e.Status)
}

func TestTLS(t *testing.T) {
	s := srtest.Start(t, srtest.WithClientAuth(), srtest.WithBasicAuth("floe", "s3cret"))
	id := uint32(s.MustRegister(t, "users-value", srtest.Schema{Schema: userAvro}))
	files := s.TLSFiles()
	ctx := context.Background()
	cfg := registry.Config{
		URLs:     []string{s.URL()},
		Username: "floe", Password: "s3cret",
		TLS: registry.TLSConfig{CAFile: files.CAFile, CertFile: files.ClientCert, KeyFile: files.ClientKey},
	}

	got, err := newClient(t, cfg).Schema(ctx, id)
	require.NoError(t, err)
	require.Equal(t, userAvro, got.Text)

	noCA := cfg
	noCA.TLS.CAFile = ""
	_, err = newClient(t, noCA).Schema(ctx, id)
	requireClass(t, err, registry.ErrAuth, s.URL(), id)
	require.ErrorContains(t, err, "set tls.ca_file")

	wrongName := cfg
	wrongName.TLS.ServerName = "registry.example.com"
	_, err = newClient(t, wrongName).Schema(ctx, id)
	requireClass(t, err, registry.ErrAuth, s.URL(), id)
	require.ErrorContains(t, err, "tls.server_name")

	noCert := cfg
	noCert.TLS.CertFile, noCert.TLS.KeyFile = "", ""
	_, err = newClient(t, noCert).Schema(ctx, id)
	requireClass(t, err, registry.ErrAuth, s.URL(), id)
	require.ErrorContains(t, err, "tls.cert_file")

	insecure := cfg
	insecure.TLS.CAFile, insecure.TLS.InsecureSkipVerify = "", true
	_, err = newClient(t, insecure).Schema(ctx, id)
	require.NoError(t, err)
}

func TestCallerContext(t *testing.T) {
	s := srtest.Start(t)
	id := uint32(s.MustRegister(t, "users-value", srtest.Schema{Schema: userAvro}))
	c := newClient(t, at(s.URL()))
	s.SetDelay(150 * time.Millisecond)

	// A caller that gives up does not fail the others waiting for the
	// same schema, nor the fetch they share.
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	var got *registry.Schema
	var gotErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		got, gotErr = c.Schema(context.Background(), id)
	}()
	_, err := c.Schema(short, id)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	for _, class := range []error{registry.ErrUnknownSchema, registry.ErrUnreachable, registry.ErrAuth} {
		require.False(t, errors.Is(err, class), "the caller's own end is no class: %v", err)
	}
	wg.Wait()
	require.NoError(t, gotErr)
	require.Equal(t, userAvro, got.Text)
	require.Equal(t, 1, s.Requests("/schemas/ids/"+uintString(id)))
}

func TestNilMetrics(t *testing.T) {
	s := srtest.Start(t)
	id := uint32(s.MustRegister(t, "users-value", srtest.Schema{Schema: userAvro}))
	c := newClient(t, at(s.URL()), registry.WithMetrics(nil))
	for range 2 {
		_, err := c.Schema(context.Background(), id)
		require.NoError(t, err)
	}
}

func TestURLWithPath(t *testing.T) {
	s := srtest.Start(t)
	id := uint32(s.MustRegister(t, "users-value", srtest.Schema{Schema: userAvro}))
	target, err := url.Parse(s.URL())
	require.NoError(t, err)
	proxy := httptest.NewServer(http.StripPrefix("/registry", httputil.NewSingleHostReverseProxy(target)))
	t.Cleanup(proxy.Close)

	got, err := newClient(t, at(proxy.URL+"/registry/")).Schema(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, userAvro, got.Text)

	// Without the path, the proxy's own 404 is no answer about the schema.
	_, err = newClient(t, at(proxy.URL)).Schema(context.Background(), id)
	requireClass(t, err, registry.ErrUnreachable, proxy.URL, id)
}

func BenchmarkSchemaCached(b *testing.B) {
	s := srtest.Start(b)
	id := uint32(s.MustRegister(b, "users-value", srtest.Schema{Schema: userAvro}))
	c, err := registry.New(at(s.URL()), registry.WithMetrics(&counting{}))
	require.NoError(b, err)
	defer c.Close()
	ctx := context.Background()
	_, err = c.Schema(ctx, id)
	require.NoError(b, err)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Schema(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
	})
}

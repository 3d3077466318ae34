// Package node runs one floe process: every configured pipeline, the
// catalog they share, and the operations endpoint (/metrics, /healthz,
// /readyz). It owns no state of its own: progress lives in the Iceberg
// tables, so a node can be killed at any moment and restarted.
package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floelake/floe/timetravel/console"

	clusterv1 "github.com/floelake/floe/proto/floe/cluster/v1"
	floev1 "github.com/floelake/floe/proto/floe/v1"
	"github.com/floelake/floe/timetravel/api"

	iceio "github.com/apache/iceberg-go/io"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/catalog/rest"
	"github.com/floelake/floe/cluster"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/ingest/transform"
	"github.com/floelake/floe/internal/clock"
	"github.com/floelake/floe/internal/config"
	"github.com/floelake/floe/internal/metrics"
	"github.com/floelake/floe/maintain"
	"github.com/floelake/floe/upsert"
)

// Node is a running floe process.
type Node struct {
	cfg config.Config
	log *slog.Logger
	cat *catalog.Catalog
	// lock keeps other nodes off the data directory until Run returns.
	lock *dirLock
	// cluster runs the pipelines: a member of a cluster, or a cluster of
	// one (a single node).
	cluster  *cluster.Node
	onCommit func(ingest.CommitEvent)
	// metrics are this node's alone, served on its /metrics: nodes in one
	// process share none.
	metrics *metrics.Set
	// health is the last table shape TableHealth saw, by table name.
	health sync.Map
	// keyIndex is the last upsert.Stats of each keyed table this node
	// wrote, by table name: read at every commit and by KeyIndex.
	keyIndex sync.Map
	// windows is the *transform.StageStats of each windowed table this
	// node wrote, by table name.
	windows sync.Map
	ln      net.Listener
	srv     *http.Server
	// started is cluster once New has it; the operations endpoint, which
	// serves while New still waits for the catalog, reads it here.
	started atomic.Pointer[cluster.Node]
	// waiting says what New waits for (an unreachable catalog), for
	// /readyz.
	waiting atomic.Pointer[error]
	// rest serves the REST catalog once the catalog is open.
	rest atomic.Pointer[http.Handler]
	// api is the floe API once the pipelines are prepared; apiStop ends
	// the work its calls started (compactions).
	api     atomic.Pointer[api.Service]
	apiStop context.CancelFunc
}

// Option customises a node.
type Option func(*Node)

// WithOnCommit observes every commit of every pipeline.
func WithOnCommit(fn func(ingest.CommitEvent)) Option { return func(n *Node) { n.onCommit = fn } }

// New opens the catalog and prepares the pipelines.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...Option) (*Node, error) {
	n := &Node{cfg: cfg, log: log, metrics: metrics.New()}
	for _, o := range opts {
		o(n)
	}
	lock, err := lockDataDir(cfg.Node.DataDir)
	if err != nil {
		return nil, err
	}
	// /healthz and /readyz answer while the catalog is reached.
	if err := n.Listen(); err != nil {
		lock.release()
		return nil, err
	}
	cat, err := n.openCatalog(ctx)
	if err != nil {
		n.shutdownHTTP()
		lock.release()
		return nil, err
	}
	n.lock = lock
	n.cat = cat
	n.rest.Store(n.restCatalog(cat))
	log.Info("floe sources and destination", "brokers", strings.Join(cfg.Kafka.Brokers, ","),
		"catalog_type", cfg.Catalog.Type, "catalog", cat.URI, "warehouse", cat.Warehouse)
	if cat.Created {
		log.Info("created a new, empty catalog; pipelines start at their configured start", "catalog", cat.URI)
	}
	// With API tokens, the cluster API takes them too: members send an
	// admin token to each other.
	var clusterAuth cluster.Authorizer
	var peerToken string
	if len(cfg.Node.API.Tokens) > 0 {
		a, err := api.NewAuth(cfg.Node.API.Tokens)
		if err != nil {
			_ = cat.Close()
			n.shutdownHTTP()
			lock.release()
			return nil, err
		}
		clusterAuth, peerToken = a, a.PeerToken()
		if cfg.Cluster.Enabled && cfg.Cluster.TLS.CertFile == "" {
			log.Warn("node.api.tokens is set and cluster.tls is not: the members send each other the admin token in plaintext; set cluster.tls on an untrusted network")
		}
	}
	// A single node is a cluster of one member (cluster.Options.Local):
	// the same ledger, table writers and workers, one path.
	cn, err := cluster.Start(cluster.Options{
		Auth: clusterAuth, Token: peerToken,
		Cluster: cfg.Cluster, Kafka: cfg.Kafka, Pipelines: cfg.Pipelines,
		DataDir: cfg.Node.DataDir, ShutdownTimeout: cfg.Node.ShutdownTimeout.D(),
		Catalog: cat, Logger: log, OnCommit: n.committed, Local: !cfg.Cluster.Enabled,
		Metrics: n.metrics, Maintenance: &cfg.Maintenance,
	})
	if err != nil {
		_ = cat.Close()
		n.shutdownHTTP()
		lock.release()
		return nil, err
	}
	n.cluster = cn
	n.started.Store(cn)
	actx, stop := context.WithCancel(context.WithoutCancel(ctx))
	n.apiStop = stop
	if err := n.startAPI(actx); err != nil {
		stop()
		cn.Close()
		_ = cat.Close()
		n.shutdownHTTP()
		lock.release()
		return nil, err
	}
	return n, nil
}

// Catalog retries: an unreachable catalog (a Postgres server down, a REST
// catalog not answering) is a dependency that can come back, like an
// unreachable Kafka. The node waits for it with a growing backoff, logs
// every attempt, and /readyz says what it waits for; a bad catalog
// configuration fails at once.
const (
	catalogMinBackoff = 500 * time.Millisecond
	catalogMaxBackoff = 30 * time.Second
)

func (n *Node) openCatalog(ctx context.Context) (*catalog.Catalog, error) {
	backoff := catalogMinBackoff
	for {
		cat, err := catalog.Open(ctx, n.cfg.Catalog, n.cfg.Storage, n.cfg.Node.DataDir)
		var ue *catalog.UnreachableError
		if !errors.As(err, &ue) {
			n.waiting.Store(nil)
			return cat, err
		}
		waitErr := fmt.Errorf("waiting for the catalog: %w", err)
		n.waiting.Store(&waitErr)
		n.log.Warn("the catalog is unreachable; retrying", "catalog", ue.URI, "err", ue.Err, "retry_in", backoff)
		if clock.Sleep(ctx, backoff) != nil {
			return nil, fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
		}
		backoff = min(2*backoff, catalogMaxBackoff)
	}
}

// Catalog returns the node's catalog.
func (n *Node) Catalog() *catalog.Catalog { return n.cat }

// Metrics returns the node's metrics, which its /metrics serves.
func (n *Node) Metrics() *metrics.Set { return n.metrics }

// Pipelines returns the pipelines in configuration order.
func (n *Node) Pipelines() []*ingest.Pipeline { return n.cluster.Pipelines() }

// Addr is the address the operations endpoint listens on, once Run started it.
func (n *Node) Addr() string {
	if n.ln == nil {
		return ""
	}
	return n.ln.Addr().String()
}

// Listen binds and starts serving the operations endpoint, before Run, so
// callers can print the address and /healthz answers during start-up (and
// /readyz says why the node is not ready yet). Run stops it on return.
func (n *Node) Listen() error {
	if n.cfg.Node.HTTPAddr == "" || n.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", n.cfg.Node.HTTPAddr)
	if err != nil {
		return fmt.Errorf("node.http_addr %s: %w", n.cfg.Node.HTTPAddr, err)
	}
	n.ln = ln
	n.srv = &http.Server{Handler: n.handler(), ReadHeaderTimeout: 5 * time.Second}
	t := n.cfg.Node.API.TLS
	go func() {
		var err error
		if t.Enabled() {
			err = n.srv.ServeTLS(ln, t.CertFile, t.KeyFile)
		} else {
			err = n.srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("operations endpoint failed", "err", err)
		}
	}()
	return nil
}

// Cluster returns the cluster member in cluster mode, else nil. (A single
// node runs as a cluster of one, which this does not expose.)
func (n *Node) Cluster() *cluster.Node {
	if !n.cfg.Cluster.Enabled {
		return nil
	}
	return n.cluster
}

// Ready returns nil when the node is a member in touch with a leader, its
// pipelines consume without trouble and the tables it commits commit.
func (n *Node) Ready() error {
	c := n.started.Load()
	if c == nil {
		if w := n.waiting.Load(); w != nil {
			return *w
		}
		return errors.New("starting")
	}
	return c.Ready()
}

// Run runs every pipeline until ctx ends, then lets each commit what it
// holds. It returns the first pipeline error that restarting cannot fix.
func (n *Node) Run(ctx context.Context) error {
	defer n.lock.release()
	defer n.cat.Close()
	if err := n.Listen(); err != nil {
		return err
	}
	err := n.cluster.Run(ctx)
	n.shutdownHTTP()
	if s := n.api.Load(); s != nil {
		s.Close()
	}
	n.apiStop()
	return err
}

func (n *Node) shutdownHTTP() {
	if n.srv != nil {
		sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
		_ = n.srv.Shutdown(sctx)
		c()
	}
}

func (n *Node) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", n.metrics.Handler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := n.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("POST /tables/{table}/compact", n.authorized(floev1.TableService_Compact_FullMethodName, n.handleCompact))
	if !n.cfg.Node.RESTCatalog.Disabled {
		mux.Handle("/iceberg/", http.StripPrefix("/iceberg", n.authorized(api.MethodRESTCatalog, n.serveRESTCatalog)))
	}
	mux.HandleFunc("/api/v1/", n.serveAPI)
	// The console is static files; its calls to /api/v1 carry the token.
	mux.Handle("/console/", http.StripPrefix("/console", console.Handler()))
	mux.HandleFunc("/cluster/status", n.authorized(clusterv1.ClusterService_Status_FullMethodName, func(w http.ResponseWriter, r *http.Request) {
		if !n.cfg.Cluster.Enabled {
			http.Error(w, "this node does not run in cluster mode (cluster.enabled is false)", http.StatusNotFound)
			return
		}
		c := n.started.Load()
		if c == nil {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		st, err := c.Status(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
	}))
	return mux
}

// authorized wraps h with the API's token check for method: the
// operations routes that read tables or change them take the same tokens
// as the API (with none configured, everything is allowed).
func (n *Node) authorized(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s := n.api.Load(); s != nil {
			if err := s.Authorize(r, method); err != nil {
				s.WriteError(w, err)
				return
			}
		} else if len(n.cfg.Node.API.Tokens) > 0 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		h(w, r)
	}
}

// FetchClusterStatus reads GET /cluster/status from the operations port at
// httpAddr: what `floe cluster status --json` prints, over HTTP.
func FetchClusterStatus(ctx context.Context, hc *http.Client, httpAddr string) (cluster.Status, error) {
	var st cluster.Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/cluster/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return st, err
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("%s: /cluster/status: %s: %s", httpAddr, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("%s: /cluster/status: %w", httpAddr, err)
	}
	return st, nil
}

// TableHealth returns the shape of a table this node writes (as the leader)
// as of its last compaction check, and false when it has none. Once the
// node stops writing the table (it stopped, or no longer leads) it returns
// the last shape it saw, so a final status line still has one.
func (n *Node) TableHealth(table string) (maintain.Health, bool) {
	if c := n.started.Load(); c != nil {
		if m, err := c.Maintainer(table); err == nil {
			if h, ok := m.Health(); ok {
				n.health.Store(table, h)
				return h, true
			}
		}
	}
	if h, ok := n.health.Load(table); ok {
		return h.(maintain.Health), true
	}
	return maintain.Health{}, false
}

// Windows returns the running totals of the window state of a windowed
// table this node writes (as the leader): see cluster.Node.Windows. The
// totals stay readable after the node stops writing the table.
func (n *Node) Windows(table string) (*transform.StageStats, error) {
	if c := n.started.Load(); c != nil {
		st, err := c.Windows(table)
		if err == nil {
			n.windows.Store(table, st)
			return st, nil
		}
		if !errors.Is(err, cluster.ErrNotWriting) {
			return nil, err
		}
	}
	if st, ok := n.windows.Load(table); ok {
		return st.(*transform.StageStats), nil
	}
	return nil, cluster.ErrNotWriting
}

// KeyIndex returns what the key index of a keyed table this node writes
// (as the leader) has done: see cluster.Node.KeyIndex. Once the node stops
// writing the table (it stopped, or no longer leads) it returns the figures
// as of its last commit of the table, so a final status line still has
// them. It returns cluster.ErrNotWriting for a table the node has not
// written since it started, or that is not keyed, and
// cluster.ErrUnknownTable for a table no pipeline writes.
func (n *Node) KeyIndex(table string) (upsert.Stats, error) {
	if c := n.started.Load(); c != nil {
		st, err := c.KeyIndex(table)
		if err == nil {
			n.keyIndex.Store(table, st)
			return st, nil
		}
		if !errors.Is(err, cluster.ErrNotWriting) {
			return upsert.Stats{}, err
		}
	}
	if st, ok := n.keyIndex.Load(table); ok {
		return st.(upsert.Stats), nil
	}
	return upsert.Stats{}, cluster.ErrNotWriting
}

// committed observes every commit: it keeps the key index's figures as of
// the commit (a table's last commit comes just before its writer stops,
// and with it the index), then calls the WithOnCommit observer.
func (n *Node) committed(ev ingest.CommitEvent) {
	if c := n.started.Load(); c != nil {
		if st, err := c.KeyIndex(ev.Table); err == nil {
			n.keyIndex.Store(ev.Table, st)
		}
		if st, err := c.Windows(ev.Table); err == nil {
			n.windows.Store(ev.Table, st)
		}
	}
	if n.onCommit != nil {
		n.onCommit(ev)
	}
}

// CompactEvent is one line of POST /tables/{table}/compact's answer, a
// stream of JSON lines: progress as the compaction goes, then the summary or
// the error that ended it.
type CompactEvent struct {
	Progress *maintain.Progress `json:"progress,omitempty"`
	Summary  *maintain.Summary  `json:"summary,omitempty"`
	Error    string             `json:"error,omitempty"`
}

// handleCompact compacts a table now, on the member that writes it (the
// leader): 404 when no pipeline writes the table, 409 when this member does
// not write it (the answer says who does), 503 while the node starts.
func (n *Node) handleCompact(w http.ResponseWriter, r *http.Request) {
	c := n.started.Load()
	if c == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	m, err := c.Maintainer(r.PathValue("table"))
	switch {
	case errors.Is(err, cluster.ErrUnknownTable):
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	flush := func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	sum, err := m.Compact(r.Context(), func(p maintain.Progress) {
		_ = enc.Encode(CompactEvent{Progress: &p})
		flush()
	})
	if err != nil {
		_ = enc.Encode(CompactEvent{Error: err.Error()})
		return
	}
	_ = enc.Encode(CompactEvent{Summary: &sum})
}

// Compact asks the node whose operations port is httpAddr to compact table
// now, calling progress with every progress line, and returns the summary.
//
// httpAddr is host:port (plain HTTP) or a URL base (https://host:port);
// token, when not empty, is sent as the bearer token (an admin token of a
// node with node.api.tokens).
func Compact(ctx context.Context, hc *http.Client, httpAddr, token, table string, progress func(maintain.Progress)) (maintain.Summary, error) {
	base := httpAddr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/tables/"+url.PathEscape(table)+"/compact", nil)
	if err != nil {
		return maintain.Summary{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return maintain.Summary{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return maintain.Summary{}, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var ev CompactEvent
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("the node closed the connection before the compaction ended")
			}
			return maintain.Summary{}, err
		}
		switch {
		case ev.Error != "":
			return maintain.Summary{}, errors.New(ev.Error)
		case ev.Summary != nil:
			return *ev.Summary, nil
		case ev.Progress != nil && progress != nil:
			progress(*ev.Progress)
		}
	}
}

// restCatalog is the read-only Iceberg REST catalog over cat: the
// storage endpoint, region and path style go to every client that loads a
// table, the access key and secret only with vend_credentials.
func (n *Node) restCatalog(cat *catalog.Catalog) *http.Handler {
	rc := n.cfg.Node.RESTCatalog
	tc := map[string]string{}
	for k, v := range cat.IOProps {
		switch k {
		case iceio.S3AccessKeyID, iceio.S3SecretAccessKey, iceio.S3SessionToken:
			if !rc.VendCredentials {
				continue
			}
		}
		tc[k] = v
	}
	// Iceberg's Java S3 file IO, and engines that follow it (ClickHouse),
	// read path-style addressing from its own property.
	if cat.IOProps[iceio.S3ForceVirtualAddressing] == "false" {
		tc["s3.path-style-access"] = "true"
	}
	// The endpoint ends in "/" for ClickHouse (DataLakeCatalog; 26.7 and
	// 26.8, ClickHouse issue #93283): it makes the metadata location
	// relative to the table by cutting the endpoint off the table's URL,
	// and without the slash the rest starts with one and is no prefix of
	// the metadata location, so it reads <table>/<bucket>/<table
	// path>/metadata/..., an S3 404. S3 clients take either form.
	if ep := tc[iceio.S3EndpointURL]; ep != "" && !strings.HasSuffix(ep, "/") {
		tc[iceio.S3EndpointURL] = ep + "/"
	}
	h := rest.NewHandler(cat.Catalog, rest.Options{Warehouse: rc.Warehouse, TableConfig: tc, Logger: n.log.With("component", "rest_catalog")})
	return &h
}

// serveRESTCatalog serves the REST catalog, or 503 while the catalog is
// not open yet.
func (n *Node) serveRESTCatalog(w http.ResponseWriter, r *http.Request) {
	h := n.rest.Load()
	if h == nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintf(w, `{"error":{"message":"the catalog is not open yet; retry shortly","type":"ServiceUnavailableException","code":503}}`)
		return
	}
	(*h).ServeHTTP(w, r)
}

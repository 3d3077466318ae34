package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"

	"github.com/apache/iceberg-go/table"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/cluster"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/maintain"
	"github.com/floelake/floe/timetravel/api"
)

// The node's side of the floe API (timetravel/api): the tables of its
// pipelines, their writers for rollback and tags, their maintainers for
// compaction, and the cluster service. The API answers 503 under /api/v1
// until the catalog is open and the pipelines are prepared.

// apiBackend implements api.Backend over a started node.
type apiBackend struct{ n *Node }

func (b apiBackend) Tables() []api.TableRef {
	var out []api.TableRef
	for _, p := range b.n.cluster.Pipelines() {
		pc := p.Config()
		for _, o := range p.Outputs() {
			ref := api.TableRef{Name: o.Table, Pipeline: p.Name(), Kind: "data", TargetFileSize: int64(pc.TargetFileSize)}
			if o.Role == ingest.RoleDeadLetter {
				ref.Kind = "dead_letter"
			} else {
				ref.Keyed = pc.Keyed()
			}
			out = append(out, ref)
		}
	}
	return out
}

func (b apiBackend) LoadTable(ctx context.Context, name string) (*table.Table, error) {
	return b.n.cat.Catalog.LoadTable(ctx, catalog.Ident(name))
}

func (b apiBackend) Ends(ctx context.Context) map[commit.PartitionKey]int64 {
	st, err := b.n.cluster.Status(ctx)
	if err != nil {
		return nil
	}
	out := map[commit.PartitionKey]int64{}
	for _, p := range st.Partitions {
		if p.End >= 0 {
			out[commit.PartitionKey{Pipeline: p.Pipeline, Topic: p.Topic, Partition: p.Partition}] = p.End
		}
	}
	return out
}

func (b apiBackend) Do(ctx context.Context, name string, f func(context.Context, *commit.Committer) error) error {
	w, err := b.n.cluster.Writer(name)
	if err != nil {
		return err
	}
	return w.Do(ctx, f)
}

func (b apiBackend) Writes(name string) error {
	_, err := b.n.cluster.Writer(name)
	return err
}

func (b apiBackend) Compact(ctx context.Context, name string, progress func(maintain.Progress)) (maintain.Summary, error) {
	m, err := b.n.cluster.Maintainer(name)
	if err != nil {
		return maintain.Summary{}, err
	}
	return m.Compact(ctx, progress)
}

// publicCluster is the cluster service as the API offers it: Status
// always; Join and Leave in cluster mode; Apply and EvolveSchema never (the
// members ask them of each other on cluster.api_addr, under mutual TLS).
type publicCluster struct {
	c       *cluster.Node
	enabled bool
}

func (p publicCluster) Apply(context.Context, []byte) (commit.ApplyResult, error) {
	return commit.ApplyResult{}, fmt.Errorf("%w: ledger commands are applied between members on cluster.api_addr, not through the API", cluster.ErrInvalidArgument)
}

func (p publicCluster) EvolveSchema(context.Context, cluster.EvolveRequest) ([]string, error) {
	return nil, fmt.Errorf("%w: schema changes are asked for between members on cluster.api_addr, not through the API", cluster.ErrInvalidArgument)
}

func (p publicCluster) Join(ctx context.Context, req cluster.JoinRequest) error {
	if !p.enabled {
		return fmt.Errorf("%w: this node does not run in cluster mode (cluster.enabled is false)", cluster.ErrInvalidArgument)
	}
	return p.c.Join(ctx, req)
}

func (p publicCluster) Leave(ctx context.Context, id string) error {
	if !p.enabled {
		return fmt.Errorf("%w: this node does not run in cluster mode (cluster.enabled is false)", cluster.ErrInvalidArgument)
	}
	return p.c.Leave(ctx, id)
}

func (p publicCluster) Status(ctx context.Context) (cluster.Status, error) { return p.c.Status(ctx) }

// startAPI builds the API over the started node and binds its gRPC
// address.
func (n *Node) startAPI(ctx context.Context) error {
	tlsCfg, err := n.apiTLS()
	if err != nil {
		return err
	}
	svc, err := api.New(ctx, n.cfg.Node.API, apiBackend{n}, api.Options{
		Cluster: publicCluster{c: n.cluster, enabled: n.cfg.Cluster.Enabled},
		TLS:     tlsCfg, Logger: n.log.With("component", "api"),
	})
	if err != nil {
		return err
	}
	if err := svc.Listen(); err != nil {
		svc.Close()
		return err
	}
	if len(n.cfg.Node.API.Tokens) == 0 && (!loopback(n.cfg.Node.HTTPAddr) || !loopback(n.cfg.Node.API.GRPCAddr)) {
		n.log.Warn("the API has no tokens (node.api.tokens) and listens beyond this host: anyone who reaches it can read the tables and roll them back",
			"http_addr", n.cfg.Node.HTTPAddr, "grpc_addr", n.cfg.Node.API.GRPCAddr)
	}
	if addr := svc.GRPCAddr(); addr != "" {
		n.log.Info("floe API", "grpc", addr, "tls", tlsCfg != nil)
	}
	n.api.Store(svc)
	return nil
}

// APIAddr is the address the gRPC API listens on ("" when off).
func (n *Node) APIAddr() string {
	if s := n.api.Load(); s != nil {
		return s.GRPCAddr()
	}
	return ""
}

// apiTLS loads node.api.tls, nil when it is not set.
func (n *Node) apiTLS() (*tls.Config, error) {
	t := n.cfg.Node.API.TLS
	if !t.Enabled() {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("node.api.tls: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// serveAPI serves /api/v1, or 503 until the API is up.
func (n *Node) serveAPI(w http.ResponseWriter, r *http.Request) {
	s := n.api.Load()
	if s == nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprint(w, `{"code":14,"status":"UNAVAILABLE","message":"the node is starting (opening the catalog); retry shortly"}`+"\n")
		return
	}
	s.HTTPHandler().ServeHTTP(w, r)
}

// loopback reports whether addr (host:port) listens on this host only; an
// empty address listens nowhere.
func loopback(addr string) bool {
	if addr == "" {
		return true
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

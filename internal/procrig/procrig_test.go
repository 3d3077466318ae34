package procrig

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/cluster"
	"github.com/floelake/floe/timetravel/api"
)

func TestMemberConfigParses(t *testing.T) {
	c := MemberConfig{
		ID: "n2", DataDir: "/tmp/x y/n2/data", HTTPAddr: "127.0.0.1:1", LogLevel: "info", ShutdownTimeout: time.Minute,
		APITokens: []api.Token{
			{Name: "admin", Token: "admin-token-0123456789", Scope: api.ScopeAdmin},
			{Name: "reader", File: "/tmp/x y/read.token", Scope: api.ScopeRead},
		},
		Cluster: true, RaftAddr: "127.0.0.1:2", APIAddr: "127.0.0.1:3", Join: []string{"127.0.0.1:4"},
		HeartbeatInterval: time.Second, DeadAfter: 5 * time.Second,
		TLS:     &cluster.TLSConfig{CertFile: "/c.pem", KeyFile: "/k.pem", CAFile: "/ca.pem"},
		Brokers: []string{"127.0.0.1:5"}, ClientID: "floe-test",
		Catalog: catalog.Config{Type: "sql", Name: "floe", URI: "sqlite:///tmp/x y/catalog.db", Warehouse: "s3://bucket/wh"},
		S3:      &catalog.S3Config{Endpoint: "http://127.0.0.1:6", Region: "us-east-1", AccessKeyID: "a", SecretAccessKey: "s"},
		Pipeline: Pipeline{
			Name: "clicks", Topic: "clicks", Table: "bench.clicks", Start: "earliest", CommitInterval: 1500 * time.Millisecond,
			PartitionBy: []string{"day(ts)"},
			Extra:       "    kafka_metadata: [partition, offset]\n",
		},
	}
	cfg, err := c.Parse()
	if err != nil {
		t.Fatal(err)
	}
	cc := cfg.Cluster
	if !cc.Enabled || cc.NodeID != "n2" || cc.RaftAddr != c.RaftAddr || cc.APIAddr != c.APIAddr ||
		len(cc.Join) != 1 || cc.Join[0] != "127.0.0.1:4" || cc.HeartbeatInterval.D() != time.Second || cc.DeadAfter.D() != 5*time.Second ||
		cc.TLS != *c.TLS {
		t.Errorf("cluster section: %+v", cc)
	}
	if cfg.Node.DataDir != c.DataDir || cfg.Node.HTTPAddr != c.HTTPAddr || cfg.Node.ShutdownTimeout.D() != time.Minute ||
		cfg.Catalog.URI != c.Catalog.URI || cfg.Catalog.Warehouse != c.Catalog.Warehouse ||
		len(cfg.Kafka.Brokers) != 1 || cfg.Kafka.Brokers[0] != "127.0.0.1:5" || cfg.Kafka.Group != "floe-test" {
		t.Errorf("node, catalog or kafka section: %+v %+v %+v", cfg.Node, cfg.Catalog, cfg.Kafka)
	}
	if toks := cfg.Node.API.Tokens; len(toks) != 2 || toks[0] != c.APITokens[0] || toks[1] != c.APITokens[1] {
		t.Errorf("node.api.tokens: %+v", toks)
	}
	if s3 := cfg.Storage.S3; s3.Endpoint != c.S3.Endpoint || !s3.PathStyle || s3.SecretAccessKey != "s" {
		t.Errorf("storage section: %+v", cfg.Storage)
	}
	if len(cfg.Pipelines) != 1 {
		t.Fatalf("pipelines: %+v", cfg.Pipelines)
	}
	p := cfg.Pipelines[0]
	if p.Table != "bench.clicks" || p.DeadLetter() != "bench.clicks__dlq" || p.CommitInterval.D() != 1500*time.Millisecond ||
		p.Start != "earliest" || len(p.PartitionBy) != 1 || p.PartitionBy[0] != "day(ts)" || len(p.KafkaMetadata) != 2 {
		t.Errorf("pipeline: %+v", p)
	}

	c.Cluster, c.Join, c.S3, c.APITokens = false, nil, nil, nil
	cfg, err = c.Parse()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cluster.Enabled {
		t.Error("a single node's configuration enables cluster mode")
	}
	if len(cfg.Node.API.Tokens) != 0 {
		t.Errorf("no tokens configured, got %+v", cfg.Node.API.Tokens)
	}
}

func TestFreeAddrs(t *testing.T) {
	addrs, err := FreeAddrs(20)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] || !strings.HasPrefix(a, "127.0.0.1:") {
			t.Fatalf("addresses %v: %q repeated or not on 127.0.0.1", addrs, a)
		}
		seen[a] = true
	}
}

// fakeFloe writes a stand-in for the floe binary: `serve` runs until
// SIGTERM (exit 0), unless FAKE_EXIT makes it exit by itself at once.
func fakeFloe(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "floe")
	script := `#!/bin/sh
trap 'echo stopping; exit 0' TERM
echo "fake floe $*"
[ -n "$FAKE_EXIT" ] && exit "$FAKE_EXIT"
while :; do sleep 0.05; done
`
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func newTestRig(t *testing.T, bin string, n int) *Rig {
	t.Helper()
	r, err := New(Options{
		Bin: bin, Dir: t.TempDir(), Members: n, Cluster: true,
		Member: MemberConfig{
			Brokers: []string{"127.0.0.1:1"}, ClientID: "floe-test",
			Catalog:  catalog.Config{Type: "sql", Name: "floe", URI: "sqlite:///tmp/catalog.db"},
			Pipeline: Pipeline{Name: "clicks", Topic: "clicks", Table: "t.clicks"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(0) })
	return r
}

func TestRigMembers(t *testing.T) {
	r := newTestRig(t, fakeFloe(t), 3)
	n1, n3 := r.Member("n1"), r.Member("n3")
	if n1 == nil || n3 == nil || r.Member("n4") != nil || len(r.Members()) != 3 {
		t.Fatalf("members: %v", r.Members())
	}
	c1, c3 := n1.Config(), n3.Config()
	if len(c1.Join) != 0 || len(c3.Join) != 1 || c3.Join[0] != c1.APIAddr {
		t.Errorf("n1 must form the cluster and n3 join through it: %v, %v", c1.Join, c3.Join)
	}
	if c3.DataDir != filepath.Join(n3.Dir, "data") || c3.HTTPAddr == c1.HTTPAddr {
		t.Errorf("n3: %+v", c3)
	}
	b, err := os.ReadFile(n3.ConfigPath)
	if err != nil || string(b) != c3.YAML() {
		t.Fatalf("n3's file: %v\n%s", err, b)
	}
	if err := r.Update(func(c *MemberConfig) { c.LogLevel = "debug" }); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(n3.ConfigPath); !strings.Contains(string(b), `log_level: "debug"`) {
		t.Errorf("Update did not rewrite the file:\n%s", b)
	}
}

func TestRigProcesses(t *testing.T) {
	r := newTestRig(t, fakeFloe(t), 3)
	n1, n2, n3 := r.Member("n1"), r.Member("n2"), r.Member("n3")
	if err := r.StartAll(); err != nil {
		t.Fatal(err)
	}
	// The fake's SIGTERM handler is in place once it has said something.
	err := r.WaitFor(context.Background(), 10*time.Millisecond, 10*time.Second, "every member running", func() (bool, string) {
		for _, m := range r.Members() {
			if b, _ := os.ReadFile(m.LogPath); !strings.Contains(string(b), "fake floe serve --config "+m.ConfigPath) {
				return false, m.ID + " has not started"
			}
		}
		return true, ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Live()) != 3 || r.CheckAlive() != nil {
		t.Fatalf("live %d, %v", len(r.Live()), r.CheckAlive())
	}
	if err := r.Start(n1); err == nil {
		t.Error("a running member started again")
	}
	if _, err := r.Kill(n2); err != nil {
		t.Fatal(err)
	}
	if !n2.Proc().KilledBySIGKILL() || n2.Live() {
		t.Errorf("n2 after its kill: %s", n2.Proc().State())
	}
	if err := r.Stop(n3, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := r.Live(); len(got) != 1 || got[0] != n1 || r.CheckAlive() != nil {
		t.Fatalf("live after a kill and a stop: %v (%v)", got, r.CheckAlive())
	}

	// A member that exits by itself fails every wait.
	if err := r.StartEnv(n2, []string{"FAKE_EXIT=3"}); err != nil {
		t.Fatal(err)
	}
	err = r.WaitFor(context.Background(), 10*time.Millisecond, 10*time.Second, "nothing", func() (bool, string) { return false, "never" })
	if err == nil || !strings.Contains(err.Error(), "n2 exited by itself") {
		t.Fatalf("WaitFor with a dead member: %v", err)
	}
	if _, err := r.Kill(n2); err == nil {
		t.Error("killing a member that exited by itself succeeded")
	}
	err = r.WaitFor(context.Background(), 10*time.Millisecond, 50*time.Millisecond, "nothing", func() (bool, string) { return false, "never" })
	if err == nil || !strings.Contains(err.Error(), "last state: never") {
		t.Fatalf("WaitFor timing out: %v", err)
	}

	var logs bytes.Buffer
	r.LogTails(&logs, 3)
	if !strings.Contains(logs.String(), "---- n3") || !strings.Contains(logs.String(), "stopping") {
		t.Errorf("log tails:\n%s", logs.String())
	}
	if err := r.StopAll(10 * time.Second); err != nil || len(r.Live()) != 0 {
		t.Fatalf("StopAll: %v, live %v", err, r.Live())
	}
}

func TestTail(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc", 2, "b\nc"},
		{"a\n", 5, "a\n"},
		{"", 3, ""},
	} {
		if got := Tail(tc.in, tc.n); got != tc.want {
			t.Errorf("Tail(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

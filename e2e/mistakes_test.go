package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/internal/procrig"
)

// TestOperatorMistakes runs the floe binary through the mistakes a new
// user makes and the ways its dependencies fail, one case each, and checks
// the answer an operator gets: the exit status and message of a process
// that must not run, or the /readyz reason of one that must wait. (Bad
// configuration files have their own table in config_test.go.)
func TestOperatorMistakes(t *testing.T) {
	bin := floeBinary(t)
	_, broker := startBroker(t, "clicks", 1, kfake.SeedTopics(1, "mixed", "good"))
	for _, topic := range []string{"mixed", "good"} {
		cl := newProducer(t, broker)
		for i, v := range []string{`{"id":1,"user_id":1.5}`, `{"id":2,"user_id":"u-7"}`} {
			r := &kgo.Record{Topic: topic, Value: []byte(v), Key: []byte(fmt.Sprint(i))}
			if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
				t.Fatalf("produce to %s: %v", topic, err)
			}
		}
	}

	// config renders a node's file: dir holds its data, ops its operations
	// port, catalog the catalog section's uri, pipelines the pipelines
	// section.
	config := func(dir, ops, catalogURI, pipelines string) string {
		return fmt.Sprintf("node: {data_dir: %q, http_addr: %q, shutdown_timeout: 20s}\n", filepath.Join(dir, "data"), ops) +
			fmt.Sprintf("kafka: {brokers: [%q]}\n", broker) +
			fmt.Sprintf("catalog: {type: sql, name: floe, uri: %q, warehouse: %q}\n", catalogURI, "file://"+filepath.Join(dir, "wh")) +
			"pipelines:\n" + pipelines
	}
	inferred := func(name, topic string) string {
		return fmt.Sprintf("  - {name: %s, topics: [%s], table: e2e.%s, commit_interval: 200ms}\n", name, topic, name)
	}
	sqlite := func(dir string) string { return "sqlite://" + filepath.Join(dir, "catalog.db") }

	type answer struct {
		exit   bool   // the process must exit non-zero (else: keep running)
		stderr string // what its output must say when it exits
		readyz string // what /readyz must say while it runs
	}
	cases := []struct {
		name  string
		setup func(t *testing.T, dir, ops string) string // returns the config
		want  answer
	}{
		{
			name: "catalog in a directory that does not exist",
			setup: func(t *testing.T, dir, ops string) string {
				return config(dir, ops, "sqlite://"+filepath.Join(dir, "typo", "catalog.db"), inferred("clicks", "clicks"))
			},
			want: answer{exit: true, stderr: "directory " + "DIR/typo does not exist; create it, or correct catalog.uri"},
		},
		{
			name: "second node on one data directory",
			setup: func(t *testing.T, dir, ops string) string {
				cfg := config(dir, freeAddr(t), sqlite(dir), inferred("clicks", "clicks"))
				path := filepath.Join(dir, "first.yaml")
				if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
					t.Fatal(err)
				}
				first := startFloe(t, bin, path, filepath.Join(dir, "first.log"))
				waitFor(t, time.Minute, "the first node to hold its data directory", func() (bool, string) {
					b, _ := os.ReadFile(filepath.Join(dir, "data", "floe.lock"))
					return strings.HasPrefix(string(b), fmt.Sprintf("pid %d ", first.Pid())), string(b)
				})
				t.Cleanup(func() { _ = first.Stop(30 * time.Second) })
				return config(dir, ops, sqlite(dir), inferred("clicks", "clicks"))
			},
			want: answer{exit: true, stderr: "is in use by another floe node (pid "},
		},
		{
			name: "schema inference conflict, one pipeline",
			setup: func(t *testing.T, dir, ops string) string {
				return config(dir, ops, sqlite(dir), inferred("mixed", "mixed"))
			},
			want: answer{exit: true, stderr: `cannot infer a type for field "user_id": seen as double and as string`},
		},
		{
			name: "schema inference conflict beside a pipeline that works",
			setup: func(t *testing.T, dir, ops string) string {
				return config(dir, ops, sqlite(dir), inferred("mixed", "mixed")+
					"  - {name: good, topics: [good], table: e2e.good, commit_interval: 200ms, infer_conflicts: string}\n")
			},
			want: answer{readyz: `pipeline mixed cannot run: pipelines[mixed]: cannot infer a schema`},
		},
		{
			name: "topic that does not exist, schema inferred",
			setup: func(t *testing.T, dir, ops string) string {
				return config(dir, ops, sqlite(dir), inferred("later", "nosuchtopic"))
			},
			want: answer{readyz: `topic "nosuchtopic" does not exist yet; schema inference waits for it`},
		},
		{
			name: "catalog that is down",
			setup: func(t *testing.T, dir, ops string) string {
				return config(dir, ops, "postgres://floe@"+freeAddr(t)+"/test?sslmode=disable", inferred("clicks", "clicks"))
			},
			want: answer{readyz: "waiting for the catalog: catalog: postgres://***@"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			ops := freeAddr(t)
			path := filepath.Join(dir, "floe.yaml")
			if err := os.WriteFile(path, []byte(c.setup(t, dir, ops)), 0o644); err != nil {
				t.Fatal(err)
			}
			logPath := filepath.Join(dir, "floe.log")
			showLogOnFailure(t, logPath)
			p := startFloe(t, bin, path, logPath)
			if c.want.exit {
				if !p.Wait(time.Minute) {
					t.Fatalf("floe kept running; want it to exit with %q", c.want.stderr)
				}
				out, _ := os.ReadFile(logPath)
				if p.ExitCode() <= 0 {
					t.Errorf("exit status %s, want non-zero", p.State())
				}
				if want := strings.ReplaceAll(c.want.stderr, "DIR", dir); !strings.Contains(string(out), want) {
					t.Errorf("output does not say %q:\n%s", want, out)
				}
				return
			}
			waitFor(t, time.Minute, "/readyz to give the reason", func() (bool, string) {
				ok, detail := procrig.Readyz(context.Background(), ops)
				return !ok && strings.Contains(detail, "503 Service Unavailable: not ready: ") && strings.Contains(detail, c.want.readyz), detail
			})
			if p.Exited() {
				t.Fatalf("floe exited: %s", p.State())
			}
			if err := p.Stop(30 * time.Second); err != nil {
				t.Fatalf("stop: %v", err)
			}
		})
	}
}

// A stop delivered twice at once (GNU timeout and some supervisors send
// the signal to the process and its group) is one graceful stop: the final
// commit happens. `floe version` names the build.
func TestSignalTwiceAndVersion(t *testing.T) {
	bin := floeBinary(t)
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "floe ") || !strings.Contains(string(out), " go1.") {
		t.Fatalf("floe version: %q, %v", out, err)
	}

	_, broker := startBroker(t, "clicks", 1)
	s := newSetup(t, broker, "clicks")
	s.HTTPAddr = freeAddr(t)
	path := s.writeConfig(t)
	logPath := filepath.Join(s.Dir, "floe.log")
	showLogOnFailure(t, logPath)
	p := startFloe(t, bin, path, logPath)
	waitFor(t, time.Minute, "floe to be ready", func() (bool, string) {
		return procrig.Readyz(context.Background(), s.HTTPAddr)
	})
	_ = p.Signal(syscall.SIGTERM)
	_ = p.Signal(syscall.SIGTERM)
	if !p.Wait(time.Minute) {
		t.Fatal("floe did not stop")
	}
	b, _ := os.ReadFile(logPath)
	if p.ExitCode() != 0 || strings.Contains(string(b), "second signal") || !strings.Contains(string(b), "final commits done") {
		t.Fatalf("exit %s; want a clean stop with its final commits, log:\n%s", p.State(), b)
	}
}

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/floelake/floe/internal/procrig"
)

// TestBadConfigNamesField: `floe serve` with several invalid settings must
// refuse to start, exit non-zero, and name every bad field by its path.
func TestBadConfigNamesField(t *testing.T) {
	dir := t.TempDir()
	cfg := `
node:
  data_dir: ` + filepath.Join(dir, "data") + `
  http_addr: ""
kafka:
  brokers: [127.0.0.1:1]
catalog:
  type: hive
pipelines:
  - name: clicks
    topics: [clicks]
    table: e2e.clicks
    commit_interval: 1ms
` + strings.TrimPrefix(strings.Replace(clicksSchemaYAML, `partition_by: ["day(ts)"]`, `partition_by: ["day(nosuchcol)"]`, 1), "\n")
	_, stderr := serveBadConfig(t, dir, cfg)

	for _, field := range []string{"catalog.type", "pipelines[0].commit_interval", "pipelines[0].partition_by"} {
		if !strings.Contains(stderr, field) {
			t.Errorf("stderr does not name the bad field %s", field)
		}
	}
	if !strings.Contains(stderr, "nosuchcol") {
		t.Errorf("stderr does not name the unknown column nosuchcol")
	}
}

// TestBadConfigPlacesEveryProblem: problems YAML decoding finds (a value
// of the wrong type, an unknown field) are reported with the file, line
// and column of the field, together with the validation problems, and a
// configuration without pipelines is refused rather than served idle.
func TestBadConfigPlacesEveryProblem(t *testing.T) {
	for _, c := range []struct {
		name, yaml string
		want       []string // each line is prefixed with "config: " and, if it starts with ":", the file's path
	}{
		{
			name: "type error and unknown field",
			yaml: `kafka:
  brokers: [127.0.0.1:1]
catalog:
  type: hive
pipelines:
  - name: clicks
    topics: [clicks]
    table: e2e.clicks
    commit_interval: fast
    comit_interval: 1s
    workers: many
`,
			want: []string{
				`:4:3: catalog.type: must be sql or rest, got "hive"`,
				`:9:5: pipelines[0].commit_interval: want a duration such as 500ms, 10s or 1m, got "fast"`,
				`:10:5: pipelines[0].comit_interval: unknown field; did you mean commit_interval?`,
				`:11:5: pipelines[0].workers: want an integer, got "many"`,
			},
		},
		{
			name: "no pipelines",
			yaml: "kafka:\n  brokers: [127.0.0.1:1]\n",
			want: []string{"pipelines: at least one pipeline is required"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			// Last, so that the lines of the case's YAML keep their numbers.
			cfg := c.yaml + fmt.Sprintf("node: {data_dir: %q, http_addr: \"\"}\n", filepath.Join(dir, "data"))
			path, stderr := serveBadConfig(t, dir, cfg)
			var want []string
			for _, w := range c.want {
				if strings.HasPrefix(w, ":") {
					w = path + w
				}
				want = append(want, "config: "+w)
			}
			// The first line is prefixed by the command's name.
			if got := strings.TrimSpace(stderr); got != "floe: "+strings.Join(want, "\n") {
				t.Errorf("stderr:\n%s\nwant:\nfloe: %s", got, strings.Join(want, "\n"))
			}
		})
	}
}

// serveBadConfig writes cfg to a file in dir and runs `floe serve` on it,
// which must exit non-zero within a minute without creating
// <dir>/data. It returns the file's path and floe's stderr.
func serveBadConfig(t *testing.T, dir, cfg string) (string, string) {
	t.Helper()
	path := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, floeBinary(t), "serve", "--config", path)
	cmd.Env = procrig.Env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("floe did not exit within a minute on a bad configuration; stderr:\n%s", stderr.String())
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() <= 0 {
		t.Fatalf("floe serve with a bad configuration: %v (want a non-zero exit status); stderr:\n%s", err, stderr.String())
	}
	t.Logf("floe exited with %s; stderr:\n%s", exit.ProcessState, stderr.String())
	// Nothing may have been created for a configuration that was refused.
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Errorf("floe created its data directory although the configuration is invalid")
	}
	return path, stderr.String()
}

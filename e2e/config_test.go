package e2e

import (
	"bytes"
	"context"
	"errors"
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

	for _, field := range []string{"catalog.type", "pipelines[0].commit_interval", "pipelines[0].partition_by"} {
		if !strings.Contains(stderr.String(), field) {
			t.Errorf("stderr does not name the bad field %s", field)
		}
	}
	if !strings.Contains(stderr.String(), "nosuchcol") {
		t.Errorf("stderr does not name the unknown column nosuchcol")
	}
	// Nothing may have been created for a configuration that was refused.
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Errorf("floe created its data directory although the configuration is invalid")
	}
}

package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestServeRefusesBadConfig: floe serve stops before starting anything on
// a configuration with problems, a configuration without pipelines among
// them (main exits non-zero on the error).
func TestServeRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]struct{ yaml, want string }{
		"no pipelines": {"kafka: {brokers: [127.0.0.1:1]}\n",
			"config: pipelines: at least one pipeline is required"},
		"type error": {"kafka: {brokers: [127.0.0.1:1]}\npipelines:\n  - {topics: [t], table: a.b, commit_interval: fast}\n",
			"config: " + filepath.Join(dir, "type error.yaml") + `:3:31: pipelines[0].commit_interval: want a duration such as 500ms, 10s or 1m, got "fast"`},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".yaml")
			yaml := c.yaml + "node: {data_dir: " + filepath.Join(dir, "data") + ", http_addr: ''}\n"
			if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := rootCmd()
			cmd.SetArgs([]string{"serve", "--config", path})
			err := cmd.Execute()
			if err == nil || err.Error() != c.want {
				t.Fatalf("floe serve: %v\nwant: %s", err, c.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
				t.Errorf("floe serve created its data directory for a configuration it refused")
			}
		})
	}
}

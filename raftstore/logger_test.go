package raftstore

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestHclogAdapter(t *testing.T) {
	var buf bytes.Buffer
	l := newHclog(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), "raft")
	records := func() []map[string]any {
		var out []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			if line == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
		buf.Reset()
		return out
	}

	l.Trace("dropped: below the handler's level")
	l.Named("net").With("peer", "n2").Warn("failed to contact", "error", "refused")
	rs := records()
	if len(rs) != 1 {
		t.Fatalf("records %v, want 1", rs)
	}
	if r := rs[0]; r["level"] != "WARN" || r["msg"] != "failed to contact" || r["logger"] != "raft.net" || r["peer"] != "n2" || r["error"] != "refused" {
		t.Fatalf("record %v", r)
	}
	if l.IsTrace() || !l.IsDebug() || l.GetLevel() != hclog.Debug {
		t.Fatalf("levels: trace %v debug %v get %v", l.IsTrace(), l.IsDebug(), l.GetLevel())
	}

	// SetLevel filters further, for every logger derived from it.
	named := l.Named("snapshot")
	l.SetLevel(hclog.Warn)
	named.Info("dropped: below SetLevel")
	named.Error("kept")
	l.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Error}).Print("from the std logger\n")
	rs = records()
	if len(rs) != 2 || rs[0]["msg"] != "kept" || rs[0]["level"] != "ERROR" || rs[1]["msg"] != "from the std logger" {
		t.Fatalf("records %v", rs)
	}
}

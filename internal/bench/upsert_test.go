package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for floe as the benchmarks'
// child process: `floe bench child SPEC` is what runChild starts.
func TestMain(m *testing.M) {
	if len(os.Args) == 4 && os.Args[1] == "bench" && os.Args[2] == "child" {
		if err := Child(context.Background(), os.Args[3], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestKeyStream(t *testing.T) {
	s := newKeyStream(7, 0, 3, 4)
	var seen = map[string]int64{}
	var prev time.Time
	for i := range 1000 {
		if i == 500 {
			s.update = 0.5
		}
		v, k, updated := s.next(nil)
		var ev struct {
			EventID string    `json:"event_id"`
			TS      time.Time `json:"ts"`
		}
		if err := json.Unmarshal(v, &ev); err != nil {
			t.Fatalf("event %d is not JSON: %v: %s", i, err, v)
		}
		if k2, ok := seen[ev.EventID]; ok && k2 != k {
			t.Fatalf("event_id %s names keys %d and %d", ev.EventID, k2, k)
		}
		if _, ok := seen[ev.EventID]; ok != updated {
			t.Fatalf("event %d: updated %v, but its key was seen: %v", i, updated, ok)
		}
		seen[ev.EventID] = k
		if i < 500 && (updated || k != int64(i)) {
			t.Fatalf("event %d of the seed: key %d, updated %v", i, k, updated)
		}
		if !ev.TS.After(prev) || ev.TS.Truncate(24*time.Hour) != benchDay {
			t.Fatalf("event %d: ts %s after %s, want one day's increasing times", i, ev.TS, prev)
		}
		prev = ev.TS
		if p, _ := s.position(k); p != 3+int32(k%4) {
			t.Fatalf("key %d in partition %d", k, p)
		}
	}
	if s.updates < 200 || s.updates > 300 || s.keys != 1000-s.updates || len(seen) != int(s.keys) {
		t.Fatalf("%d updates of 500 at 50%%, %d keys, %d seen", s.updates, s.keys, len(seen))
	}
}

func TestReadCheckpoints(t *testing.T) {
	for most, want := range map[int]string{1: "[1]", 5: "[1 5]", 10: "[1 10]", 100: "[1 10 100]"} {
		if got := fmt.Sprint(readCheckpoints(most)); got != want {
			t.Errorf("readCheckpoints(%d) = %s, want %s", most, got, want)
		}
	}
}

// TestUpsertQuick runs `floe bench upsert --quick`, every phase on small
// data, with this test binary as the child: the figures are not checked,
// only that every phase runs and the table prints (the phases check that
// each table holds one row per key, before and after compaction, and that
// the rebuilt index holds every key).
func TestUpsertQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes for about half a minute")
	}
	o := QuickUpsertOptions()
	o.Exe, o.DataDir = os.Args[0], t.TempDir()
	// ClickHouse scans the v2 tables too where scripts/test.sh installed
	// chdb (as it does in CI).
	if dir := os.Getenv("FLOE_CHDB_DIR"); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "chdb")); err == nil {
			o.ClickHouse = dir
		}
	}
	if o.ClickHouse == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chdb is not installed (FLOE_CHDB_DIR): scripts/test.sh installs it")
		}
		t.Log("chdb is not installed (FLOE_CHDB_DIR): the read phase is not scanned by ClickHouse")
	}
	var out bytes.Buffer
	if err := RunUpsert(context.Background(), o, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := out.String()
	t.Log("\n" + got)
	for _, want := range []string{
		"| (1) append (unkeyed), the 10% records |", "| (1) keyed v2, 10% updates |", "| (1) keyed v3, 100% updates |",
		"| (1) keyed v2 delete_mode: equality, 10% updates |",
		"| (2) v2 scan after 10 upsert commits", "| (2) v3 scan after 1 upsert commit", "| (3) index rebuild, 100k keys",
		"| (2) v2 delete_mode: equality, scan after 10 upsert commits", "| (2) v3 delete_mode: equality, scan after 1 upsert commit",
		"| (2) v2 after 10 commits, position deletes merged by maintenance",
		"| (3) index rebuild spilled to a file, key_index_memory", "| (3) resolve of a commit updating 10k random keys",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	if o.ClickHouse != "" && !strings.Contains(got, "| (2) v2 ClickHouse scan after 10 upsert commits |") {
		t.Error("the report lacks ClickHouse's scans")
	}
}

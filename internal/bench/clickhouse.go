package bench

// ClickHouse as a second reader of the read phase's tables (`floe bench
// upsert --clickhouse DIR`).
//
// The read phase times iceberg-go's scan, and what deletes cost a reader
// depends on the reader: how it opens delete files, how it drops the rows
// they name. ClickHouse has its own Iceberg, Parquet and delete readers. It
// runs embedded in Node through the npm package chdb (never part of the
// repository; scripts/test.sh installs it for the e2e tests under
// $(go env GOPATH)/floe-test-tools/chdb-<version>), and --clickhouse names
// the directory it is installed in. After each read-phase child, every
// state of a v2 table in the default delete mode is scanned by ClickHouse
// too, in rounds as iceberg-go's scans are. v3 tables and delete_mode:
// equality are left out: the ClickHouse of chdb 3.4.0 (26.7) fails on
// deletion vectors and does not apply equality deletes written under an
// unpartitioned spec (docs/keyed-tables.md).
//
// Each state's scan also checks what ClickHouse read: its rows must be the
// table's, and every state that holds the same rows (before and after the
// compaction, with scheduled maintenance) must hash to the same sum.

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

//go:embed chdb_scan.js
var chdbScanJS []byte

// stateRef is a state of a read-phase table as another engine finds it: the
// table's directory and the metadata file of that state.
type stateRef struct {
	Name     string `json:"name"`
	Location string `json:"location"`
	// Metadata is the metadata file, relative to Location.
	Metadata string `json:"metadata"`
	// Want is the state's rows; -1 when the state holds replaced rows too
	// (the data files alone).
	Want int64 `json:"want"`
}

// refOf returns st's table as a stateRef; ok is false for a table that is
// not in a local directory.
func refOf(st *scanState) (stateRef, bool) {
	loc, ok1 := strings.CutPrefix(st.tbl.Location(), "file://")
	md, ok2 := strings.CutPrefix(st.tbl.MetadataLocation(), "file://")
	if !ok1 || !ok2 {
		return stateRef{}, false
	}
	rel, err := filepath.Rel(loc, md)
	if err != nil || strings.HasPrefix(rel, "..") {
		return stateRef{}, false
	}
	return stateRef{Name: st.name, Location: loc, Metadata: rel, Want: st.want}, true
}

// stateRefs returns the refs of the states, or nil if one is not local.
func stateRefs(states []*scanState) []stateRef {
	refs := make([]stateRef, 0, len(states))
	for _, st := range states {
		r, ok := refOf(st)
		if !ok {
			return nil
		}
		refs = append(refs, r)
	}
	return refs
}

// engineScan is another engine's fastest scan of a state.
type engineScan struct {
	Name string        `json:"name"`
	Scan time.Duration `json:"scan"`
	Rows int64         `json:"rows"`
}

// clickhouseScans scans every state with the chdb installed in chdbDir,
// rounds times each, in rounds, and checks what it read (see above).
// scratch is a directory for its session.
func clickhouseScans(ctx context.Context, chdbDir, scratch string, states []stateRef, rounds int) ([]engineScan, error) {
	if _, err := os.Stat(filepath.Join(chdbDir, "node_modules", "chdb")); err != nil {
		return nil, fmt.Errorf("--clickhouse %s: no chdb installed there (npm install --prefix %s chdb@3.4.0)", chdbDir, chdbDir)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("--clickhouse: node is not on PATH")
	}
	if err := os.MkdirAll(scratch, 0o755); err != nil {
		return nil, err
	}
	script := filepath.Join(scratch, "chdb_scan.js")
	if err := os.WriteFile(script, chdbScanJS, 0o644); err != nil {
		return nil, err
	}
	session, err := os.MkdirTemp(scratch, "session-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(session)
	req, err := json.Marshal(map[string]any{"rounds": rounds, "states": states})
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, node, script, chdbDir, session)
	cmd.Stdin = bytes.NewReader(req)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("clickhouse: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var res []struct {
		BestMS float64 `json:"best_ms"`
		Rows   string  `json:"rows"`
		Hash   string  `json:"hash"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("clickhouse: %w: %q", err, stdout.String())
	}
	if len(res) != len(states) {
		return nil, fmt.Errorf("clickhouse: %d results for %d states", len(res), len(states))
	}
	out := make([]engineScan, len(states))
	hash, hashOf := "", ""
	for i, st := range states {
		rows, err := strconv.ParseInt(res[i].Rows, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("clickhouse: rows of %s: %q", st.Name, res[i].Rows)
		}
		if st.Want >= 0 {
			if rows != st.Want {
				return nil, fmt.Errorf("clickhouse read %d rows of the table %s, want %d", rows, st.Name, st.Want)
			}
			switch {
			case hash == "":
				hash, hashOf = res[i].Hash, st.Name
			case res[i].Hash != hash:
				return nil, fmt.Errorf("clickhouse read other rows of the table %s than of the table %s", st.Name, hashOf)
			}
		}
		out[i] = engineScan{Name: st.Name, Scan: time.Duration(res[i].BestMS * float64(time.Millisecond)), Rows: rows}
	}
	return out, nil
}

// compactedOf returns the scan of the compacted state among scans.
func compactedOf(scans []engineScan) (engineScan, bool) {
	for _, s := range scans {
		if s.Name == compactedState {
			return s, true
		}
	}
	return engineScan{}, false
}

package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestRunQueryQuick runs `floe bench query` on 50k rows in 10 files, each
// phase once: the figures are not checked, only that every phase runs
// (RunQuery itself checks that the scans return every row and that each
// query returns the same rows before and after the compaction) and that
// the report prints every figure.
func TestRunQueryQuick(t *testing.T) {
	o := QuickQueryOptions()
	o.DataDir = t.TempDir()
	var out bytes.Buffer
	if err := RunQuery(context.Background(), o, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := out.String()
	t.Log("\n" + got)
	for _, state := range []string{"before compaction, 10 files", "after compaction, 1 file"} {
		for _, phase := range []string{
			"raw Parquet read, 10 columns", "raw Parquet read, 2 columns (ts, country)",
			"full scan, 10 columns", "projection, 2 columns (ts, country)",
			"filter on ts, 0.1% of the time range (prunable), 10 columns",
			"filter user_id = 5, ~0.12% of the rows (not prunable), 10 columns",
		} {
			if !strings.Contains(got, "| "+phase+" | "+state+" | ") {
				t.Errorf("the report lacks %q %s", phase, state)
			}
		}
	}
	for _, want := range []string{
		"| (1) build: generate, decode, write, 10 commits |",
		"| (2) compaction: 10 files, ",
		"before compaction: 10 data files, ", "after compaction: 1 data file, ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}

package bench

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestRunTransformQuick runs `floe bench transform --quick` with this test
// binary as the child: every run completes and the report has its rows,
// with the filter keeping a share of the records and not all of them.
func TestRunTransformQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	o := QuickTransformOptions()
	o.Exe = exe
	var out bytes.Buffer
	if err := RunTransform(context.Background(), o, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := out.String()
	t.Log("\n" + got)
	m := regexp.MustCompile(`\| \(1\) filter \+ derive .* \| \d+k records/s \(([0-9.]+)× append; ([0-9.]+)% of the records kept\) \|`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("the report lacks the filter + derive row")
	}
	if kept, _ := strconv.ParseFloat(m[2], 64); kept <= 80 || kept >= 100 {
		t.Errorf("the filter kept %.1f%% of the records, want about 93%%", kept)
	}
	for _, want := range []string{
		"| (1) windowed aggregate (1-minute tumbling, by country, 4 aggregates) |",
		"| (2) latency to the row visible, on time, p50 |",
		"| (2) latency to the row visible, late, window in memory, p50 |",
		"| (2) latency to the row visible, late, window read back, p50 |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	// Every read-back probe read its window back from the table (the
	// windowed state reads back nothing else in this phase: its stream is
	// on time).
	m = regexp.MustCompile(`(\d+) read back from the table`).FindStringSubmatch(got)
	if m == nil {
		t.Fatal("the report lacks the window state's read-backs")
	}
	if n, _ := strconv.Atoi(m[1]); n < o.Probes {
		t.Errorf("%d windows read back, want at least one per read-back probe (%d)", n, o.Probes)
	}
}

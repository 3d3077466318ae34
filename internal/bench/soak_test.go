package bench

import (
	"bytes"
	"image/png"
	"math"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	vs := []float64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		p    float64
		want float64
	}{{0.5, 5}, {0.99, 10}, {0.1, 1}, {0, 1}, {1, 10}} {
		if got := percentile(vs, tc.p); got != tc.want {
			t.Errorf("percentile(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if vs[0] != 5 {
		t.Error("percentile sorted its input")
	}
	if !math.IsNaN(percentile(nil, 0.99)) {
		t.Error("the percentile of nothing must be NaN")
	}
}

func TestHistQuantile(t *testing.T) {
	inf := math.Inf(1)
	// 100 observations: 50 up to 0.01, 40 in (0.01, 0.1], 9 in (0.1, 1],
	// 1 above 1.
	bs := []bucket{{0.01, 50}, {0.1, 90}, {1, 99}, {inf, 100}}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if got := histQuantile(0.5, bs); !near(got, 0.01) {
		t.Errorf("p50 = %v, want 0.01", got)
	}
	// Rank 70 is halfway through the second bucket.
	if got := histQuantile(0.7, bs); !near(got, 0.055) {
		t.Errorf("p70 = %v, want 0.055", got)
	}
	if got := histQuantile(0.99, bs); !near(got, 1) {
		t.Errorf("p99 = %v, want 1", got)
	}
	// In the +Inf bucket: the highest finite bound.
	if got := histQuantile(0.999, bs); !near(got, 1) {
		t.Errorf("p99.9 = %v, want 1", got)
	}
	if got := histQuantile(0.25, bs); !near(got, 0.005) {
		t.Errorf("p25 = %v, want 0.005 (interpolated from 0)", got)
	}
	if !math.IsNaN(histQuantile(0.5, []bucket{{0.1, 0}, {inf, 0}})) || !math.IsNaN(histQuantile(0.5, nil)) {
		t.Error("no observations must give NaN")
	}

	prev := []bucket{{0.01, 10}, {0.1, 10}, {inf, 10}}
	cur := []bucket{{0.01, 10}, {0.1, 30}, {inf, 30}}
	d := bucketDeltas(prev, cur)
	if d[0].count != 0 || d[1].count != 20 || d[2].count != 20 {
		t.Fatalf("deltas: %+v", d)
	}
	if got := histQuantile(0.5, d); !near(got, 0.055) {
		t.Errorf("p50 of the deltas = %v, want 0.055", got)
	}
}

func TestParseMetrics(t *testing.T) {
	page := `# HELP floe_commit_duration_seconds Time to commit one snapshot, retries included.
# TYPE floe_commit_duration_seconds histogram
floe_commit_duration_seconds_bucket{table="bench.soak",le="0.005"} 1
floe_commit_duration_seconds_bucket{table="bench.soak",le="+Inf"} 7
floe_commit_duration_seconds_bucket{table="bench.soak",le="0.05"} 5
floe_commit_duration_seconds_bucket{table="bench.soak__dlq",le="0.005"} 99
floe_commit_duration_seconds_sum{table="bench.soak"} 0.2
floe_table_data_files{table="bench.soak"} 42
floe_maintenance_runs_total{table="bench.soak",task="expiry"} 3
floe_odd{table="a \"quoted\", b\\c"} 1.5e+03
process_resident_memory_bytes 1.2345e+08
garbage line
`
	ms, err := parseMetrics(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := ms.value("floe_table_data_files", "table", "bench.soak"); !ok || v != 42 {
		t.Errorf("data files: %v %v", v, ok)
	}
	if v, ok := ms.value("floe_maintenance_runs_total", "table", "bench.soak", "task", "expiry"); !ok || v != 3 {
		t.Errorf("expiry runs: %v %v", v, ok)
	}
	if _, ok := ms.value("floe_maintenance_runs_total", "task", "compaction"); ok {
		t.Error("found a series whose labels do not match")
	}
	if v, ok := ms.value("floe_odd", "table", `a "quoted", b\c`); !ok || v != 1500 {
		t.Errorf("escaped label: %v %v", v, ok)
	}
	if v, ok := ms.value("process_resident_memory_bytes"); !ok || v != 1.2345e8 {
		t.Errorf("unlabelled: %v %v", v, ok)
	}
	bs := ms.buckets("floe_commit_duration_seconds", "table", "bench.soak")
	if len(bs) != 3 || bs[0].le != 0.005 || bs[1].le != 0.05 || !math.IsInf(bs[2].le, 1) || bs[2].count != 7 {
		t.Errorf("buckets: %+v", bs)
	}
}

func TestRatioWindows(t *testing.T) {
	ref, late, intended := ratioWindows(time.Hour)
	if !intended || ref.From != 15*time.Minute || ref.To != 25*time.Minute || late.From != 50*time.Minute || late.To != time.Hour {
		t.Errorf("one hour: %+v %+v %v", ref, late, intended)
	}
	if _, _, intended := ratioWindows(35 * time.Minute); !intended {
		t.Error("35 minutes holds both windows")
	}
	ref, late, intended = ratioWindows(3 * time.Minute)
	if intended || ref.From != time.Minute || ref.To != 2*time.Minute || late.From != 2*time.Minute || late.To != 3*time.Minute {
		t.Errorf("three minutes: %+v %+v %v", ref, late, intended)
	}
	if !strings.Contains(late.Label, "third") || !strings.Contains(ref.Label, "third") {
		t.Errorf("a short run's windows must say they are thirds: %q, %q", ref.Label, late.Label)
	}

	// A sample per minute for an hour: files grow by one a minute,
	// commit p50 is NaN (no commit) in minute 20.
	var samples []soakSample
	for m := 1; m <= 60; m++ {
		s := soakSample{At: time.Duration(m) * time.Minute, DataFiles: m, CommitP50: 0.01}
		if m == 20 {
			s.CommitP50 = math.NaN()
		}
		samples = append(samples, s)
	}
	ref, late, _ = ratioWindows(samples[len(samples)-1].At)
	files := func(s soakSample) float64 { return float64(s.DataFiles) }
	mr, nr := windowMean(samples, ref, files)
	ml, nl := windowMean(samples, late, files)
	// Minutes 16..25 and 51..60.
	if nr != 10 || nl != 10 || mr != 20.5 || ml != 55.5 {
		t.Errorf("means: ref %v over %d, late %v over %d", mr, nr, ml, nl)
	}
	if r, ok := soakRatio(mr, ml); !ok || math.Abs(r-55.5/20.5) > 1e-9 {
		t.Errorf("ratio %v %v", r, ok)
	}
	p50 := func(s soakSample) float64 { return s.CommitP50 }
	if m, n := windowMean(samples, ref, p50); n != 9 || m != 0.01 {
		t.Errorf("NaN must be skipped: %v over %d", m, n)
	}
	if m, n := windowMean(samples, soakWindow{From: 2 * time.Hour, To: 3 * time.Hour}, files); n != 0 || !math.IsNaN(m) {
		t.Errorf("an empty window: %v over %d", m, n)
	}
	for _, tc := range []struct {
		ref, late, want float64
		ok              bool
	}{{2, 3, 1.5, true}, {0, 0, 1, true}, {0, 1, math.Inf(1), false}, {math.NaN(), 1, math.NaN(), false}} {
		r, ok := soakRatio(tc.ref, tc.late)
		if ok != tc.ok || (r != tc.want && !(math.IsNaN(r) && math.IsNaN(tc.want))) {
			t.Errorf("soakRatio(%v, %v) = %v, %v", tc.ref, tc.late, r, ok)
		}
	}
}

func TestSoakSummary(t *testing.T) {
	var samples []soakSample
	for i := 1; i <= 18; i++ {
		samples = append(samples, soakSample{At: time.Duration(i) * 10 * time.Second, Snapshots: 10, DataFiles: i,
			DataBytes: int64(i) << 20, CommitP50: 0.01, CommitP99: math.NaN(), Rows: 1000, Scan: time.Millisecond})
	}
	var out bytes.Buffer
	printSoakSummary(&out, soakFigures(), samples)
	got := out.String()
	for _, want := range []string{"too short", "LAST THIRD", "MIDDLE THIRD", "snapshots retained", "<= 1.2: ok", "<= 1.2: over", "<= 1.2: n/a", "data bytes x"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
}

func TestRenderPlot(t *testing.T) {
	var panels []plotPanel
	for i := range 5 {
		p := plotPanel{title: "figure", format: fmtSeconds}
		for m := 0; m <= 30; m++ {
			y := float64(m*(i+1)) / 100
			if m == 10 {
				y = math.NaN()
			}
			p.xs, p.ys = append(p.xs, float64(m)), append(p.ys, y)
		}
		panels = append(panels, p)
	}
	panels = append(panels, plotPanel{title: "empty"})
	var buf bytes.Buffer
	if err := renderPlot(&buf, "title", panels); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	w, h := plotSize(len(panels))
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h || w != plotCols*panelW || h != plotHeader+3*panelH {
		t.Fatalf("image %v, want %dx%d", img.Bounds(), w, h)
	}
	// The first panel's line is drawn in the line colour.
	found := false
	for y := plotHeader; y < plotHeader+panelH && !found; y++ {
		for x := 0; x < panelW; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if r>>8 == uint32(plotLine.R) && g>>8 == uint32(plotLine.G) && b>>8 == uint32(plotLine.B) {
				found = true
				break
			}
		}
	}
	if !found {
		t.Error("no line drawn in the first panel")
	}
}

func TestFormats(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{fmtSeconds(0.0005), "500us"}, {fmtSeconds(0.087), "87ms"}, {fmtSeconds(1.214), "1.21s"}, {fmtSeconds(math.NaN()), "-"},
		{fmtBytes(512), "512B"}, {fmtBytes(3 << 10), "3KiB"}, {fmtBytes(1.5 * (1 << 20)), "1.5MiB"}, {fmtBytes(2 << 30), "2.00GiB"},
		{fmtCount(3), "3"}, {fmtCount(2.25), "2.2"}, {fmtElapsed(90 * time.Second), "1:30"}, {fmtElapsed(24 * time.Hour), "1440:00"},
		{fmtDuration(24 * time.Hour), "1d"}, {fmtDuration(10 * time.Minute), "10m"}, {fmtDuration(90 * time.Second), "1m30s"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

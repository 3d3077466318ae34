package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/internal/config"
)

// waitTablesReach polls, through a catalog handle of its own, until the
// floe.offsets of the pipeline's table and of its dead-letter table both
// reach ends on every partition, and fails after timeout with the offsets
// it read last. A table that does not exist yet has not reached them.
func waitTablesReach(t *testing.T, cfg config.Config, ends map[int32]int64, timeout time.Duration) {
	t.Helper()
	pc := cfg.Pipelines[0]
	if len(pc.Topics) != 1 {
		t.Fatalf("waitTablesReach: want one topic, pipeline has %v", pc.Topics)
	}
	cat := openCatalog(t, cfg)
	what := fmt.Sprintf("the offsets of %s and %s to reach the end offsets %s", pc.Table, pc.DeadLetter(), fmtOffsets(ends))
	waitFor(t, timeout, what, func() (bool, string) { return tablesReached(cat, pc, ends) })
}

// tablesReached reports whether the floe.offsets of the pipeline's table
// and of its dead-letter table (of its one topic) both reach ends on every
// partition, and what they are.
func tablesReached(cat *catalog.Catalog, pc ingest.PipelineConfig, ends map[int32]int64) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	all := true
	var state []string
	for _, name := range []string{pc.Table, pc.DeadLetter()} {
		off, err := committedOffsets(ctx, cat, name, pc.Name, pc.Topics[0])
		if err != nil || !reached(off, ends) {
			all = false
		}
		s := name + " " + fmtOffsets(off)
		if err != nil {
			s += fmt.Sprintf(" (%v)", err)
		}
		state = append(state, s)
	}
	return all, strings.Join(state, "; ")
}

// readMetrics reads a Prometheus text exposition into series → value.
func readMetrics(url string) (map[string]float64, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET %s: %s\n%s", url, resp.Status, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", url, err)
	}
	return out, nil
}

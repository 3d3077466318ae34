package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/floelake/floe/internal/gen"
	"github.com/floelake/floe/internal/testutil"
)

// TestS3 is the in-process scenario with the warehouse on a real
// S3-compatible server (versitygw): data files, manifests and metadata go
// through iceberg-go's S3 file IO with path-style addressing and static
// credentials from the storage section.
func TestS3(t *testing.T) {
	srv := testutil.StartS3(t)
	const topic, records = "clicks", 50_000
	_, addr := startBroker(t, topic, 4)
	s := newSetup(t, addr, topic)
	s.Warehouse = srv.Warehouse("wh")
	s.S3 = &s3Settings{Endpoint: srv.Endpoint, Region: srv.Region, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}
	cfg := s.config(t)

	n := startNode(t, cfg, testLogger(t, "node"))
	var stats gen.ProducerStats
	if err := produce(context.Background(), newProducer(t, addr), topic, records, 0, 21, &stats); err != nil {
		t.Fatalf("produce: %v", err)
	}
	want := producedOf(&stats)
	p := n.n.Pipelines()[0]
	waitFor(t, 3*time.Minute, "the node to commit every record", func() (bool, string) {
		st := p.Stats()
		return st.Committed+st.DeadLettersCommitted == want.Records,
			fmt.Sprintf("stats %+v, want committed+dead-letters = %d", st, want.Records)
	})
	n.stop(t)

	tbl := checkExactlyOnce(t, cfg, want)

	// Everything the table references lives in the bucket.
	if loc := tbl.Location(); !strings.HasPrefix(loc, s.Warehouse+"/") {
		t.Errorf("table location %q is not under the warehouse %q", loc, s.Warehouse)
	}
	if ml := tbl.MetadataLocation(); !strings.HasPrefix(ml, "s3://") {
		t.Errorf("metadata location %q is not on S3", ml)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		t.Fatalf("plan files: %v", err)
	}
	if len(tasks) == 0 {
		t.Fatal("the table has no data files")
	}
	for _, task := range tasks {
		if path := task.File.FilePath(); !strings.HasPrefix(path, "s3://"+srv.Bucket+"/") {
			t.Errorf("data file %q is not in s3://%s/", path, srv.Bucket)
		}
	}
	t.Logf("%d data files, all under s3://%s/", len(tasks), srv.Bucket)
}

package commit_test

import (
	"context"
	"reflect"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCommitterKeepsNoOldMetadata commits through one Committer and checks
// that the metadata of its earlier commits is collected: a committer that
// kept each commit's table reachable from the next retained every snapshot
// list it ever made (heap growing with the square of its commits).
func TestCommitterKeepsNoOldMetadata(t *testing.T) {
	f := newFixture(t)
	c := f.committer(f.cat)
	var alive atomic.Int64
	const n = 30
	for i := int64(0); i < n; i++ {
		_, err := c.Commit(context.Background(), f.segment(i, 1))
		require.NoError(t, err)
		alive.Add(1)
		meta := (*byte)(reflect.ValueOf(c.Table().Metadata()).UnsafePointer())
		runtime.AddCleanup(meta, func(a *atomic.Int64) { a.Add(-1) }, &alive)
	}
	deadline := time.Now().Add(5 * time.Second)
	for alive.Load() > 1 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	require.LessOrEqual(t, alive.Load(), int64(1), "metadata of earlier commits still reachable")
	runtime.KeepAlive(c)
}

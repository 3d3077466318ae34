package api

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/floelake/floe/maintain"
	floev1 "github.com/floelake/floe/proto/floe/v1"
)

// maxJobs is how many compaction jobs a node remembers.
const maxJobs = 100

// jobs are the compactions started through the API, in memory: a job is
// a view of work the table writer does, and a restarted node has none.
type jobs struct {
	ctx   context.Context
	mu    sync.Mutex
	byID  map[string]*floev1.CompactionJob
	order []string
}

func newJobs(ctx context.Context) *jobs {
	return &jobs{ctx: ctx, byID: map[string]*floev1.CompactionJob{}}
}

// start runs run in the background as a new job and returns the job.
func (j *jobs) start(table string, run func(context.Context, func(maintain.Progress)) (maintain.Summary, error)) *floev1.CompactionJob {
	job := &floev1.CompactionJob{JobId: uuid.NewString(), Table: table, State: "running", Started: timestamppb.Now()}
	j.mu.Lock()
	j.byID[job.JobId] = job
	j.order = append(j.order, job.JobId)
	// The oldest finished jobs go; a running one is kept whatever its age.
	for i := 0; len(j.order) > maxJobs && i < len(j.order); {
		if id := j.order[i]; j.byID[id].GetState() != "running" {
			delete(j.byID, id)
			j.order = append(j.order[:i], j.order[i+1:]...)
			continue
		}
		i++
	}
	out := proto.Clone(job).(*floev1.CompactionJob)
	j.mu.Unlock()
	go func() {
		sum, err := run(j.ctx, func(p maintain.Progress) {
			j.update(job.JobId, func(job *floev1.CompactionJob) {
				job.GroupsTotal, job.GroupsDone = int64(p.Groups), int64(p.Done)
				job.BytesTotal, job.BytesDone = p.Bytes, p.BytesDone
			})
		})
		j.update(job.JobId, func(job *floev1.CompactionJob) {
			job.Finished = timestamppb.New(time.Now())
			if err != nil {
				job.State, job.Error = "failed", err.Error()
				return
			}
			job.State = "succeeded"
			job.SnapshotId = sum.Snapshot
			job.FilesRewritten, job.FilesWritten = int64(sum.Rewritten), int64(sum.Written)
			job.FilesBefore, job.FilesAfter = int64(sum.FilesBefore), int64(sum.FilesAfter)
			job.EqualityDeletesRemoved = int64(sum.EqualityDeletesRemoved)
			if job.BytesTotal == 0 {
				job.BytesTotal, job.BytesDone = sum.BytesRead, sum.BytesRead
			}
		})
	}()
	return out
}

func (j *jobs) update(id string, f func(*floev1.CompactionJob)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if job, ok := j.byID[id]; ok {
		f(job)
	}
}

func (j *jobs) get(id string) (*floev1.CompactionJob, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	job, ok := j.byID[id]
	if !ok {
		return nil, false
	}
	return proto.Clone(job).(*floev1.CompactionJob), true
}

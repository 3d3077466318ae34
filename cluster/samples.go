package cluster

import (
	"slices"
	"sync"
	"time"
)

// sampleStore keeps the Kafka timestamps sampled from the leader's own
// accepted segments until it commits them, so a commit reports how fresh its
// records were (always, in a cluster of one). A leadership lost before the
// commit leaves samples nobody takes: the store forgets the oldest beyond
// maxSampledSegments.
type sampleStore struct {
	mu   sync.Mutex
	byID map[uint64][]time.Time
}

const maxSampledSegments = 4096

func (s *sampleStore) put(id uint64, samples []time.Time) {
	if len(samples) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID == nil {
		s.byID = map[uint64][]time.Time{}
	}
	s.byID[id] = samples
	if len(s.byID) > maxSampledSegments {
		ids := make([]uint64, 0, len(s.byID))
		for k := range s.byID {
			ids = append(ids, k)
		}
		slices.Sort(ids)
		for _, k := range ids[:len(ids)-maxSampledSegments] {
			delete(s.byID, k)
		}
	}
}

// take returns and forgets the samples of the given segments.
func (s *sampleStore) take(ids []uint64) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Time
	for _, id := range ids {
		out = append(out, s.byID[id]...)
		delete(s.byID, id)
	}
	return out
}

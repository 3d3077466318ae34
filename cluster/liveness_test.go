package cluster

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/commit"
)

// Members are judged by when the leader saw their heartbeats change, on
// the leader's clock, whatever clock the member stamped them with.
func TestLivenessIgnoresMemberClocks(t *testing.T) {
	start := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	lv := newLiveness("leader", start, 5*time.Second)
	// "slow" stamps an hour behind the leader, "fast" an hour ahead;
	// "gone" never heartbeats again after the leadership began.
	slow, fast, gone := start.Add(-time.Hour), start.Add(time.Hour), start.Add(-time.Second)
	members := func() []commit.Member {
		return []commit.Member{{ID: "leader"}, {ID: "slow", LastHeartbeat: slow}, {ID: "fast", LastHeartbeat: fast}, {ID: "gone", LastHeartbeat: gone}}
	}
	for i := 1; i <= 20; i++ {
		now := start.Add(time.Duration(i) * time.Second)
		slow, fast = slow.Add(time.Second), fast.Add(time.Second)
		live, dead := lv.judge(members(), now)
		if now.Sub(start) <= 5*time.Second {
			require.ElementsMatch(t, []string{"leader", "slow", "fast", "gone"}, live, "at +%v everyone has dead_after of grace", now.Sub(start))
			continue
		}
		require.ElementsMatch(t, []string{"leader", "slow", "fast"}, live, "at +%v", now.Sub(start))
		require.Equal(t, []string{"gone"}, dead, "at +%v", now.Sub(start))
	}

	// "fast" stops: its stamp, an hour in the leader's future, must not
	// keep it alive.
	now := start.Add(20 * time.Second)
	for i := 1; i <= 6; i++ {
		now = now.Add(time.Second)
		slow = slow.Add(time.Second)
		lv.judge(members(), now)
	}
	live, dead := lv.judge(members(), now)
	require.ElementsMatch(t, []string{"leader", "slow"}, live)
	require.ElementsMatch(t, []string{"fast", "gone"}, dead)
}

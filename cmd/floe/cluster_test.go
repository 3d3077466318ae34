package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/floelake/floe/cluster"
)

func TestPrintStatus(t *testing.T) {
	st := cluster.Status{
		NodeID: "n2", LeaderID: "n1", Term: 3, AppliedIndex: 42,
		Members: []cluster.MemberStatus{
			{ID: "n1", RaftAddr: "10.0.0.1:7946", APIAddr: "10.0.0.1:7947", Suffrage: "voter", LastHeartbeat: time.Now(), Alive: true, Partitions: 2},
			{ID: "n2", RaftAddr: "10.0.0.2:7946", APIAddr: "10.0.0.2:7947", Suffrage: "voter", Alive: false},
		},
		Partitions: []cluster.PartitionStatus{
			{Pipeline: "clicks", Topic: "clicks", Partition: 0, Owner: "n1", Epoch: 4, NextExpected: 120, Committed: 100, End: 130, Lag: 30},
			{Pipeline: "clicks", Topic: "clicks", Partition: 1, NextExpected: -1, Committed: -1, End: -1, Lag: -1},
		},
		Tables: []cluster.TableStatus{{Table: "lake.clicks", Pipeline: "clicks", SnapshotID: 77, PendingSegments: 1, PendingRecords: 20}},
	}
	var b bytes.Buffer
	printStatus(&b, st)
	out := b.String()
	for _, want := range []string{
		"node n2  leader n1  term 3  applied index 42",
		"voter (leader)",
		"clicks/0", "n1", "130", "30",
		"lake.clicks", "77",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	// Unknown values print as "-", never as -1.
	if strings.Contains(out, "-1") {
		t.Errorf("status output shows -1:\n%s", out)
	}
}

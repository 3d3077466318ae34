package raftstore

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/hashicorp/raft"
)

type fakeSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *fakeSink) ID() string                  { return "fake" }
func (s *fakeSink) Close() error                { s.closed = true; return nil }
func (s *fakeSink) Cancel() error               { s.cancelled = true; return nil }
func (s *fakeSink) Write(p []byte) (int, error) { return s.Buffer.Write(p) }

type failingSnapshot struct{ released bool }

func (f *failingSnapshot) Persist(w io.Writer) error {
	w.Write([]byte("partial"))
	return errors.New("disk full")
}
func (f *failingSnapshot) Release() { f.released = true }

// TestFSMAdapter: the adapter persists and closes the sink, cancels it when
// Persist fails, calls an optional Release, and round-trips the state.
func TestFSMAdapter(t *testing.T) {
	fsm := &testFSM{}
	a := &fsmAdapter[*testSnapshot]{fsm: fsm}
	for i, d := range []string{"x", "y", "z"} {
		if got := a.Apply(&raft.Log{Index: uint64(i + 1), Data: []byte(d), Type: raft.LogCommand}); got != uint64(i+1) {
			t.Fatalf("Apply returned %v", got)
		}
	}
	snap, err := a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	a.Apply(&raft.Log{Index: 4, Data: []byte("after the snapshot")})
	var sink fakeSink
	if err := snap.Persist(&sink); err != nil || !sink.closed || sink.cancelled {
		t.Fatalf("Persist: %v, closed %v, cancelled %v", err, sink.closed, sink.cancelled)
	}
	snap.Release()

	restored := &testFSM{}
	b := &fsmAdapter[*testSnapshot]{fsm: restored}
	if err := b.Restore(io.NopCloser(&sink.Buffer)); err != nil {
		t.Fatal(err)
	}
	if got := restored.snapshot(); len(got) != 3 || got[2] != (entry{Index: 3, Data: "z"}) {
		t.Fatalf("restored %v, want the 3 entries before the snapshot", got)
	}

	fs := &failingSnapshot{}
	sa := &snapshotAdapter{snap: fs}
	var bad fakeSink
	if err := sa.Persist(&bad); err == nil || !bad.cancelled || bad.closed {
		t.Fatalf("failing Persist: %v, cancelled %v, closed %v", err, bad.cancelled, bad.closed)
	}
	sa.Release()
	if !fs.released {
		t.Fatal("Release not forwarded")
	}
}

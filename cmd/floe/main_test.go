package main

import (
	"os"
	"runtime/debug"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestVersionString(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.0",
		Main:      debug.Module{Path: "github.com/floelake/floe", Version: "v0.4.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123abcd"},
			{Key: "vcs.time", Value: "2026-11-30T10:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	require.Equal(t, "v0.4.0 (revision 0123abcd+modified, 2026-11-30T10:00:00Z) go1.26.0", versionString("dev", bi))
	// A version set at link time wins over the module's.
	require.Equal(t, "1.2.3 (revision 0123abcd+modified, 2026-11-30T10:00:00Z) go1.26.0", versionString("1.2.3", bi))
	// A build from a work tree has no module version, only the revision.
	bi.Main.Version, bi.Settings = "(devel)", bi.Settings[:1]
	require.Equal(t, "dev (revision 0123abcd) go1.26.0", versionString("dev", bi))
	bi.Settings = nil
	require.Equal(t, "dev (revision unknown: built without VCS stamping) go1.26.0", versionString("dev", bi))
	require.Equal(t, "dev", versionString("dev", nil))
}

// One stop delivered twice (GNU timeout, a process group) is one graceful
// stop; a signal after the window exits at once.
func TestWatchSignals(t *testing.T) {
	// The clock reads, in order, at the first signal and at each repeat.
	times := []time.Duration{0, 200 * time.Millisecond, 900 * time.Millisecond, signalRepeatWindow + time.Millisecond}
	var reads int
	now := func() time.Time { d := times[reads]; reads++; return time.Unix(0, 0).Add(d) }
	ch := make(chan os.Signal, len(times))
	for range times {
		ch <- syscall.SIGTERM
	}
	stops, exits := 0, 0
	watchSignals(ch, func() { stops++ }, now, func() { exits++ })
	require.Equal(t, 1, stops)
	require.Equal(t, 1, exits)
	require.Equal(t, len(times), reads, "the repeats inside the window must not exit")
}

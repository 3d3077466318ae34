// Package procrig runs floe nodes as separate `floe serve` processes on
// 127.0.0.1: the end-to-end tests (cluster chaos, TLS, failpoints, crashes)
// and `floe bench cluster` drive their members through it.
//
// A Rig is a set of members sharing one catalog and warehouse. New writes
// every member's configuration file (MemberConfig.YAML) with addresses of
// its own (FreeAddrs); in cluster mode the first member forms the cluster
// and the others join through its API. A member keeps its directory (data
// dir, configuration, log) across restarts, as a real node would. The rig
// then
//
//   - starts, SIGKILLs and stops (SIGTERM, the final commit) members'
//     processes of the floe binary the caller names, their output appended
//     to the member's log (LogTails prints the end of every log);
//   - samples every member process's peak RSS before it stops (PeakRSS);
//   - tells members meant to run from members that exited by themselves
//     (CheckAlive), which every wait checks on each poll;
//   - reads members' views of the cluster over the HTTP endpoint (Status,
//     LeaderStatus, Ready, MetricValue) and waits for conditions (WaitFor).
//
// Proc is one floe process of any command, for callers that run a single
// node or the CLI without a rig.
//
// Nothing here fails a test: every operation returns an error, and the
// tests wrap the rig with t.Helper and t.Fatal.
package procrig

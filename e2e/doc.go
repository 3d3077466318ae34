// Package e2e holds floe's end-to-end tests. They run the real thing: a
// Kafka-compatible broker (kfake) in the test process on a 127.0.0.1 port,
// the event generator of internal/gen (unique event ids, about 1% malformed
// records), floe itself (in-process through internal/node, or as a separate
// `floe serve --config` process built from ./cmd/floe), a SQLite Iceberg
// catalog and a local or S3 (versitygw) warehouse.
//
// Every test ends with the same oracle (checkExactlyOnce): both tables are
// read back with iceberg-go and every Kafka (partition, offset) from 0 to the
// partition's end offset must be in exactly one of the table and its
// dead-letter table, exactly once; the table holds exactly the valid records
// (unique event ids), the dead-letter table exactly the malformed ones, and
// the floe.offsets of both tables' current snapshots equal the end offsets.
// Scans filtered on the partition column and on bounded columns must return
// exactly the matching rows of the unfiltered scan (wrong partition values or
// column bounds make them skip files). Then ClickHouse, embedded in Node
// through the npm package chdb (chdb_test.go; FLOE_CHDB_DIR, installed by
// scripts/test.sh), reads both tables again with its own Parquet, Avro and
// Iceberg code and checks the same (oracle_independent_test.go).
//
// What they prove:
//
//   - TestExactlyOnceInProcess: a node ingests 200,000 records exactly once;
//     a new node on the same catalog resumes exactly where a stopped one left
//     off; clean input (no dead letters) still moves the dead-letter table's
//     offsets.
//
//   - TestTwoNodesOneTable: two nodes writing the same table at once (a
//     zombie beside its replacement) still commit every record once.
//
//   - TestCrashRecovery: a floe process SIGKILLed at random moments and at
//     every durable step of the write path (failpoints: after a file write,
//     after a file close, before and after the catalog commit) loses and
//     duplicates nothing across restarts.
//
//   - TestS3: the in-process scenario on an S3 warehouse (versitygw; skipped
//     when it is not installed unless CI is set).
//
//   - TestSIGTERMFinalCommit: SIGTERM commits every buffered record and
//     exits 0.
//
//   - TestBadConfigNamesField, TestBadConfigPlacesEveryProblem: an invalid
//     configuration exits non-zero and names every bad field with its line.
//
//   - TestOperatorMistakes: the binary against a new user's mistakes and
//     failing dependencies (a catalog in a missing directory, two nodes on
//     one data directory, a schema that cannot be inferred alone and beside
//     a pipeline that works, a missing topic, a catalog that is down): the
//     exit status and message, or the /readyz reason while it waits.
//     TestSignalTwiceAndVersion: a stop signalled twice at once is one
//     graceful stop; floe version names the build.
//
//   - TestStartLatestResumesFromTableOffsets, TestMetricsCountIngest and
//     TestStaleBaseCommitIsAConflict pin down bugs found while writing these
//     tests (silent record loss with start: latest after a crash between the
//     two tables' first commits; ingest counters never exported; stale-base
//     rejections counted as unknown outcomes).
//
//   - TestClusterInProcess: three cluster members in one process on raft's
//     in-memory transport, through a member leaving and rejoining, a
//     leadership transfer and a network partition of the leader.
//
//   - TestClusterChaos, TestClusterRecoversFromIcebergAlone,
//     TestClusterLeaveAndRejoin (cluster_chaos_test.go): cluster members as
//     separate processes, SIGKILLed again and again while records stream in
//     (the long version: FLOE_E2E_CHAOS_LONG=1), rebuilt from the tables
//     after losing every raft data dir, and leaving and rejoining through
//     the CLI.
//
//   - TestClusterTLS: two members on mutual TLS (raft transport and cluster
//     API); the CLI reaches them with the certificate and not without.
//
//   - TestRenamedDeadLetterTable* (deadletter_rename_test.go): the
//     dead-letter table renamed in the catalog while floe is down (stopped,
//     or SIGKILLed with the raft state kept) and while it runs, on a single
//     node and a cluster: floe keeps committing into a new dead-letter table,
//     and the oracle reads the renamed and the new one together.
//
//   - TestMaintenanceUnderKills, TestAggressiveExpiryAfterCompaction,
//     TestOrphansOfKilledWriter, TestClickHouseReadsCompactedTables
//     (maintenance_test.go): compaction, snapshot expiry and orphan cleanup
//     as aggressive as the configuration allows, in floe processes
//     SIGKILLed at random moments and right after compactions: every
//     compaction and every new current snapshot the test sees reads back as
//     exactly the records below its offsets; expiry down to the current
//     snapshot deletes the files only the removed snapshots referenced and
//     a restart resumes on the cut history; the files killed writers leave
//     are removed once older than the grace, never a file in flight;
//     ClickHouse reads every snapshot expiry kept as floe does, count()
//     (the summaries) included. TestExpiryAfterCompactionReportsNoFalseFailures
//     pins down a false warning of expiry after compactions.
//
//   - TestKeyedUpsertUnderKills, TestKeyedUpsertClusterLeaderKill
//     (keyed_test.go): keyed tables (key:) of format versions 2 and 3 fed
//     updates, duplicates and late events while floe processes are
//     SIGKILLed (a cluster's leader, which keeps the key index, too): the
//     current snapshot and snapshots from the history (after each
//     restart, compactions) hold exactly the newest row of every key below
//     their offsets, read by iceberg-go and by ClickHouse (which does not
//     read v3 deletion vectors and must refuse them); every delete applies
//     to a live data file and the summaries count the rows.
//     TestKeyedCompactionRemovesDeletionVectorsOfRewrittenFiles pins down
//     v3 compactions that leave deletion vectors of the files they rewrote.
//
//   - TestWindowsUnderKills, TestWindowsClusterPartitionMoves
//     (windows_test.go): windowed pipelines (transform.window: tumbling
//     windows per country, sessions per user) fed clicks out of order,
//     hours and days late (beyond the state retention, so their windows
//     are read back from the table), duplicated, filtered out and dead
//     letters, while a floe process is SIGKILLed (and failpoints crash it
//     around commits) or a cluster's members are, the leader, which runs
//     the table writer and its window state, among them: `floe verify`
//     finds the table equal to a batch recomputation over the topic, the
//     rows add up to the events produced, late data corrected windows,
//     the dead-letter table holds the dead letters, and ClickHouse reads
//     the same rows as iceberg-go. TestWindowsDeadLetterTableBehind pins
//     down windows that counted twice the records a restart read again
//     for a dead-letter table behind the window table.
//
//   - TestClusterRollback (cluster_rollback_test.go): the API's rollback on
//     three floe processes with tokens: a follower refuses and names the
//     leader; a dry run changes nothing; replay returns the table to a
//     snapshot and the members read the records since again, ending with
//     exactly the rows before; skip drops the records since a snapshot for
//     good, also after the leader is SIGKILLed right after it.
//
//   - TestRESTCatalogClickHouse* (rest_catalog_test.go): ClickHouse finds
//     the tables through the node's Iceberg REST catalog (/iceberg) and
//     reads every row floe's own query returns, on S3 (with and without
//     vended credentials) and on a local warehouse.
//
//   - TestConsole (console_test.go): the web console in headless Chromium
//     (Playwright): a table's snapshots and a query's rows, with a
//     screenshot kept.
//
//   - TestIndependentChecksCatchTampering: the pruned scans and ClickHouse
//     checks fail on copies of a table committed with one fault each (a
//     file's upper bound or partition value, its record count, a file left
//     out or committed twice, offsets ahead of the data, invalid UTF-8).
//
// Run them with
//
//	go test ./e2e/
//
// (about a minute on 2 cores, most of it the crash test, which -short
// skips). The crash test draws its kill schedule from a seed it logs;
// FLOE_E2E_SEED=<seed> replays it. Logs of floe (in-process nodes and
// processes) are printed when a test fails; FLOE_E2E_KEEP=1 prints them for
// passing tests too.
package e2e

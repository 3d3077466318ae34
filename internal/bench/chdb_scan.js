// Scans Iceberg tables with ClickHouse embedded in Node (the npm package
// chdb), for `floe bench upsert --clickhouse` (internal/bench/clickhouse.go):
//
//   node chdb_scan.js <dir chdb is installed in> <session dir>  < request.json
//
// stdin: {"rounds": n, "states": [{"location": table dir, "metadata": its
// metadata file, relative to the table dir}, ...]}. Each state is pinned to
// its metadata file (the table as it was then). Every state is scanned once
// per round, round after round, with
//
//   SELECT sum(1), sum(cityHash64(*)) FROM t
//
// which reads every row of every column and applies the deletes. stdout: a
// JSON array, per state: {"best_ms", "rows", "hash"} of its fastest scan
// (rows and hash are strings: 64-bit values). A failing statement is
// reported on stderr and ends the process with status 2.
"use strict";
const fs = require("fs");
const path = require("path");

function main() {
  const [pkgDir, sessionDir] = process.argv.slice(2);
  if (!pkgDir || !sessionDir) {
    throw new Error("usage: node chdb_scan.js <chdb install dir> <session dir> < request.json");
  }
  const { Session } = require(path.join(pkgDir, "node_modules", "chdb"));
  const req = JSON.parse(fs.readFileSync(0, "utf8"));
  // ClickHouse reads local files only below its working directory.
  process.chdir("/");
  const s = new Session(sessionDir);
  const out = [];
  try {
    req.states.forEach((st, i) => {
      const loc = st.location.replace(/'/g, "\\'");
      const md = st.metadata.replace(/'/g, "\\'");
      s.query(`CREATE TABLE t${i} ENGINE=IcebergLocal('${loc}') SETTINGS iceberg_metadata_file_path='${md}'`, "TabSeparated");
      out.push({ best_ms: Infinity, rows: "", hash: "" });
    });
    for (let round = 0; round < req.rounds; round++) {
      req.states.forEach((st, i) => {
        const start = process.hrtime.bigint();
        let res;
        try {
          res = s.query(`SELECT sum(1), sum(cityHash64(*)) FROM t${i}`, "TabSeparated");
        } catch (e) {
          throw new Error(`scan of ${st.location} (${st.metadata}): ${e && e.message ? e.message : e}`);
        }
        const ms = Number(process.hrtime.bigint() - start) / 1e6;
        const [rows, hash] = res.toString().trim().split("\t");
        const o = out[i];
        o.best_ms = Math.min(o.best_ms, ms);
        o.rows = rows;
        o.hash = hash;
      });
    }
  } finally {
    s.close();
  }
  process.stdout.write(JSON.stringify(out));
}

try {
  main();
} catch (e) {
  process.stderr.write(`${e && e.message ? e.message : e}\n`);
  process.exit(2);
}

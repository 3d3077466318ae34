// Runs SQL statements in one session of ClickHouse embedded in Node (the npm
// package chdb), for the e2e oracle (e2e/chdb_test.go):
//
//   node chdb.js <dir chdb is installed in> <session data dir>  < statements.json
//
// stdin: a JSON array of statements. stdout, for each statement in order: a
// header line "<result length in bytes> <milliseconds>\n", then the result
// (TabSeparated) as the raw bytes ClickHouse produced: no JavaScript string
// in between, which would replace invalid UTF-8. A failing statement is
// reported on stderr and ends the process with status 2.
"use strict";
const fs = require("fs");
const path = require("path");

function write(chunk) {
  return new Promise((resolve, reject) => process.stdout.write(chunk, (err) => (err ? reject(err) : resolve())));
}

async function main() {
  const [pkgDir, dataDir] = process.argv.slice(2);
  if (!pkgDir || !dataDir) {
    throw new Error("usage: node chdb.js <chdb install dir> <session dir> < statements.json");
  }
  const { Session } = require(path.join(pkgDir, "node_modules", "chdb"));
  const stmts = JSON.parse(fs.readFileSync(0, "utf8"));

  // ClickHouse reads local files only below its working directory.
  process.chdir("/");
  const s = new Session(dataDir);
  try {
    for (let i = 0; i < stmts.length; i++) {
      const start = process.hrtime.bigint();
      let res;
      try {
        res = await s.queryAsync(stmts[i], { format: "TabSeparated" });
      } catch (e) {
        throw new Error(`statement ${i + 1} of ${stmts.length} failed: ${e && e.message ? e.message : e}\n${stmts[i]}`);
      }
      const bytes = res.bytes();
      const ms = Number((process.hrtime.bigint() - start) / 1000000n);
      await write(`${bytes.length} ${ms}\n`);
      if (bytes.length > 0) await write(bytes);
    }
  } finally {
    s.close();
  }
}

main().catch((e) => {
  process.stderr.write(`${e && e.message ? e.message : e}\n`);
  process.exit(2);
});

// Drives the floe web console in headless Chromium through Playwright, for
// e2e/console_test.go:
//
//   FLOE_CONSOLE_CHECK='{...}' node console_check.mjs
//
// FLOE_CONSOLE_CHECK is a JSON object: playwright_dir (the --prefix
// playwright-core was installed into), chromium (its binary), url (the
// console, ending in /console/), token, table, snapshot_ids (the table's
// snapshots, newest first), query_snapshot (a snapshot to click), where (a
// filter to run as of it), deep_link (a hash to open, without the #),
// bad_where (a filter with a syntax error), page_size (the console's
// snapshot page size, small so that it pages) and screenshot (a PNG path).
//
// It waits for each state with timeouts and reports what the page showed
// as one JSON line on stdout; the Go test decides what is right. A step
// that times out ends the run with status 1 and the steps done so far.

import { createRequire } from "node:module";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const cfg = JSON.parse(process.env.FLOE_CONSOLE_CHECK || "{}");
const require = createRequire(path.join(cfg.playwright_dir, "package.json"));
const { chromium } = require("playwright-core");

const STEP_MS = 15000;
const out = { console_errors: [], bad_responses: [] };
let step = "start";

// Errors the checks cause on purpose: the 401 before the token, the 400
// of the bad filter.
const expectedNoise = /Failed to load resource: the server responded with a status of (400|401)/;

function log(msg) {
  process.stderr.write(`[console_check ${new Date().toISOString().slice(11, 23)}] ${msg}\n`);
}

function watch(page) {
  page.on("console", (m) => {
    if (m.type() === "error" && !expectedNoise.test(m.text())) out.console_errors.push(m.text());
  });
  page.on("pageerror", (e) => out.console_errors.push("uncaught: " + e.message));
  page.on("response", (r) => {
    if (r.status() >= 400 && r.url().includes("/console/")) out.bad_responses.push(`${r.status()} ${r.url()}`);
  });
  page.setDefaultTimeout(STEP_MS);
}

// waitQuery waits for the query panel to finish and returns what it shows.
async function waitQuery(page) {
  await page.waitForFunction(() => ["done", "error"].includes(document.getElementById("query-panel").dataset.state));
  return page.evaluate(() => {
    const panel = document.getElementById("query-panel");
    const cols = [...document.querySelectorAll("#q-table thead th")].map((th) => th.textContent);
    const i = cols.indexOf("id");
    const ids = i < 0 ? [] : [...document.querySelectorAll("#q-table tbody tr")].map((tr) => tr.children[i].textContent);
    const pre = document.querySelector("#q-error pre");
    const cs = pre ? getComputedStyle(pre) : null;
    return {
      state: panel.dataset.state,
      snapshot_id: panel.dataset.snapshotId || "",
      columns: cols.slice(1),
      ids,
      status: document.getElementById("q-status").textContent,
      hash: location.hash,
      error_status: document.querySelector("#q-error")?.dataset.status || "",
      error_message: pre ? pre.textContent : "",
      font_family: cs ? cs.fontFamily : "",
      white_space: cs ? cs.whiteSpace : "",
      asof_kind: document.getElementById("q-asof-kind").value,
      asof_value: document.getElementById("q-asof").value,
    };
  });
}

async function main() {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "floe-console-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: cfg.chromium,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1440, height: 900 },
    deviceScaleFactor: 1,
    colorScheme: "light",
  });
  try {
    const page = context.pages()[0] || (await context.newPage());
    watch(page);

    // The pages of snapshots the console asks for, and with which token.
    out.snapshot_pages = [];
    page.on("request", (r) => {
      const u = new URL(r.url());
      if (/\/api\/v1\/tables\/[^/]+\/snapshots$/.test(u.pathname)) out.snapshot_pages.push(u.searchParams.get("page_token") || "");
    });

    step = "the token dialog (the API answers 401 without a token)";
    log(step);
    await page.goto(cfg.url + (cfg.page_size ? `?page_size=${cfg.page_size}` : ""));
    await page.locator("#token-dialog[open]").waitFor();
    out.token_dialog = true;
    await page.fill("#token-input", cfg.token);
    await page.click("#token-save");

    step = "the tables list";
    log(step);
    const row = page.locator(`#tables .tl-row[data-table="${cfg.table}"]`);
    await row.waitFor();
    out.tables = await page.$$eval("#tables .tl-row", (els) => els.map((e) => e.dataset.table));
    await row.click();

    step = "the snapshot timeline";
    log(step);
    await page
      .waitForFunction(
        (want) => {
          const got = [...document.querySelectorAll("#snap-inner .snap-row")].map((e) => e.dataset.snapshotId);
          return JSON.stringify(got) === JSON.stringify(want);
        },
        cfg.snapshot_ids,
      )
      .catch(() => log("the timeline never showed exactly the expected snapshots"));
    out.snapshot_ids = await page.$$eval("#snap-inner .snap-row", (els) => els.map((e) => e.dataset.snapshotId));
    out.snapshots_total = await page.$eval("#snapshots-panel", (e) => e.dataset.total);

    step = "the table's details";
    log(step);
    await page.locator("#files table").waitFor();
    await page.locator("#offsets table").waitFor();
    out.partitions = await page.$$eval("#files tbody tr", (trs) => trs.map((tr) => tr.children[0].textContent));
    out.offset_rows = await page.$$eval("#offsets tbody tr", (trs) => trs.length);
    out.schema_columns = await page.$$eval("#schema tbody tr", (trs) => trs.map((tr) => tr.querySelector(".col-name").textContent));

    step = "clicking a snapshot, then a filtered query as of it";
    log(step);
    await page.click(`#snap-inner .snap-row[data-snapshot-id="${cfg.query_snapshot}"]`);
    out.asof_kind = await page.inputValue("#q-asof-kind");
    out.asof_value = await page.inputValue("#q-asof");
    await page.fill("#q-where", cfg.where);
    await page.click("#q-run");
    const q = await waitQuery(page);
    out.query = { state: q.state, ids: q.ids, snapshot_id: q.snapshot_id, status: q.status, hash: q.hash };
    // Let the flash of the as-of input end before the picture.
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.waitForTimeout(1000);
    await page.screenshot({ path: cfg.screenshot, fullPage: true });
    out.screenshot = cfg.screenshot;

    step = "a deep link opened in a new tab";
    log(step);
    const tab = await context.newPage();
    watch(tab);
    await tab.goto(cfg.url + "#" + cfg.deep_link);
    const d = await waitQuery(tab);
    out.deep_link = { state: d.state, ids: d.ids, columns: d.columns, snapshot_id: d.snapshot_id, asof_kind: d.asof_kind, asof_value: d.asof_value };

    step = "a filter with a syntax error";
    log(step);
    await tab.fill("#q-where", cfg.bad_where);
    await tab.click("#q-run");
    await tab.waitForFunction(() => document.getElementById("query-panel").dataset.state === "error");
    const e = await waitQuery(tab);
    out.error = { state: e.state, status: e.error_status, message: e.error_message, font_family: e.font_family, white_space: e.white_space };
    if (process.env.FLOE_CONSOLE_SCREENSHOT_ERROR) await tab.screenshot({ path: process.env.FLOE_CONSOLE_SCREENSHOT_ERROR, fullPage: true });
    step = "done";
  } finally {
    await context.close().catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

try {
  await main();
  process.stdout.write(JSON.stringify(out) + "\n");
} catch (e) {
  out.failed_step = step;
  out.failure = String(e && e.stack ? e.stack : e);
  log(`failed at: ${step}: ${e}`);
  process.stdout.write(JSON.stringify(out) + "\n");
  process.exit(1);
}

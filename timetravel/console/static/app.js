// floe console: tables, a table's state, its snapshots and time-travel
// queries, over the node's HTTP/JSON API. No framework: each part of the
// page has a render function that rebuilds it from `state`.
//
// Deep links (the URL's hash):
//   #table=ns.t                       a table
//   &asof=snapshot:<id> | <id> | timestamp:<RFC 3339> | tag:<name> | branch:<name> | current
//   &where=<filter>&columns=a,b&limit=100
// A hash with any of asof, where, columns or limit runs that query.
// The snapshots are read in pages of 200 as the list scrolls
// (?page_size=N before the hash changes that).

import * as api from "./api.js";
import { h, svg, replace, int, num, compact, bytes, duration, ageOf, localTime, localTimeMs } from "./util.js";

const $ = (id) => document.getElementById(id);

const REFRESH_MS = 5000;
// Snapshots per ListSnapshots page; ?page_size=N on the console's URL
// overrides it (the browser test pages through a few snapshots with it).
const PAGE_SIZE = Math.min(1000, Math.max(1, Math.floor(Number(new URLSearchParams(location.search).get("page_size"))) || 200));
const ROW_H = 28; // px, a snapshot row (style.css .snap-row)
const SNAP_ROWS = 12; // rows the snapshot list shows at most before it scrolls
const RENDER_CAP = 2000; // query rows kept in the page
const SPARK_MAX = 240; // bars in the sparkline

const state = {
  tables: null, // ListTables' answer, sorted; null before the first
  tablesError: null,
  selected: "", // the selected table's name
  detail: null, // its GetTable answer
  detailError: null,
  detailKey: "", // the summary the detail was fetched for
  authNeeded: false,
};

// ---------------------------------------------------------------------------
// Refresh: the tables every 5 s; the selected table when its summary moved.

let refreshTimer = 0;
let refreshing = null;

function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      try {
        const r = await api.listTables();
        state.tables = (r.tables || []).slice().sort((a, b) => a.name.localeCompare(b.name));
        state.tablesError = null;
        state.authNeeded = false;
      } catch (e) {
        state.tablesError = e;
      }
      renderConn();
      renderTables();
      renderOverview();
      renderBanner();
      if (state.selected && state.tables) {
        const s = summaryOf(state.selected);
        if (s && summaryKey(s) !== state.detailKey) await loadDetail();
      }
    })().finally(() => (refreshing = null));
  }
  return refreshing;
}

function schedule() {
  clearTimeout(refreshTimer);
  if (!$("auto-refresh").checked) return;
  refreshTimer = setTimeout(async () => {
    if (!document.hidden) await refresh();
    schedule();
  }, REFRESH_MS);
}

const summaryOf = (name) => (state.tables || []).find((t) => t.name === name);
const summaryKey = (s) => [s.current_snapshot_id, s.snapshots, s.lag, s.total_records].join("|");

let detailGen = 0;

async function loadDetail() {
  const name = state.selected;
  const gen = ++detailGen;
  try {
    const d = await api.getTable(name);
    if (gen !== detailGen) return;
    state.detail = d;
    state.detailError = null;
    state.detailKey = summaryKey(d.summary || {});
    renderDetail();
    snaps.tableChanged(d);
  } catch (e) {
    if (gen !== detailGen) return;
    state.detailError = e;
    renderDetail();
  }
}

// ---------------------------------------------------------------------------
// The top bar, the banner and the token

function renderConn() {
  const c = $("conn");
  const e = state.tablesError;
  c.className = "conn " + (e ? "err" : state.tables ? "ok" : "");
  if (!e && !state.tables) c.textContent = "connecting…";
  else if (!e) c.textContent = `${location.host} · ${state.tables.length} table${state.tables.length === 1 ? "" : "s"}`;
  else if (e.httpStatus === 401) c.textContent = "token needed";
  else if (e.httpStatus === 403) c.textContent = "token refused";
  else c.textContent = e.httpStatus ? `error ${e.httpStatus}` : "unreachable";
  const b = $("token-button");
  b.textContent = api.getToken() ? "Token ✓" : "Token";
  b.classList.toggle("missing", state.authNeeded && !api.getToken());
}

function renderBanner() {
  const el = $("banner");
  const e = state.tablesError;
  if (!e || e.httpStatus === 401) {
    el.hidden = true;
    return;
  }
  el.hidden = false;
  el.className = "banner error";
  replace(el, h("span", { class: "title" }, e.status), e.message, e.httpStatus ? null : " — retrying every 5 s.");
}

function showTokenDialog(message, isError) {
  const d = $("token-dialog");
  const m = $("token-message");
  if (message) m.textContent = message;
  m.classList.toggle("error", !!isError);
  $("token-input").value = api.getToken();
  if (!d.open) d.showModal();
  $("token-input").focus();
}

function setupToken() {
  api.onUnauthorized((e) => {
    state.authNeeded = true;
    renderConn();
    if (api.getToken()) showTokenDialog(`The node refused the token: ${e.message}`, true);
    else showTokenDialog("This node's API needs a bearer token (node.api.tokens). A token with the read scope is enough for the console.", false);
  });
  $("token-button").addEventListener("click", () => showTokenDialog("The token this browser sends to the API. A token with the read scope is enough for the console.", false));
  $("token-show").addEventListener("change", (ev) => ($("token-input").type = ev.target.checked ? "text" : "password"));
  $("token-cancel").addEventListener("click", () => $("token-dialog").close());
  $("token-forget").addEventListener("click", () => {
    api.setToken("");
    $("token-input").value = "";
    $("token-dialog").close();
    reloadAll();
  });
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    api.setToken($("token-input").value.trim());
    $("token-dialog").close();
    reloadAll();
  });
}

// reloadAll fetches everything again (after the token changed).
function reloadAll() {
  state.detailKey = "";
  renderConn();
  refresh().then(() => {
    if (state.selected) {
      snaps.reset(state.selected);
      if (hashHasQuery(readHash())) runQuery({ updateUrl: false });
    }
  });
}

// ---------------------------------------------------------------------------
// Tables: the sidebar and the overview

function lagCell(lag) {
  const n = num(lag);
  if (n < 0) return h("span", { class: "faint", title: "the partitions' end offsets are not known" }, "?");
  return h("span", { class: n === 0 ? "good" : n > 10000 ? "bad" : "warn" }, compact(n));
}

function ageCell(ts) {
  if (!ts) return h("span", { class: "faint" }, "never");
  return h("span", { dataset: { age: ts }, title: localTimeMs(ts) }, duration(ageOf(ts)));
}

function kindBadge(t) {
  return t.kind === "dead_letter" ? h("span", { class: "badge red" }, "dead letter") : h("span", { class: "badge" }, t.kind || "data");
}

function renderTables() {
  const list = $("tables");
  const filter = $("tables-filter").value.trim().toLowerCase();
  if (!state.tables) {
    replace(list, h("div", { class: "empty-note" }, state.tablesError ? errorNote(state.tablesError) : "Loading…"));
    $("tables-count").hidden = true;
    return;
  }
  $("tables-count").hidden = false;
  const shown = state.tables.filter((t) => !filter || t.name.toLowerCase().includes(filter) || (t.pipeline || "").toLowerCase().includes(filter));
  $("tables-count").textContent = String(state.tables.length);
  const rows = shown.map((t) =>
    h(
      "div",
      {
        class: "tl-row" + (t.name === state.selected ? " selected" : ""),
        role: "option",
        "aria-selected": t.name === state.selected ? "true" : "false",
        dataset: { table: t.name },
        title: `${t.name}: ${int(t.total_records)} records in ${int(t.snapshots)} snapshots`,
      },
      h(
        "div",
        { class: "ellipsis" },
        h("div", { class: "tl-name ellipsis mono" }, t.name),
        h("div", { class: "tl-sub" }, h("span", { class: "ellipsis" }, t.pipeline), kindBadge(t), t.keyed ? h("span", { class: "badge violet" }, "keyed") : null),
      ),
      h("span", { class: "num" }, compact(t.total_records)),
      h("span", { class: "num" }, lagCell(t.lag)),
      h("span", { class: "num" }, ageCell(t.last_commit)),
    ),
  );
  replace(
    list,
    h("div", { class: "tl-head" }, h("span", {}, "Table"), h("span", { class: "num" }, "Records"), h("span", { class: "num" }, "Lag"), h("span", { class: "num" }, "Age")),
    rows.length ? rows : h("div", { class: "empty-note" }, state.tables.length ? "No table matches." : "This node writes no table yet."),
  );
}

// errorNote says why the tables are not shown: a token to enter, or the
// API's error.
function errorNote(e) {
  if (e.httpStatus === 401) {
    return [
      api.getToken() ? "The node refused the token. " : "This node's API needs a token. ",
      h("button", { type: "button", class: "btn-link", onclick: () => showTokenDialog("", false) }, "Enter a token"),
    ];
  }
  return `${e.status}: ${e.message}`;
}

function renderOverview() {
  const body = $("overview-body");
  if (!state.tables) {
    replace(body, h("div", { class: "center-note" }, state.tablesError ? errorNote(state.tablesError) : "Loading…"));
    return;
  }
  $("overview-note").textContent = "select a table for its schema, files, snapshots and queries";
  if (!state.tables.length) {
    replace(body, h("div", { class: "center-note" }, "This node writes no table yet: its pipelines create their tables at their first commit."));
    return;
  }
  const head = ["Table", "Pipeline", "Kind", "Keyed", "Records", "Snapshots", "Lag", "Last commit", "Current snapshot"];
  const numeric = new Set(["Records", "Snapshots", "Lag", "Last commit"]);
  replace(
    body,
    h(
      "table",
      { class: "data" },
      h("thead", {}, h("tr", {}, head.map((c) => h("th", { class: numeric.has(c) ? "num" : null }, c)))),
      h(
        "tbody",
        {},
        state.tables.map((t) =>
          h(
            "tr",
            { class: "clickable", dataset: { table: t.name }, onclick: () => selectTable(t.name) },
            h("td", { class: "mono" }, h("b", {}, t.name)),
            h("td", {}, t.pipeline),
            h("td", {}, kindBadge(t)),
            h("td", {}, t.keyed ? h("span", { class: "badge violet" }, "keyed") : h("span", { class: "faint" }, "no")),
            h("td", { class: "num" }, int(t.total_records)),
            h("td", { class: "num" }, int(t.snapshots)),
            h("td", { class: "num" }, lagCell(t.lag)),
            h("td", { class: "num" }, ageCell(t.last_commit)),
            h("td", { class: "mono" }, num(t.current_snapshot_id) ? t.current_snapshot_id : h("span", { class: "faint" }, "none")),
          ),
        ),
      ),
    ),
  );
}

// ---------------------------------------------------------------------------
// Selecting a table

function selectTable(name, { fromHash = false } = {}) {
  if (!name || name === state.selected) return;
  state.selected = name;
  state.detail = null;
  state.detailError = null;
  state.detailKey = "";
  $("overview").hidden = true;
  $("table-view").hidden = false;
  resetQuery();
  if (!fromHash) writeHash({ table: name }, true);
  renderCrumbs();
  renderTables();
  renderDetail();
  snaps.reset(name);
  loadDetail();
}

function showOverview() {
  state.selected = "";
  state.detail = null;
  ++detailGen;
  snaps.clear();
  queryCtl?.abort();
  $("overview").hidden = false;
  $("table-view").hidden = true;
  renderCrumbs();
  renderTables();
}

function renderCrumbs() {
  const c = $("crumbs");
  if (!state.selected) replace(c, h("span", { class: "sep" }, "/"), h("span", {}, "Tables"));
  else replace(c, h("span", { class: "sep" }, "/"), h("a", { href: "#" }, "Tables"), h("span", { class: "sep" }, "/"), h("span", { class: "here" }, state.selected));
  document.title = state.selected ? `${state.selected} · floe console` : "floe console";
}

// ---------------------------------------------------------------------------
// The table view: header, stats, schema, layout, offsets, files

function stat(label, value, sub, opts = {}) {
  return h("div", { class: "stat", title: opts.title }, h("div", { class: "label" }, label), h("div", { class: "value" + (opts.mono ? " mono" : "") + (opts.cls ? " " + opts.cls : "") }, value), h("div", { class: "sub" }, sub || "\u00a0"));
}

function renderDetail() {
  const d = state.detail;
  const s = d ? d.summary : summaryOf(state.selected) || { name: state.selected };
  $("table-name").textContent = state.selected;
  replace(
    $("table-badges"),
    s.pipeline ? h("span", { class: "badge blue", title: "pipeline" }, "pipeline " + s.pipeline) : null,
    s.kind ? kindBadge(s) : null,
    s.keyed ? h("span", { class: "badge violet" }, "keyed") : null,
    d ? h("span", { class: "badge" }, "format v" + d.format_version) : null,
  );
  $("table-location").textContent = d ? d.location : "";
  $("table-location").title = d ? d.location : "";

  if (state.detailError) {
    const e = state.detailError;
    const hint = /does not exist/.test(e.message) ? "The table does not exist yet: its pipeline creates it at its first commit. " : "";
    replace($("stats"), h("div", { class: "stat" }, h("div", { class: "label bad" }, e.status), h("div", { class: "error-text" }, hint, h("span", { class: "mono" }, e.message))));
    $("stats").classList.add("error");
  } else $("stats").classList.remove("error");
  if (!d) {
    for (const id of ["schema-note", "offsets-note", "files-note"]) $(id).textContent = "";
    if (!state.detailError) replace($("stats"), h("div", { class: "stat" }, h("div", { class: "label" }, "Loading…"), h("div", { class: "value" }, h("span", { class: "spinner" }))));
    for (const id of ["schema", "layout", "offsets", "files"]) replace($(id), h("div", { class: "center-note" }, state.detailError ? "–" : "Loading…"));
    return;
  }
  const f = d.files || {};
  const cur = d.current_snapshot;
  const lag = num(s.lag);
  replace(
    $("stats"),
    stat("Records", int(s.total_records), cur ? (num(cur.added_records) ? `+${int(cur.added_records)} last commit` : "none added last commit") : "no snapshot yet"),
    stat("Snapshots", int(s.snapshots), (d.refs || []).length ? `${d.refs.length} ref${d.refs.length === 1 ? "" : "s"}` : "no refs"),
    stat("Lag", lag < 0 ? "?" : int(lag), lag < 0 ? "end offsets unknown" : "behind Kafka", { cls: lag < 0 ? "faint" : lag === 0 ? "good" : "warn" }),
    stat("Freshness", cur ? h("span", { dataset: { age: cur.timestamp } }, duration(ageOf(cur.timestamp))) : "–", cur ? "at " + localTime(cur.timestamp).slice(11) : "no commit yet", { title: cur ? `time since the last commit (${localTimeMs(cur.timestamp)})` : "" }),
    stat("Current snapshot", cur ? cur.snapshot_id : "none", cur ? `${cur.operation || "?"} · seq ${cur.sequence_number}` : "", { mono: true }),
    stat("Data files", int(f.data_files), bytes(f.data_bytes)),
    stat("Delete files", int(f.delete_files), bytes(f.delete_bytes), { cls: num(f.delete_files) ? "warn" : "" }),
    stat("Small files", int(f.small_files), num(f.target_file_size) ? `under ${bytes(num(f.target_file_size) / 2)}` : "no target", {
      cls: num(f.small_files) ? "warn" : "",
      title: num(f.target_file_size) ? `data files below half the target file size (${bytes(f.target_file_size)})` : "",
    }),
  );
  renderSchema(d);
  renderLayout(d);
  renderOffsets(d);
  renderFiles(d);
  renderRefsDatalist();
}

function renderSchema(d) {
  const keys = new Set(d.identifier_fields || []);
  const parts = new Set((d.partition_spec || []).map((p) => (p.match(/\(([^)]*)\)\s*$/) || [])[1]).filter(Boolean));
  $("schema-note").textContent = `${(d.columns || []).length} columns`;
  replace(
    $("schema"),
    h(
      "table",
      { class: "data" },
      h("thead", {}, h("tr", {}, h("th", { class: "num" }, "#"), h("th", {}, "Column"), h("th", {}, "Type"), h("th", {}, "Required"))),
      h(
        "tbody",
        {},
        (d.columns || []).map((c) =>
          h(
            "tr",
            { title: c.doc || null },
            h("td", { class: "num faint" }, c.id),
            h(
              "td",
              { class: "mono" },
              h("span", { class: "nowrap" }, h("b", { class: "col-name" }, c.name), keys.has(c.name) ? h("span", { class: "badge violet" }, "key") : null, parts.has(c.name) ? h("span", { class: "badge blue" }, "partition") : null),
            ),
            h("td", { class: "mono muted type", title: c.type }, c.type),
            h("td", {}, c.required ? h("span", { class: "good" }, "required") : h("span", { class: "faint" }, "optional")),
          ),
        ),
      ),
    ),
  );
}

function refTypeBadge(type) {
  return h("span", { class: "badge " + (type === "branch" ? "violet" : "green") }, type);
}

function renderLayout(d) {
  const props = Object.entries(d.properties || {}).sort(([a], [b]) => a.localeCompare(b));
  const refs = d.refs || [];
  replace(
    $("layout"),
    h(
      "dl",
      { class: "kv" },
      h("dt", {}, "Partition spec"),
      h("dd", { class: "badges" }, (d.partition_spec || []).length ? d.partition_spec.map((p) => h("span", { class: "badge blue mono" }, p)) : h("span", { class: "faint" }, "unpartitioned")),
      h("dt", {}, "Key"),
      h("dd", { class: "badges" }, (d.identifier_fields || []).length ? d.identifier_fields.map((k) => h("span", { class: "badge violet mono" }, k)) : h("span", { class: "faint" }, "none: every record is appended")),
      h("dt", {}, "Refs"),
      h(
        "dd",
        {},
        refs.length
          ? h(
              "div",
              { class: "refs-list" },
              refs.map((r) =>
                h(
                  "div",
                  { class: "badges" },
                  refTypeBadge(r.type),
                  h("button", { type: "button", class: "btn-link mono", title: `Query as of ${r.type} ${r.name}`, onclick: () => setAsOf(r.type, r.name) }, r.name),
                  h("span", { class: "faint" }, "→"),
                  h("button", { type: "button", class: "btn-link mono muted", title: "Query as of this snapshot", onclick: () => setAsOf("snapshot", r.snapshot_id) }, r.snapshot_id),
                  num(r.max_ref_age_ms) ? h("span", { class: "faint small" }, "expires after " + duration(num(r.max_ref_age_ms) / 1000)) : null,
                ),
              ),
            )
          : h("span", { class: "faint" }, "none"),
      ),
      h("dt", {}, "Format"),
      h("dd", {}, `Iceberg v${d.format_version}`),
      h("dt", {}, "Location"),
      h("dd", { class: "mono small ellipsis", title: d.location }, d.location),
      h("dt", {}, "Properties"),
      h("dd", {}, props.length ? h("details", {}, h("summary", {}, `${props.length} properties`), h("div", { class: "props" }, props.map(([k, v]) => h("div", { title: `${k}=${v}` }, `${k} = ${v}`)))) : h("span", { class: "faint" }, "none")),
    ),
  );
}

function renderOffsets(d) {
  const offs = d.offsets || [];
  let total = 0;
  let known = true;
  for (const o of offs) {
    if (num(o.lag) < 0) known = false;
    else total += num(o.lag);
  }
  $("offsets-note").textContent = offs.length ? `${offs.length} partition${offs.length === 1 ? "" : "s"} · lag ${known ? int(total) : "unknown"}` : "";
  if (!offs.length) {
    replace($("offsets"), h("div", { class: "center-note" }, "No offsets committed yet."));
    return;
  }
  const maxLag = Math.max(1, ...offs.map((o) => num(o.lag)));
  replace(
    $("offsets"),
    h(
      "table",
      { class: "data" },
      h("thead", {}, h("tr", {}, h("th", {}, "Topic"), h("th", { class: "num" }, "Partition"), h("th", { class: "num" }, "Offset"), h("th", { class: "num" }, "End"), h("th", { class: "num" }, "Lag"), h("th", {}, ""))),
      h(
        "tbody",
        {},
        offs.map((o) => {
          const lag = num(o.lag);
          return h(
            "tr",
            {},
            h("td", { class: "mono" }, o.topic),
            h("td", { class: "num" }, o.partition),
            h("td", { class: "num" }, int(o.offset)),
            h("td", { class: "num" }, num(o.end) < 0 ? h("span", { class: "faint" }, "?") : int(o.end)),
            h("td", { class: "num" }, lag < 0 ? h("span", { class: "faint" }, "?") : h("span", { class: lag ? "warn" : "good" }, int(lag))),
            h("td", {}, bar(lag < 0 ? 0 : lag / maxLag, lag ? "amber" : "green")),
          );
        }),
      ),
    ),
  );
}

function bar(frac, cls = "") {
  const b = h("span", { class: "bar " + cls }, h("i", {}));
  b.firstChild.style.width = Math.max(0, Math.min(1, frac)) * 100 + "%";
  return b;
}

function renderFiles(d) {
  const f = d.files;
  if (!f) {
    $("files-note").textContent = "";
    replace($("files"), h("div", { class: "center-note" }, "No snapshot yet: no files."));
    return;
  }
  const target = num(f.target_file_size);
  $("files-note").textContent = `${int(f.data_files)} data · ${int(f.delete_files)} delete · target ${target ? bytes(target) : "none"}`;
  const parts = f.partitions || [];
  const avgBar = (bytesN, files) => {
    if (!num(files)) return h("span", { class: "faint" }, "–");
    const avg = num(bytesN) / num(files);
    const frac = target ? avg / target : 0;
    return h("span", { class: "nowrap", title: target ? `average data file ${bytes(avg)}: ${Math.round(frac * 100)}% of the ${bytes(target)} target` : "" }, bar(frac, frac < 0.5 ? "amber" : "green"), h("span", { class: "muted small" }, bytes(avg)));
  };
  const smallCell = (small, files) => {
    const n = num(small);
    if (!n) return h("span", { class: "faint" }, "0");
    return h("span", { class: "warn", title: `${n} of ${int(files)} data files are below half the target size` }, int(n));
  };
  replace(
    $("files"),
    h(
      "table",
      { class: "data" },
      h(
        "thead",
        {},
        h("tr", {}, h("th", {}, "Partition"), h("th", { class: "num" }, "Data"), h("th", { class: "num" }, "Deletes"), h("th", { class: "num" }, "Size"), h("th", { class: "num" }, "Records"), h("th", { class: "num" }, "Small"), h("th", {}, "Avg file")),
      ),
      h(
        "tbody",
        {},
        parts.map((p) =>
          h(
            "tr",
            {},
            h("td", { class: "mono part", title: p.partition || null }, p.partition || h("span", { class: "faint" }, "(unpartitioned)")),
            h("td", { class: "num" }, int(p.data_files)),
            h("td", { class: "num" }, num(p.delete_files) ? h("span", { class: "warn" }, int(p.delete_files)) : h("span", { class: "faint" }, "0")),
            h("td", { class: "num" }, bytes(p.data_bytes)),
            h("td", { class: "num" }, int(p.records)),
            h("td", { class: "num" }, smallCell(p.small_files, p.data_files)),
            h("td", {}, avgBar(p.data_bytes, p.data_files)),
          ),
        ),
      ),
      parts.length > 1
        ? h(
            "tfoot",
            {},
            h(
              "tr",
              {},
              h("td", {}, "All partitions"),
              h("td", { class: "num" }, int(f.data_files)),
              h("td", { class: "num" }, int(f.delete_files)),
              h("td", { class: "num" }, bytes(num(f.data_bytes) + num(f.delete_bytes))),
              h("td", { class: "num" }, int(f.records)),
              h("td", { class: "num" }, smallCell(f.small_files, f.data_files)),
              h("td", {}, avgBar(f.data_bytes, f.data_files)),
            ),
          )
        : null,
    ),
  );
}

function renderRefsDatalist() {
  const kind = $("q-asof-kind").value;
  const refs = (state.detail && state.detail.refs) || [];
  replace(
    $("q-refs"),
    refs.filter((r) => (kind === "tag" || kind === "branch" ? r.type === kind : false)).map((r) => h("option", { value: r.name }, `${r.type} → ${r.snapshot_id}`)),
  );
}

// ---------------------------------------------------------------------------
// Snapshots: paged from the server (newest first), a virtual list

const snaps = {
  table: "",
  items: [],
  ids: new Set(),
  total: 0,
  next: "",
  done: false,
  loading: false,
  error: null,
  gen: 0,
  selectedId: "",

  clear() {
    this.gen++;
    this.table = "";
    this.items = [];
    this.ids = new Set();
    this.total = 0;
    this.next = "";
    this.done = false;
    this.loading = false;
    this.error = null;
    this.selectedId = "";
  },

  reset(table) {
    this.clear();
    this.table = table;
    $("snap-viewport").scrollTop = 0;
    this.render();
    this.loadPage();
  },

  add(list, atFront) {
    const fresh = list.filter((s) => !this.ids.has(s.snapshot_id));
    for (const s of fresh) this.ids.add(s.snapshot_id);
    this.items = atFront ? fresh.concat(this.items) : this.items.concat(fresh);
    return fresh.length;
  },

  async loadPage() {
    if (this.loading || this.done || !this.table) return;
    const gen = this.gen;
    this.loading = true;
    this.error = null;
    this.render();
    try {
      const r = await api.listSnapshots(this.table, PAGE_SIZE, this.next);
      if (gen !== this.gen) return;
      this.add(r.snapshots || [], false);
      this.total = num(r.total);
      this.next = r.next_page_token || "";
      this.done = !this.next;
    } catch (e) {
      if (gen !== this.gen) return;
      if (e.httpStatus === 400 && /page_token/.test(e.message)) {
        // The page's anchor expired: the list starts again.
        this.loading = false;
        this.reset(this.table);
        return;
      }
      this.error = e;
    }
    this.loading = false;
    this.render();
    renderSpark();
  },

  // tableChanged merges the snapshots committed since the list was
  // loaded (GetTable answered a new summary).
  async tableChanged(d) {
    const cur = d.summary && d.summary.current_snapshot_id;
    if (!this.items.length) {
      // An empty list, or one that failed (the table did not exist yet).
      if (!this.loading && (this.error || num(cur))) this.reset(this.table);
      return;
    }
    if (this.loading || !num(cur) || (this.ids.has(cur) && this.items.find((s) => s.current)?.snapshot_id === cur)) {
      this.total = num(d.summary.snapshots) || this.total;
      this.render();
      return;
    }
    const gen = this.gen;
    let r;
    try {
      r = await api.listSnapshots(this.table, PAGE_SIZE, "");
    } catch {
      return;
    }
    if (gen !== this.gen || this.loading) return;
    const page = r.snapshots || [];
    const byId = new Map(page.map((s) => [s.snapshot_id, s]));
    // Only appends keep the loaded list: every loaded snapshot on the new
    // first page has the ancestry it had, and the current one is there.
    const changed = this.items.some((s) => byId.has(s.snapshot_id) && byId.get(s.snapshot_id).ancestor !== s.ancestor);
    const anchor = this.items[0].snapshot_id;
    if (changed || !byId.has(cur) || !byId.has(anchor)) {
      const keep = $("snap-viewport").scrollTop;
      this.reset(this.table);
      $("snap-viewport").scrollTop = keep;
      return;
    }
    const before = page.findIndex((s) => s.snapshot_id === anchor);
    const n = this.add(page.slice(0, before), true);
    this.items = this.items.map((s) => byId.get(s.snapshot_id) || { ...s, current: false });
    this.total = num(r.total);
    if (n && $("snap-viewport").scrollTop > ROW_H) $("snap-viewport").scrollTop += n * ROW_H; // keep the rows in view still
    this.render();
    renderSpark();
  },

  select(id, { scroll = false } = {}) {
    this.selectedId = id;
    if (scroll) {
      const i = this.items.findIndex((s) => s.snapshot_id === id);
      const vp = $("snap-viewport");
      if (i >= 0 && (i * ROW_H < vp.scrollTop || (i + 1) * ROW_H > vp.scrollTop + vp.clientHeight)) vp.scrollTop = Math.max(0, i * ROW_H - vp.clientHeight / 2);
    }
    this.render();
    renderSpark();
  },

  renderQueued: false,
  queueRender() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.render();
    });
  },

  render() {
    const vp = $("snap-viewport");
    const inner = $("snap-inner");
    const n = this.items.length;
    const tail = !this.done || this.loading || this.error || n === 0 ? 1 : 0;
    inner.style.height = (n + tail) * ROW_H + "px";
    // The list is as tall as its rows, up to 12 of them.
    vp.style.height = Math.min(SNAP_ROWS, Math.max(3, n + tail)) * ROW_H + "px";
    const top = vp.scrollTop;
    const height = vp.clientHeight || SNAP_ROWS * ROW_H;
    const first = Math.max(0, Math.floor(top / ROW_H) - 6);
    const last = Math.min(n + tail, Math.ceil((top + height) / ROW_H) + 6);
    const frag = document.createDocumentFragment();
    for (let i = first; i < last; i++) frag.append(i < n ? this.row(this.items[i], i, n) : this.tailRow(i));
    inner.replaceChildren(frag);
    const panel = $("snapshots-panel");
    panel.dataset.loaded = String(n);
    panel.dataset.total = String(this.total);
    panel.dataset.state = this.loading ? "loading" : this.error ? "error" : this.done ? "done" : "partial";
    $("snapshots-note").textContent = !this.table ? "" : n || this.done ? `${int(this.total)} total · ${int(n)} loaded${this.done ? "" : ` (pages of ${PAGE_SIZE})`}` : "";
    // The last row in view asks for the next page.
    if (tail && last > n && !this.loading && !this.error && !this.done) this.loadPage();
  },

  row(s, i, n) {
    const kind = s.current ? "current" : s.ancestor ? "ancestor" : "other";
    const cls = ["snap-row", kind];
    if (i === 0) cls.push("first");
    if (i === n - 1 && this.done) cls.push("last");
    if (s.snapshot_id === this.selectedId) cls.push("selected");
    const added = num(s.added_records);
    const deleted = num(s.deleted_records);
    const refTypes = new Map(((state.detail && state.detail.refs) || []).map((r) => [r.name, r.type]));
    const offs = s.offsets || [];
    const topics = new Set(offs.map((o) => o.topic));
    const offText = offs.map((o) => (topics.size > 1 ? `${o.topic}/` : "") + `${o.partition}:${o.offset}`).join(" ");
    const offTitle = offs.map((o) => `${o.topic} partition ${o.partition}: offset ${o.offset}`).join("\n");
    const row = h(
      "div",
      {
        class: cls.join(" "),
        role: "row",
        dataset: { snapshotId: s.snapshot_id, index: String(i) },
        title: `Snapshot ${s.snapshot_id}${s.current ? " (current)" : s.ancestor ? "" : " (not in the current history)"}\nparent ${num(s.parent_id) ? s.parent_id : "none"} · sequence ${s.sequence_number}\nClick to query as of it; double-click to run the query.`,
      },
      h("span", { class: "rail" }, h("i", { class: "mark " + kind })),
      h("span", { class: "id" }, s.snapshot_id),
      h("span", { class: "when", title: localTimeMs(s.timestamp) + "  (" + s.timestamp + ")" }, localTime(s.timestamp).slice(5), h("span", { class: "rel", dataset: { age: s.timestamp, suffix: " ago" } }, duration(ageOf(s.timestamp)) + " ago")),
      h("span", {}, opBadge(s.operation)),
      h("span", { class: "num " + (added ? "plus" : "zero") }, added ? "+" + int(s.added_records) : "0"),
      h("span", { class: "num " + (deleted ? "minus" : "zero") }, deleted ? "−" + int(s.deleted_records) : "0"),
      h("span", { class: "num" }, int(s.total_records)),
      h("span", { class: "num c-files", title: `${int(s.added_files)} data files and ${int(s.added_delete_files)} delete files added` }, "+" + int(s.added_files) + (num(s.added_delete_files) ? `/${int(s.added_delete_files)}d` : "")),
      h(
        "span",
        { class: "refs" },
        (s.refs || []).map((name) => {
          const type = refTypes.get(name) || (name === "main" ? "branch" : "tag");
          return h("button", { type: "button", class: "badge " + (type === "branch" ? "violet" : "green"), title: `${type} ${name}: click to query as of it`, dataset: { ref: name, refType: type } }, name);
        }),
      ),
      h("span", { class: "offs c-offs", title: offTitle }, offText),
    );
    row.style.top = i * ROW_H + "px";
    return row;
  },

  tailRow(i) {
    let content;
    if (this.error) content = [h("span", { class: "bad" }, `${this.error.status}: ${this.error.message}`), h("button", { type: "button", class: "btn-link", dataset: { action: "retry" } }, "Retry")];
    else if (this.loading) content = [h("span", { class: "spinner" }), `Loading ${this.items.length ? "more " : ""}snapshots…`];
    else if (!this.items.length && this.done) content = ["No snapshots yet: the table has no commit."];
    else content = [`${int(this.items.length)} of ${int(this.total)} loaded`, h("button", { type: "button", class: "btn-link", dataset: { action: "more" } }, `Load ${PAGE_SIZE} more`)];
    const row = h("div", { class: "more-row" }, content);
    row.style.top = i * ROW_H + "px";
    return row;
  },
};

function opBadge(op) {
  const cls = { append: "green", overwrite: "amber", delete: "red", replace: "blue" }[op] || "";
  return h("span", { class: "badge " + cls }, op || "?");
}

function setupSnapshots() {
  const vp = $("snap-viewport");
  vp.addEventListener("scroll", () => snaps.queueRender(), { passive: true });
  new ResizeObserver(() => snaps.queueRender()).observe(vp);
  $("snap-inner").addEventListener("click", (ev) => {
    const ref = ev.target.closest("[data-ref]");
    if (ref) {
      ev.stopPropagation();
      setAsOf(ref.dataset.refType, ref.dataset.ref);
      return;
    }
    const action = ev.target.closest("[data-action]");
    if (action) {
      if (action.dataset.action === "retry") snaps.error = null;
      snaps.loadPage();
      return;
    }
    const row = ev.target.closest(".snap-row[data-snapshot-id]");
    if (row) {
      snaps.select(row.dataset.snapshotId);
      setAsOf("snapshot", row.dataset.snapshotId);
    }
  });
  $("snap-inner").addEventListener("dblclick", (ev) => {
    const row = ev.target.closest(".snap-row[data-snapshot-id]");
    if (row && !ev.target.closest("[data-ref]")) runQuery();
  });
  vp.addEventListener("keydown", (ev) => {
    if (ev.key !== "ArrowDown" && ev.key !== "ArrowUp") return;
    ev.preventDefault();
    let i = snaps.items.findIndex((s) => s.snapshot_id === snaps.selectedId);
    i = Math.max(0, Math.min(snaps.items.length - 1, i + (ev.key === "ArrowDown" ? 1 : -1)));
    const s = snaps.items[i];
    if (!s) return;
    snaps.select(s.snapshot_id, { scroll: true });
    setAsOf("snapshot", s.snapshot_id, { flash: false });
  });
}

// renderSpark draws total records per loaded snapshot (oldest left) with
// the records each added as bars.
function renderSpark() {
  const el = $("spark");
  const items = snaps.items;
  const W = 1000;
  const H = 38;
  if (items.length < 2) {
    replace(el, svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none" }));
    return;
  }
  // Oldest first, at most SPARK_MAX buckets (the last snapshot of each).
  const chron = items.slice().reverse();
  const step = Math.ceil(chron.length / SPARK_MAX);
  const pts = [];
  for (let i = 0; i < chron.length; i += step) {
    const group = chron.slice(i, i + step);
    const lastOf = group[group.length - 1];
    const net = group.reduce((a, s) => a + num(s.added_records) - num(s.deleted_records), 0);
    pts.push({ s: lastOf, total: num(lastOf.total_records), net, n: group.length });
  }
  // The line spans the loaded snapshots' range of totals; the bars are
  // each point's net change (red: fewer rows).
  const minT = Math.min(...pts.map((p) => p.total));
  const maxT = Math.max(...pts.map((p) => p.total));
  const maxA = Math.max(1, ...pts.map((p) => Math.abs(p.net)));
  const dx = W / pts.length;
  const y = (v) => (maxT === minT ? H / 2 : H - 3 - ((v - minT) / (maxT - minT)) * (H - 6));
  let line = "";
  pts.forEach((p, i) => (line += `${i ? "L" : "M"}${(i + 0.5) * dx},${y(p.total)}`));
  const area = `${line}L${(pts.length - 0.5) * dx},${H}L${0.5 * dx},${H}Z`;
  const kids = [svg("path", { class: "area", d: area }), svg("path", { class: "line", d: line, "vector-effect": "non-scaling-stroke" })];
  pts.forEach((p, i) => {
    const bh = (Math.abs(p.net) / maxA) * (H * 0.45);
    if (bh > 0) kids.push(svg("rect", { class: p.net < 0 ? "removed" : "added", x: i * dx + dx * 0.15, y: H - bh, width: dx * 0.7, height: bh }));
  });
  const sel = pts.findIndex((p) => p.s.snapshot_id === snaps.selectedId);
  if (sel >= 0) kids.push(svg("line", { class: "sel", x1: (sel + 0.5) * dx, x2: (sel + 0.5) * dx, y1: 0, y2: H, "vector-effect": "non-scaling-stroke" }));
  pts.forEach((p, i) => {
    const t = svg("title", {}, `${p.s.snapshot_id}\n${localTime(p.s.timestamp)}\n${int(p.total)} records (${p.net < 0 ? "−" : "+"}${int(Math.abs(p.net))}${p.n > 1 ? ` over ${p.n} snapshots` : ""})`);
    kids.push(svg("rect", { class: "hit", x: i * dx, y: 0, width: dx, height: H, "data-snapshot-id": p.s.snapshot_id }, t));
  });
  replace(el, svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none" }, ...kids));
}

function setupSpark() {
  $("spark").addEventListener("click", (ev) => {
    const r = ev.target.closest("[data-snapshot-id]");
    if (!r) return;
    const id = r.getAttribute("data-snapshot-id");
    snaps.select(id, { scroll: true });
    setAsOf("snapshot", id);
  });
}

// ---------------------------------------------------------------------------
// Query

let queryCtl = null;

function setAsOf(kind, value, { flash = true } = {}) {
  $("q-asof-kind").value = kind;
  asofKindChanged();
  $("q-asof").value = kind === "current" ? "" : value;
  if (flash) {
    const el = $("q-asof");
    el.classList.remove("flash");
    void el.offsetWidth;
    el.classList.add("flash");
  }
}

function asofKindChanged() {
  const kind = $("q-asof-kind").value;
  const input = $("q-asof");
  input.disabled = kind === "current";
  input.placeholder = {
    current: "the current snapshot",
    snapshot: "snapshot id, or click a snapshot",
    timestamp: "2026-01-02T15:04:05Z (or local time)",
    tag: "tag name",
    branch: "branch name (main)",
  }[kind];
  if (kind === "current") input.value = "";
  renderRefsDatalist();
}

// asofParam turns the form's as-of into the query parameter.
function asofParam() {
  const kind = $("q-asof-kind").value;
  const v = $("q-asof").value.trim();
  if (kind === "current" || !v) return [null, {}];
  switch (kind) {
    case "snapshot":
      return ["snapshot", { snapshot_id: v }];
    case "timestamp":
      return ["timestamp", { timestamp: normalizeTime(v) }];
    default:
      return [kind, { [kind]: v }];
  }
}

// normalizeTime passes RFC 3339 with a zone through; a time without a
// zone is local time, sent in UTC.
function normalizeTime(v) {
  if (/([zZ]|[+-]\d\d:?\d\d)$/.test(v)) return v;
  const d = new Date(v.replace(" ", "T"));
  return isNaN(d) ? v : d.toISOString();
}

function asofForHash() {
  const kind = $("q-asof-kind").value;
  const v = $("q-asof").value.trim();
  return kind === "current" || !v ? "" : `${kind}:${v}`;
}

function queryForm() {
  return {
    where: $("q-where").value.trim(),
    columns: $("q-columns").value.split(",").map((c) => c.trim()).filter(Boolean).join(","),
    limit: $("q-limit").value.trim(),
  };
}

function resetQuery() {
  queryCtl?.abort();
  queryCtl = null;
  replace($("q-status"));
  replace($("q-results"));
  delete $("query-panel").dataset.state;
  $("q-run").hidden = false;
  $("q-cancel").hidden = true;
}

function statusItem(label, value) {
  return h("span", {}, label, " ", h("b", {}, value));
}

async function runQuery({ updateUrl = true } = {}) {
  if (!state.selected) return;
  queryCtl?.abort();
  const ctl = new AbortController();
  queryCtl = ctl;
  const table = state.selected;
  const form = queryForm();
  const [kind, asof] = asofParam();
  if ($("q-asof-kind").value !== "current" && !$("q-asof").value.trim()) {
    showQueryError({ status: "INVALID_ARGUMENT", message: `enter the ${$("q-asof-kind").selectedOptions[0].text} to read the table as of, or choose "current"` }, 0);
    queryCtl = null;
    return;
  }
  if (updateUrl) writeHash({ table, asof: asofForHash(), where: form.where, columns: form.columns, limit: form.limit }, false);
  const panel = $("query-panel");
  panel.dataset.state = "running";
  $("q-run").hidden = true;
  $("q-cancel").hidden = false;
  const t0 = performance.now();
  let count = 0;
  let shown = 0;
  let tbody = null;
  let cols = null;
  const status = $("q-status");
  const results = $("q-results");
  replace(results);
  results.dataset.rows = "0";
  const running = () => replace(status, h("span", { class: "spinner" }), h("span", {}, "Running…"), statusItem("rows", int(count)));
  running();
  const onRows = (rows) => {
    if (ctl !== queryCtl) return;
    if (!cols) {
      cols = Object.keys(rows[0]);
      tbody = h("tbody");
      const numeric = (c) => rows.some((r) => typeof r[c] === "number" || typeof r[c] === "bigint");
      replace(results, h("table", { class: "data", id: "q-table" }, h("thead", {}, h("tr", {}, h("th", { class: "rn" }, "#"), cols.map((c) => h("th", { class: numeric(c) ? "num" : null }, c)))), tbody));
    }
    const frag = document.createDocumentFragment();
    for (const r of rows) {
      count++;
      if (shown >= RENDER_CAP) continue;
      shown++;
      frag.append(h("tr", {}, h("td", { class: "rn" }, count), cols.map((c) => cell(r[c]))));
    }
    tbody.append(frag);
    results.dataset.rows = String(shown);
    running();
  };
  try {
    const params = { where: form.where, columns: form.columns, limit: form.limit, ...asof };
    const end = await api.query(table, params, onRows, ctl.signal);
    if (ctl !== queryCtl) return;
    const secs = (performance.now() - t0) / 1000;
    if (end.error) showQueryError(end.error, count);
    else showQueryStats(end.stats, count, shown, secs, kind);
    if (!count && !end.error) replace(results, h("div", { class: "q-note" }, "No rows match."));
  } catch (e) {
    if (ctl !== queryCtl) return;
    if (e.name === "AbortError") {
      panel.dataset.state = "cancelled";
      replace(status, h("span", { class: "warn" }, "Cancelled"), statusItem("rows", int(count)));
    } else showQueryError(e, count);
  } finally {
    if (ctl === queryCtl) {
      queryCtl = null;
      $("q-run").hidden = false;
      $("q-cancel").hidden = true;
    }
  }
}

function showQueryStats(st, count, shown, secs, kind) {
  const panel = $("query-panel");
  panel.dataset.state = "done";
  panel.dataset.snapshotId = st.snapshot_id;
  const truncated = st.truncated;
  replace(
    $("q-status"),
    h("span", { class: "ok-dot" }, h("b", {}, int(st.rows)), ` row${num(st.rows) === 1 ? "" : "s"}`),
    h(
      "span",
      {},
      "as of snapshot ",
      h("button", { type: "button", class: "btn-link mono", title: "Show it in the snapshots", onclick: () => snaps.select(st.snapshot_id, { scroll: true }) }, st.snapshot_id),
      kind ? h("span", { class: "faint" }, ` (${kind})`) : h("span", { class: "faint" }, " (current)"),
    ),
    statusItem("data files", int(st.data_files)),
    statusItem("delete files", int(st.delete_files)),
    statusItem("server", duration(st.elapsed_seconds)),
    statusItem("total", duration(secs)),
    truncated ? h("span", { class: "badge amber", title: "the limit, or a limit of the node, ended the query" }, `truncated by ${st.truncated_by || "a limit"}`) : null,
    shown < count ? h("span", { class: "badge" }, `showing the first ${int(shown)}`) : null,
  );
}

function showQueryError(e, count) {
  const panel = $("query-panel");
  panel.dataset.state = "error";
  const status = e.status || "ERROR";
  const where = count ? ` after ${int(count)} rows` : "";
  replace($("q-status"), h("span", { class: "bad" }, `Failed${where}`), e.httpStatus ? statusItem("HTTP", e.httpStatus) : null);
  const box = h("div", { class: "q-error", id: "q-error", dataset: { status } }, h("div", { class: "title" }, status), h("pre", {}, e.message || String(e)));
  if (count) $("q-results").prepend(box);
  else replace($("q-results"), box);
}

function cell(v) {
  if (v === null || v === undefined) return h("td", { class: "null" }, "null");
  switch (typeof v) {
    case "number":
    case "bigint":
      return h("td", { class: "numv" }, String(v));
    case "boolean":
      return h("td", { class: "boolv" }, String(v));
    case "string":
      return h("td", { class: "str", title: v.length > 60 ? v : null }, v);
    default: {
      const s = JSON.stringify(v, (k, x) => (typeof x === "bigint" ? x.toString() : x));
      return h("td", { class: "str", title: s.length > 60 ? s : null }, s);
    }
  }
}

function setupQuery() {
  $("query-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    runQuery();
  });
  $("q-cancel").addEventListener("click", () => queryCtl?.abort());
  $("q-asof-kind").addEventListener("change", () => {
    asofKindChanged();
    if (!$("q-asof").disabled) $("q-asof").focus();
  });
  $("q-where").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      runQuery();
    }
  });
  for (const id of ["q-asof", "q-columns", "q-limit"]) {
    $(id).addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") {
        ev.preventDefault();
        runQuery();
      }
    });
  }
}

// ---------------------------------------------------------------------------
// The URL's hash

function readHash() {
  const p = new URLSearchParams(location.hash.replace(/^#/, ""));
  return { table: p.get("table") || "", asof: p.get("asof"), where: p.get("where"), columns: p.get("columns"), limit: p.get("limit") };
}

const hashHasQuery = (hs) => hs.asof !== null || hs.where !== null || hs.columns !== null || hs.limit !== null;

function writeHash(o, push) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(o)) if (v) p.set(k, v);
  const s = p.toString();
  const url = s ? "#" + s : location.pathname + location.search;
  if ((s ? "#" + s : "") === location.hash) return;
  history[push ? "pushState" : "replaceState"](null, "", url);
}

function applyHash() {
  const hs = readHash();
  if (!hs.table) {
    if (state.selected) showOverview();
    return;
  }
  selectTable(hs.table, { fromHash: true });
  if (!hashHasQuery(hs)) return;
  let kind = "current";
  let value = "";
  const a = (hs.asof || "").trim();
  if (/^\d+$/.test(a)) [kind, value] = ["snapshot", a];
  else if (a && a !== "current") {
    const i = a.indexOf(":");
    const k = i > 0 ? a.slice(0, i) : "";
    if (["snapshot", "snapshot_id", "timestamp", "tag", "branch"].includes(k)) [kind, value] = [k === "snapshot_id" ? "snapshot" : k, a.slice(i + 1)];
    else [kind, value] = ["timestamp", a];
  }
  setAsOf(kind, value, { flash: false });
  if (kind === "snapshot") snaps.selectedId = value;
  $("q-where").value = hs.where || "";
  $("q-columns").value = hs.columns || "";
  $("q-limit").value = hs.limit || "100";
  runQuery({ updateUrl: false });
}

// ---------------------------------------------------------------------------
// Start

function tickAges() {
  const now = Date.now();
  for (const el of document.querySelectorAll("[data-age]")) {
    el.textContent = duration(ageOf(el.dataset.age, now)) + (el.dataset.suffix || "");
  }
}

function start() {
  setupToken();
  setupSnapshots();
  setupSpark();
  setupQuery();
  $("tables").addEventListener("click", (ev) => {
    const row = ev.target.closest("[data-table]");
    if (row) selectTable(row.dataset.table);
  });
  $("tables-filter").addEventListener("input", renderTables);
  $("home").addEventListener("click", (ev) => {
    ev.preventDefault();
    writeHash({}, true);
    showOverview();
  });
  $("crumbs").addEventListener("click", (ev) => {
    if (ev.target.closest("a")) {
      ev.preventDefault();
      writeHash({}, true);
      showOverview();
    }
  });
  $("auto-refresh").addEventListener("change", () => {
    if ($("auto-refresh").checked) refresh();
    schedule();
  });
  window.addEventListener("hashchange", applyHash);
  window.addEventListener("popstate", applyHash);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && $("auto-refresh").checked) refresh();
  });
  setInterval(tickAges, 1000);
  renderCrumbs();
  renderConn();
  renderTables();
  renderOverview();
  applyHash();
  refresh();
  schedule();
}

start();

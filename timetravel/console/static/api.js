// The floe HTTP/JSON API (/api/v1), as the console calls it.
//
// The console is served one level below the node's root (/console/), so the
// API is at ../api/v1/ relative to the page. Every call sends the token kept
// in localStorage; a 401 calls the listener set with onUnauthorized.

const TOKEN_KEY = "floe.console.token";

export const apiBase = new URL("../api/v1/", location.href);

export class ApiError extends Error {
  constructor(httpStatus, body) {
    super((body && body.message) || `HTTP ${httpStatus}`);
    this.httpStatus = httpStatus;
    this.code = body && body.code;
    this.status = (body && body.status) || (httpStatus ? `HTTP ${httpStatus}` : "UNAVAILABLE");
  }
}

export function getToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

export function setToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage disabled: the token lasts until the page is closed.
  }
  memoryToken = token;
}

let memoryToken = "";
let unauthorized = () => {};

export function onUnauthorized(fn) {
  unauthorized = fn;
}

function token() {
  return getToken() || memoryToken;
}

// reviver keeps integers beyond 2^53 exact (as BigInt) in query rows, which
// carry 64-bit integers as plain JSON numbers. It needs JSON.parse's source
// text access (Chromium 114+); elsewhere such numbers round as usual.
function reviver(key, value, context) {
  if (typeof value === "number" && !Number.isSafeInteger(value) && context && typeof context.source === "string" && /^-?\d+$/.test(context.source)) {
    return BigInt(context.source);
  }
  return value;
}

export function parseRow(line) {
  return JSON.parse(line, reviver);
}

// request fetches path (relative to the API root) and returns the
// response, or throws an ApiError with the server's {code,status,message}.
export async function request(path, { signal, method = "GET", body } = {}) {
  const headers = { Accept: "application/json, application/x-ndjson" };
  const tok = token();
  if (tok) headers.Authorization = "Bearer " + tok;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(new URL(path, apiBase), { method, headers, signal, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, { status: "UNAVAILABLE", message: `cannot reach the node (${e.message})` });
  }
  if (!res.ok) {
    let b;
    const text = await res.text().catch(() => "");
    try {
      b = JSON.parse(text);
    } catch {
      b = { message: text.trim() || `${res.status} ${res.statusText}` };
    }
    const err = new ApiError(res.status, b);
    if (res.status === 401) unauthorized(err);
    throw err;
  }
  return res;
}

export async function getJSON(path, opts) {
  const res = await request(path, opts);
  return res.json();
}

const t = (name) => "tables/" + encodeURIComponent(name);

export const listTables = (opts) => getJSON("tables", opts);
export const getTable = (name, opts) => getJSON(t(name), opts);
export const getSnapshot = (name, id, opts) => getJSON(`${t(name)}/snapshots/${encodeURIComponent(id)}`, opts);

export function listSnapshots(name, pageSize, pageToken, opts) {
  const q = new URLSearchParams({ page_size: String(pageSize) });
  if (pageToken) q.set("page_token", pageToken);
  return getJSON(`${t(name)}/snapshots?${q}`, opts);
}

// query runs a time-travel query and calls onRows with each chunk of rows
// as they arrive. It resolves to {stats} or {error} (the last line of the
// stream), or throws an ApiError when the call fails before any row.
export async function query(name, params, onRows, signal) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const res = await request(`${t(name)}/query?${q}`, { signal });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  let end = null;
  const take = (lines) => {
    const rows = [];
    for (const line of lines) {
      if (!line.trim()) continue;
      const obj = parseRow(line);
      if (line.startsWith('{"@stats":')) end = { stats: obj["@stats"] };
      else if (line.startsWith('{"@error":')) end = { error: obj["@error"] };
      else rows.push(obj);
    }
    if (rows.length) onRows(rows);
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    const nl = buf.lastIndexOf("\n");
    if (nl < 0) continue;
    take(buf.slice(0, nl).split("\n"));
    buf = buf.slice(nl + 1);
  }
  take([buf]);
  return end || { error: { status: "INCOMPLETE", message: "the answer ended without its last line (@stats): the connection was cut" } };
}

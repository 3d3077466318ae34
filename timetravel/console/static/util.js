// Small helpers: building elements and formatting numbers, sizes and times.

// h builds an element: h("td", {class: "num", title: "x"}, "text", child).
// Attributes: class, dataset (object), on<event> (function), hidden and
// other booleans, everything else through setAttribute. Children: strings,
// numbers, nodes, arrays of them; null/undefined/false are skipped.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "dataset") Object.assign(el.dataset, v);
      else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else if (v === true) el.setAttribute(k, "");
      else el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

// svg builds an SVG element.
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c instanceof Node) el.append(c);
    else if (c !== undefined && c !== null) el.append(String(c));
  }
  return el;
}

// replace empties el and appends children.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const intFmt = new Intl.NumberFormat("en-US");

// int formats an integer (a number, a bigint or the decimal string
// protobuf's JSON uses for 64-bit integers) with thousands separators,
// exactly.
export function int(v) {
  if (v === undefined || v === null || v === "") return "0";
  if (typeof v === "string") {
    if (!/^-?\d+$/.test(v)) return v;
    const neg = v.startsWith("-");
    const digits = neg ? v.slice(1) : v;
    return (neg ? "-" : "") + digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }
  return intFmt.format(v);
}

// num is a 64-bit JSON string as a number (for arithmetic and charts).
export function num(v) {
  if (v === undefined || v === null || v === "") return 0;
  return Number(v);
}

// compact formats a count briefly: 950, 12.3k, 4.5M.
export function compact(v) {
  const n = num(v);
  const a = Math.abs(n);
  if (a < 1000) return String(n);
  if (a < 1e6) return (n / 1e3).toFixed(a < 1e4 ? 1 : 0) + "k";
  if (a < 1e9) return (n / 1e6).toFixed(a < 1e7 ? 1 : 0) + "M";
  return (n / 1e9).toFixed(1) + "G";
}

// bytes formats a size in binary units.
export function bytes(v) {
  let n = num(v);
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return (i === 0 ? String(Math.round(n)) : n.toFixed(Math.abs(n) < 10 ? 1 : 0)) + " " + units[i];
}

// duration formats seconds as "850ms", "12s", "3m 20s", "5h 2m", "4d 3h".
export function duration(sec) {
  if (sec === undefined || sec === null || !isFinite(sec)) return "–";
  if (sec < 0) sec = 0;
  if (sec < 1) return Math.round(sec * 1000) + "ms";
  if (sec < 60) return (sec < 10 ? sec.toFixed(1) : Math.round(sec)) + "s";
  const m = Math.floor(sec / 60);
  if (m < 60) return `${m}m ${Math.floor(sec % 60)}s`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs}h ${m % 60}m`;
  return `${Math.floor(hrs / 24)}d ${hrs % 24}h`;
}

// ageOf is the time since an RFC 3339 timestamp, in seconds.
export function ageOf(ts, now = Date.now()) {
  if (!ts) return null;
  const t = Date.parse(ts);
  if (isNaN(t)) return null;
  return (now - t) / 1000;
}

function pad(n, w = 2) {
  return String(n).padStart(w, "0");
}

// localTime formats an RFC 3339 timestamp as local "2026-01-02 15:04:05".
export function localTime(ts) {
  const d = new Date(ts);
  if (isNaN(d)) return ts || "";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// localTimeMs is localTime with milliseconds.
export function localTimeMs(ts) {
  const d = new Date(ts);
  if (isNaN(d)) return ts || "";
  return localTime(ts) + "." + pad(d.getMilliseconds(), 3);
}

// debounce calls fn once, ms after the last call.
export function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

// shortId shortens a snapshot id for tight places: …123456.
export function shortId(id) {
  const s = String(id);
  return s.length > 8 ? "…" + s.slice(-6) : s;
}

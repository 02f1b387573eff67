// Shared by every dashboard page: the JSON API, the time range, formatting, DOM building, charts.
// Data only ever reaches the page as text (textContent, attribute values, escaped chart labels):
// nothing a user sent is parsed as HTML.
"use strict";

const IW = (() => {
  const body = document.body;
  const API = body.dataset.api || "";
  const FILTER_KEYS = ["model_id", "device_id", "class", "tag", "min_confidence", "max_confidence"];
  const PRESETS = { "1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3, "30d": 30 * 86400e3 };
  const DEFAULT_PRESET = "7d";

  /** An element with attributes and children (strings become text nodes, never markup). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "class") node.className = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function status(message) {
    const box = document.getElementById("status");
    if (box) box.textContent = message || "";
  }

  /** GET a JSON API route of this workspace with the session cookie. */
  async function get(path, params) {
    const query = params ? "?" + params.toString() : "";
    const reply = await fetch(API + path + query, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (reply.status === 401) {
      location.assign("/signin?next=" + encodeURIComponent(location.pathname + location.search));
      throw new Error("signed out");
    }
    const data = await reply.json();
    if (!reply.ok) {
      const detail = data && (data.detail || data.error);
      throw new Error(typeof detail === "string" ? detail : (detail && detail.message) || reply.statusText);
    }
    return data;
  }

  /** Runs a page's loader, showing a failure in the status line instead of a broken page. */
  function run(loader) {
    const start = () => loader().catch((err) => status("Could not load: " + err.message));
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
    else start();
  }

  // -- time range -------------------------------------------------------------------------------
  /** The page's window: `from`/`to` from the URL, else a preset (default 7d) ending now. */
  function range() {
    const q = new URLSearchParams(location.search);
    const now = new Date();
    if (q.get("from")) {
      const to = q.get("to") ? new Date(q.get("to")) : now;
      return { from: new Date(q.get("from")).toISOString(), to: to.toISOString(), preset: null };
    }
    const preset = PRESETS[q.get("range")] ? q.get("range") : DEFAULT_PRESET;
    return { from: new Date(now.getTime() - PRESETS[preset]).toISOString(), to: now.toISOString(), preset };
  }

  /** The URL's filter terms (everything the API filters on except the window). */
  function filters(options) {
    const q = new URLSearchParams(location.search);
    const out = new URLSearchParams();
    for (const [key, value] of q) {
      if (value === "") continue;
      if (FILTER_KEYS.includes(key) || (key.startsWith("meta.") && key.length > 5)) out.append(key, value);
    }
    for (const [key, value] of Object.entries((options && options.fixed) || {})) {
      out.delete(key);
      out.append(key, value);
    }
    return out;
  }

  /** Filters plus the window, ready for an API call. */
  function windowed(options) {
    const params = filters(options);
    const r = range();
    params.set("from", r.from);
    params.set("to", r.to);
    return params;
  }

  function pad(n) { return String(n).padStart(2, "0"); }
  function localInput(iso) {
    const d = new Date(iso);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }

  /** Custom range: the inputs show the window in local time; applying puts UTC ISO in the URL. */
  function wireRange() {
    const form = document.getElementById("range-form");
    if (!form) return;
    const r = range();
    const from = document.getElementById("range-from");
    const to = document.getElementById("range-to");
    from.value = localInput(r.from);
    to.value = localInput(r.to);
    const label = document.getElementById("range-label");
    if (label) label.textContent = `${fmtTime(r.from)} – ${fmtTime(r.to)}`;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const q = new URLSearchParams(location.search);
      q.delete("range"); q.delete("cursor");
      q.set("from", new Date(from.value).toISOString());
      if (to.value) q.set("to", new Date(to.value).toISOString()); else q.delete("to");
      location.assign(location.pathname + "?" + q.toString());
    });
  }

  // -- formatting -------------------------------------------------------------------------------
  const nf = new Intl.NumberFormat();
  function fmtInt(n) { return n === null || n === undefined ? "–" : nf.format(n); }
  function fmtConf(c) { return c === null || c === undefined ? "–" : (c * 100).toFixed(1) + "%"; }
  function fmtSecs(s) {
    if (s === null || s === undefined) return "–";
    return s < 1 ? (s * 1000).toFixed(s < 0.01 ? 2 : 1) + " ms" : s.toFixed(2) + " s";
  }
  function fmtTime(iso) {
    if (!iso) return "–";
    return new Date(iso).toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric",
      hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }
  function fmtAgo(iso) {
    if (!iso) return "never";
    const s = (Date.now() - new Date(iso).getTime()) / 1000;
    if (s < 90) return Math.max(0, Math.round(s)) + " s ago";
    if (s < 5400) return Math.round(s / 60) + " min ago";
    if (s < 129600) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " d ago";
  }

  // -- links ------------------------------------------------------------------------------------
  /** A dashboard path for an id that may hold "/", "?" or "#". */
  function idPath(prefix, id) { return prefix + encodeURIComponent(id); }

  /** The filter term selecting a metadata value as the API answered it: a number by its value
   *  (`[eq]`, so 3.0 shown as "3" still matches), anything else by its text. */
  function metaTerm(field, value) {
    return typeof value === "number" ? ["meta." + field + "[eq]", String(value)] : ["meta." + field, String(value)];
  }

  /** The inferences table with these terms added to the current window and filters. */
  function tableLink(terms, options) {
    const q = new URLSearchParams();
    const here = new URLSearchParams(location.search);
    for (const key of ["range", "from", "to"]) if (here.get(key)) q.set(key, here.get(key));
    if (!options || !options.only) for (const [k, v] of filters(options)) q.append(k, v);
    for (const [k, v] of Object.entries(terms || {})) {
      if (v === null || v === undefined) continue;
      if (![...q.getAll(k)].includes(String(v))) q.append(k, String(v));
    }
    return "/inferences?" + q.toString();
  }

  // -- charts -----------------------------------------------------------------------------------
  /** Text for a chart label: plotly reads a few HTML-like tags in labels, so user text is escaped. */
  function esc(value) {
    if (value === null || value === undefined) return "(none)";
    return String(value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;");
  }

  function fontSize() { return parseFloat(getComputedStyle(document.documentElement).fontSize) || 14; }

  /** Draws (or redraws) a chart; an empty one says so instead of showing bare axes. */
  function plot(id, traces, layout) {
    const node = document.getElementById(id);
    if (!node || !window.Plotly) return;
    const size = fontSize();
    const base = {
      margin: { l: 56, r: 16, t: 8, b: 40 }, font: { size: Math.round(size * 0.8), family: "system-ui, sans-serif" },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", showlegend: traces.length > 1,
      legend: { orientation: "h", y: -0.18 }, hoverlabel: { namelength: 40 },
      xaxis: { gridcolor: "#e6e9ef" }, yaxis: { gridcolor: "#e6e9ef", rangemode: "tozero" },
    };
    const merged = { ...base, ...layout, xaxis: { ...base.xaxis, ...(layout && layout.xaxis) },
      yaxis: { ...base.yaxis, ...(layout && layout.yaxis) } };
    if (!traces.length || traces.every((t) => !(t.x || t.y || []).length)) {
      merged.annotations = [{ text: "no data in this period", showarrow: false, xref: "paper", yref: "paper",
        x: 0.5, y: 0.5, font: { color: "#5b6878" } }];
      merged.xaxis.visible = false;
      merged.yaxis.visible = false;
    }
    window.Plotly.react(node, traces, merged, { displaylogo: false, responsive: true,
      modeBarButtonsToRemove: ["select2d", "lasso2d"] });
  }

  /** Series rows of /stats split into one trace per group, largest groups first. */
  function byGroup(rows, figure, options) {
    const groups = new Map();
    for (const row of rows) {
      const key = row.group === null ? null : String(row.group);
      if (!groups.has(key)) groups.set(key, { x: [], y: [], total: 0 });
      const g = groups.get(key);
      g.x.push(row.time);
      g.y.push(row[figure]);
      g.total += row.count;
    }
    const limit = (options && options.limit) || 12;
    return [...groups.entries()].sort((a, b) => b[1].total - a[1].total).slice(0, limit)
      .map(([name, g]) => ({ name: esc(name), x: g.x, y: g.y, ...(options && options.trace) }));
  }

  // -- tables -----------------------------------------------------------------------------------
  function cell(content, options) {
    const td = el("td", options && options.num ? { class: "num" } : {});
    if (content instanceof Node) td.append(content); else td.textContent = content === null || content === undefined ? "–" : String(content);
    return td;
  }

  function fill(tbody, rows) {
    tbody.replaceChildren(...rows);
  }

  /** Shows the onboarding empty state if the workspace has never received an inference. */
  async function emptyWorkspace() {
    const any = await get("/inferences", new URLSearchParams({ limit: "1" }));
    const empty = any.inferences.length === 0;
    const box = document.getElementById("empty");
    if (box) box.hidden = !empty;
    return empty;
  }

  async function copy(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (_err) {
      return false;
    }
  }

  wireRange();
  return { API, el, get, run, status, range, filters, windowed, fmtInt, fmtConf, fmtSecs, fmtTime, fmtAgo,
    idPath, metaTerm, tableLink, esc, plot, byGroup, cell, fill, emptyWorkspace, copy };
})();

// The overview and model pages: totals with their change, charts, models or recent inferences,
// and the comparison by a grouping field. Every figure is one of the API calls below.
"use strict";

(() => {
  const { el, get, plot, byGroup, esc, cell, fill, fmtInt, fmtConf, fmtSecs, fmtTime, fmtAgo } = IW;
  const modelNode = document.getElementById("model-name");
  const modelId = modelNode ? modelNode.dataset.modelId : null;
  const fixed = modelId ? { model_id: modelId } : {};
  const groupSelect = document.getElementById("group-by");
  const groupBy = new URLSearchParams(location.search).get("group_by") || "";
  const numericSelect = document.getElementById("numeric");
  // A numeric metadata field (`numeric=meta.<field>`): its average, min and max per group and bucket.
  const numeric = new URLSearchParams(location.search).get("numeric") || "";
  const REFRESH_MS = 60_000;
  const MAX_GROUP_ROWS = 50;

  const KPI = {
    inferences: { fmt: fmtInt, higherIsBetter: null },
    avg_confidence: { fmt: fmtConf, higherIsBetter: true },
    avg_inference_time: { fmt: fmtSecs, higherIsBetter: false },
    p95_inference_time: { fmt: fmtSecs, higherIsBetter: false },
    devices: { fmt: fmtInt, higherIsBetter: null },
  };

  function params(extra) {
    const p = IW.windowed({ fixed });
    for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
    return p;
  }

  function showKpis(overview) {
    for (const node of document.querySelectorAll(".kpi")) {
      const key = node.dataset.key;
      const spec = KPI[key];
      node.querySelector("[data-role=value]").textContent = spec.fmt(overview.totals[key]);
      const delta = node.querySelector("[data-role=delta]");
      const change = overview.change[key];
      const before = overview.previous_totals[key];
      if (change === null || change === undefined) {
        delta.textContent = before === null || before === undefined || before === 0 ? "nothing to compare with" : "";
        continue;
      }
      const up = change >= 0;
      const cls = (up ? "up" : "down") + (spec.higherIsBetter === null ? "" : (up === spec.higherIsBetter ? " better" : " worse"));
      delta.replaceChildren(el("span", { class: cls, text: `${up ? "▲" : "▼"} ${Math.abs(change * 100).toFixed(1)}%` }),
        ` vs previous period (${spec.fmt(before)})`);
    }
  }

  /** A metadata number as a table shows it: up to 4 significant digits past the point. */
  function fmtNumber(value) {
    return value === null || value === undefined ? "–" : Number(value.toPrecision(6)).toLocaleString("en-US", { maximumFractionDigits: 4 });
  }

  function groupLabel(value) {
    if (value === "model_id") return "model";
    if (value === "device_id") return "device";
    return value.replace(/^meta\./, "");
  }

  async function groupOptions() {
    const fields = await get("/metadata/fields", new URLSearchParams({ top: "0" }));
    for (const field of fields.fields) {
      groupSelect.append(el("option", { value: "meta." + field.name, text: field.name }));
    }
    groupSelect.value = groupBy;
    // Fields with values sent as numbers (strings that read as numbers count in the figures too).
    for (const field of fields.fields.filter((f) => f.types.includes("number"))) {
      numericSelect.append(el("option", { value: "meta." + field.name, text: field.name }));
    }
    numericSelect.value = numeric;
    const apply = () => {
      const q = new URLSearchParams(location.search);
      if (groupSelect.value) q.set("group_by", groupSelect.value); else q.delete("group_by");
      if (numericSelect.value) q.set("numeric", numericSelect.value); else q.delete("numeric");
      location.assign(location.pathname + "?" + q.toString());
    };
    // Applied with the button (or Enter), not on every change: arrowing through the choices by
    // keyboard must not reload the page at each step.
    document.getElementById("group-form").addEventListener("submit", (e) => { e.preventDefault(); apply(); });
  }

  async function timeCharts() {
    const stackBy = groupBy || (modelId ? null : "model_id");
    const series = await get("/stats", params({ ...(stackBy ? { group_by: stackBy } : {}), ...(numeric ? { numeric } : {}) }));
    if (numeric) numericChart(series, stackBy);
    document.getElementById("volume-title").textContent = "Inferences over time" + (stackBy ? " by " + groupLabel(stackBy) : "");
    const stacked = stackBy ? byGroup(series.series, "count", { trace: { type: "bar" } })
      : byGroup(series.series, "count", { trace: { type: "bar", name: "inferences" } });
    plot("chart-volume", stacked, { barmode: "stack", bargap: 0.1 });
    const lines = { type: "scatter", mode: "lines+markers", marker: { size: 4 } };
    plot("chart-latency", byGroup(series.series, "avg_inference_time", { trace: lines }).map((t) => ({ ...t,
      y: t.y.map((v) => (v === null ? null : v * 1000)) })), { yaxis: { title: { text: "ms" } } });
    plot("chart-confidence-time", byGroup(series.series, "avg_confidence", { trace: lines }),
      { yaxis: { range: [0, 1], tickformat: ".0%" } });
  }

  /** The numeric field's average per bucket (and group), from the same /stats answer. */
  function numericChart(series, stackBy) {
    const name = groupLabel(numeric);
    document.getElementById("numeric-figure").hidden = false;
    document.getElementById("numeric-title").textContent = `Average ${name} over time` + (stackBy ? " by " + groupLabel(stackBy) : "");
    const points = series.series.filter((p) => p.numeric.count > 0).map((p) => ({ ...p, numeric_avg: p.numeric.avg }));
    plot("chart-numeric", byGroup(points, "numeric_avg", { trace: { type: "scatter", mode: "lines+markers", marker: { size: 4 } } }),
      { yaxis: { title: { text: name } } });
  }

  async function distributionCharts() {
    const d = await get("/distributions", params({ bins: "20" }));
    const centers = d.bins.slice(0, -1).map((lo, i) => (lo + d.bins[i + 1]) / 2);
    plot("chart-confidence", d.confidence.some((n) => n > 0)
      ? [{ type: "bar", x: centers, y: d.confidence, name: "predictions", marker: { color: "#1f5fbf" } }] : [],
      { xaxis: { range: [0, 1], tickformat: ".0%" }, bargap: 0.05 });
    const top = d.classes.slice(0, 20).reverse();
    plot("chart-classes", top.length ? [{ type: "bar", orientation: "h", y: top.map((c) => esc(c.class)),
      x: top.map((c) => c.predictions), name: "predictions", marker: { color: "#2e8b57" } }] : [],
      { margin: { l: 120, r: 16, t: 8, b: 40 }, yaxis: { automargin: true } });
    if (modelId) {
      const traces = Object.entries(d.confidence_by_class).map(([cls, counts]) => ({
        type: "scatter", mode: "lines", line: { shape: "hvh" }, name: esc(cls), x: centers, y: counts }));
      plot("chart-confidence-class", traces, { xaxis: { range: [0, 1], tickformat: ".0%" } });
    }
  }

  async function classSeries() {
    const series = await get("/stats", params({ group_by: "class" }));
    // Bars, not areas: an area would bridge the quiet buckets the API leaves out.
    plot("chart-class-series", byGroup(series.series, "count", { trace: { type: "bar" } }), { barmode: "stack", bargap: 0.1 });
  }

  async function modelsTable() {
    const data = await get("/models", params());
    fill(document.querySelector("#models-table tbody"), data.models.map((m) => {
      const here = new URLSearchParams(location.search);
      here.delete("group_by"); here.delete("model_id");
      const link = el("a", { href: IW.idPath("/models/", m.model_id) + (here.toString() ? "?" + here : ""), text: m.model_id });
      return el("tr", {}, cell(link), cell(m.task), cell(fmtInt(m.inferences), { num: true }),
        cell(fmtConf(m.avg_confidence), { num: true }), cell(fmtSecs(m.avg_inference_time), { num: true }),
        cell(fmtSecs(m.p95_inference_time), { num: true }), cell(el("span", { title: fmtTime(m.last_seen), text: fmtAgo(m.last_seen) })));
    }));
  }

  async function recentTable() {
    const p = IW.windowed({ fixed });
    p.set("limit", "15");
    const data = await get("/inferences", p);
    document.getElementById("all-recent").href = IW.tableLink(fixed);
    fill(document.querySelector("#recent-table tbody"), data.inferences.map((r) => el("tr", {},
      cell(el("a", { href: IW.idPath("/inferences/", r.inference_id), text: fmtTime(r.timestamp) })),
      cell(r.device_id), cell(r.classes.join(", ")), cell(fmtConf(r.max_confidence), { num: true }),
      cell(fmtSecs(r.inference_time), { num: true }))));
  }

  async function groupTable() {
    if (!groupBy) return;
    const data = await get("/groups", params({ group_by: groupBy, ...(numeric ? { numeric } : {}) }));
    for (const th of document.querySelectorAll("#group-table th[data-numeric]")) th.hidden = !numeric;
    document.querySelector("#group-table [data-role=numeric-name]").textContent = numeric ? groupLabel(numeric) : "";
    document.getElementById("group-name").textContent = groupLabel(groupBy);
    const total = data.groups.reduce((n, g) => n + g.inferences, 0) || 1;
    // The busiest values; a field with thousands of values (an id) would bury the comparison.
    const shown = data.groups.slice(0, MAX_GROUP_ROWS);
    const rest = data.groups.length - shown.length;
    document.getElementById("group-more").textContent = rest > 0
      ? `and ${fmtInt(rest)} more values (the API's /groups lists them all)` : "";
    fill(document.querySelector("#group-table tbody"), shown.map((g) => {
      const label = g.value === null ? "(not set)" : g.value;
      const value = g.value === null ? el("span", { class: "muted", text: label })
        : el("a", { class: "value", href: IW.tableLink({ [groupBy]: g.value }, { fixed }), text: label });
      const classes = g.classes.map((c) => `${c.class} (${fmtInt(c.inferences)})`).join(", ");
      return el("tr", {}, cell(value), cell(fmtInt(g.inferences), { num: true }),
        cell((100 * g.inferences / total).toFixed(1) + "%", { num: true }), cell(fmtConf(g.avg_confidence), { num: true }),
        cell(fmtSecs(g.avg_inference_time), { num: true }), cell(fmtSecs(g.p95_inference_time), { num: true }),
        cell(fmtInt(g.devices), { num: true }), cell(classes || "–"),
        ...(numeric ? [g.numeric.avg, g.numeric.min, g.numeric.max].map((v) => cell(fmtNumber(v), { num: true })) : []));
    }));
    document.getElementById("groups").hidden = false;
  }

  /** Every figure of the page for the current window (a preset window slides with the clock). */
  async function figures(known) {
    const overview = known || await get("/overview", params());
    showKpis(overview);
    const r = IW.range();
    document.getElementById("range-label").textContent = `${fmtTime(r.from)} – ${fmtTime(r.to)}`;
    const jobs = [timeCharts(), distributionCharts(), groupTable(), modelId ? recentTable() : modelsTable()];
    if (modelId) jobs.push(classSeries());
    await Promise.all(jobs);
  }

  IW.run(async () => {
    document.getElementById("to-table").href = IW.tableLink(fixed);
    const overview = await get("/overview", params());
    if (!overview.totals.inferences) {
      const empty = await IW.emptyWorkspace();
      document.getElementById("nodata").hidden = empty;
      if (empty) {  // nothing to chart yet: the instructions are the page
        for (const node of document.querySelectorAll(".kpis, .charts, .toolbar, #models-card")) node.hidden = true;
        document.body.dataset.loaded = "yes";
        return;
      }
    }
    await Promise.all([groupOptions(), figures(overview)]);
    document.body.dataset.loaded = "yes";
    // A preset window ("the last 24 h") follows the clock: the page on a wall monitor stays current.
    if (IW.range().preset) {
      setInterval(() => {
        if (!document.hidden) figures().then(() => IW.status(""), (err) => IW.status("Could not refresh: " + err.message));
      }, REFRESH_MS);
    }
  });
})();

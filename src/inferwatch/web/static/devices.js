// Devices: online or not, last seen, version, tags, and a sparkline of their volume over the
// window (from /stats grouped by device).
"use strict";

(() => {
  const { el, get, cell, fill, fmtInt, fmtTime, fmtAgo } = IW;
  const SVG = "http://www.w3.org/2000/svg";

  const BUCKET_MS = { "1m": 60e3, "5m": 300e3, "15m": 900e3, "1h": 3600e3, "6h": 21600e3, "1d": 86400e3 };

  /** Volume per bucket over the whole window, quiet buckets as zero (the API lists only busy ones). */
  function sparkline(points, start, end, bucketMs) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "spark");
    svg.setAttribute("viewBox", "0 0 100 24");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    const total = points.reduce((n, p) => n + p.count, 0);
    svg.setAttribute("aria-label", `${fmtInt(total)} inferences over the period`);
    const first = Math.floor(start / bucketMs);
    const slots = new Array(Math.max(1, Math.ceil(end / bucketMs) - first)).fill(0);
    for (const p of points) {
      const i = Math.floor(new Date(p.time).getTime() / bucketMs) - first;
      if (i >= 0 && i < slots.length) slots[i] += p.count;
    }
    const max = Math.max(1, ...slots);
    const step = slots.length > 1 ? 100 / (slots.length - 1) : 100;
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", slots.map((n, i) => `${(i * step).toFixed(2)},${(22 - (20 * n) / max).toFixed(2)}`).join(" "));
    svg.append(line);
    return svg;
  }

  IW.run(async () => {
    const period = IW.windowed();
    for (const key of [...period.keys()]) if (key !== "from" && key !== "to") period.delete(key);
    const [reply, series] = await Promise.all([get("/devices", period),
      get("/stats", new URLSearchParams([...period, ["group_by", "device_id"]]))]);
    const byDevice = new Map();
    for (const row of series.series) {
      if (!byDevice.has(row.group)) byDevice.set(row.group, []);
      byDevice.get(row.group).push(row);
    }
    const start = new Date(reply.from).getTime();
    const end = new Date(reply.to).getTime();
    const online = reply.devices.filter((d) => d.online).length;
    document.getElementById("device-count").textContent = `${online} online of ${reply.devices.length}`;
    document.getElementById("offline-note").textContent =
      `A device is offline after ${Math.round(reply.offline_after_s)} s without a report or inference.`;
    fill(document.querySelector("#devices-table tbody"), reply.devices.map((d) => el("tr", {},
      cell(el("span", {}, el("span", { class: "dot " + (d.online ? "online" : "offline") }), d.online ? "online" : "offline")),
      cell(el("a", { href: IW.tableLink({ device_id: d.device_id }, { only: true }), text: d.device_id })),
      cell(el("span", { title: fmtTime(d.last_seen), text: fmtAgo(d.last_seen) })),
      cell(d.server_version || "–"), cell([d.hostname, d.platform].filter((x) => x).join(" · ") || "–"),
      cell(d.tags.length ? el("span", {}, ...d.tags.map((t) => el("span", { class: "tag", text: t }))) : "–"),
      cell(fmtInt(d.inferences), { num: true }), cell(sparkline(byDevice.get(d.device_id) || [], start, end, BUCKET_MS[series.bucket] || 3600e3)))));
    if (!reply.devices.length) await IW.emptyWorkspace();
    document.body.dataset.loaded = "yes";
  });
})();

// Devices: online or not, last seen, version, tags, and a sparkline of their volume over the
// window (from /stats grouped by device).
"use strict";

(() => {
  const { el, get, cell, fill, fmtInt, fmtTime, fmtAgo } = IW;
  const SVG = "http://www.w3.org/2000/svg";

  function sparkline(points, start, end) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "spark");
    svg.setAttribute("viewBox", "0 0 100 24");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    const total = points.reduce((n, p) => n + p.count, 0);
    svg.setAttribute("aria-label", `${fmtInt(total)} inferences over the period`);
    if (!points.length) return svg;
    const max = Math.max(...points.map((p) => p.count));
    const span = Math.max(1, end - start);
    const line = document.createElementNS(SVG, "polyline");
    const coords = points.map((p) => {
      const x = (100 * (new Date(p.time).getTime() - start)) / span;
      const y = 22 - (20 * p.count) / max;
      return `${x.toFixed(2)},${y.toFixed(2)}`;
    });
    if (coords.length === 1) coords.push(coords[0].replace(/^[^,]+/, (x) => String(Math.min(100, Number(x) + 2))));
    line.setAttribute("points", coords.join(" "));
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
      cell(fmtInt(d.inferences), { num: true }), cell(sparkline(byDevice.get(d.device_id) || [], start, end)))));
    if (!reply.devices.length) await IW.emptyWorkspace();
    document.body.dataset.loaded = "yes";
  });
})();

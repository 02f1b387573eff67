// The model page's measured accuracy: the ground-truth setting (or a label field picked here),
// then GET /performance for the page's window and filters. A confusion cell links to the
// inferences table filtered to that right answer and that verdict.
"use strict";

(() => {
  const { el, get, plot, esc, cell, fill, fmtInt, fmtConf } = IW;
  const section = document.getElementById("performance");
  if (!section) return;
  const modelId = document.getElementById("model-name").dataset.modelId;
  const here = new URLSearchParams(location.search);
  const groupBy = here.get("group_by") || "";

  function interval(ci) {
    return ci ? `${fmtConf(ci[0])} – ${fmtConf(ci[1])}` : "–";
  }

  /** The stored metadata values that mean `expected` (the value itself, or any mapped to it). */
  function rawValues(setting, expected) {
    const mapped = Object.entries(setting.label_map || {}).filter(([, v]) => v === expected).map(([k]) => k);
    return setting.label_map && expected in setting.label_map ? mapped : [expected, ...mapped];
  }

  function cellLink(setting, expected, predicted) {
    const q = new URLSearchParams(IW.tableLink({ model_id: modelId }).split("?")[1]);
    for (const raw of rawValues(setting, expected)) q.append("meta." + setting.label_field, raw);
    if (predicted !== setting.no_detection_label) q.append("class", predicted);
    return "/inferences?" + q.toString();
  }

  function confusion(body) {
    const m = body.confusion_matrix;
    const head = el("tr", {}, el("th", { scope: "col", text: "right answer ↓ / verdict →" }),
      ...m.labels.map((label) => el("th", { scope: "col", class: "num", text: label })));
    document.querySelector("#confusion thead").replaceChildren(head);
    fill(document.querySelector("#confusion tbody"), m.labels.map((expected, i) => el("tr", {},
      el("th", { scope: "row", text: expected }),
      ...m.labels.map((predicted, j) => {
        const n = m.counts[i][j];
        const td = el("td", { class: "num" + (i === j ? " right" : (n ? " wrong" : "")) });
        td.dataset.expected = expected;
        td.dataset.predicted = predicted;
        if (n) {
          td.append(el("a", { href: cellLink(body.setting, expected, predicted), text: fmtInt(n),
            title: `${fmtInt(n)} with right answer ${expected}, verdict ${predicted}` }));
          // Shade by the share of the row (the class's inferences), not by the raw count.
          const share = m.row_normalised[i][j];
          td.style.backgroundColor = i === j ? `rgba(46, 139, 87, ${0.12 + 0.5 * share})`
            : `rgba(200, 60, 60, ${0.12 + 0.6 * share})`;
        } else {
          td.textContent = "0";
        }
        return td;
      }))));
  }

  function show(body) {
    document.getElementById("perf-accuracy").textContent = fmtConf(body.accuracy);
    document.getElementById("perf-ci").textContent = "95% interval " + interval(body.accuracy_ci95);
    document.getElementById("perf-labelled").textContent = fmtInt(body.labelled);
    document.getElementById("perf-coverage").textContent =
      `${fmtConf(body.coverage)} of ${fmtInt(body.inferences)} inferences`;
    const insp = body.inspection;
    document.getElementById("perf-inspection-card").hidden = !insp;
    if (insp) {
      document.getElementById("perf-inspection").textContent = `precision ${fmtConf(insp.precision)}`;
      document.getElementById("perf-inspection-detail").textContent =
        `recall ${fmtConf(insp.recall)}; ${fmtInt(insp.missed_failures)} failures missed, ` +
        `${fmtInt(insp.flagged_and_passed)} false alarms of ${fmtInt(insp.inspected)} inspected`;
    }
    confusion(body);
    fill(document.querySelector("#per-class tbody"), body.per_class.map((c) => el("tr", {},
      cell(c.class), cell(fmtInt(c.support), { num: true }), cell(fmtInt(c.predicted), { num: true }),
      cell(fmtConf(c.precision), { num: true }), cell(fmtConf(c.recall), { num: true }),
      cell(fmtConf(c.f1), { num: true }))));
    plot("chart-accuracy", body.over_time.length ? [{ type: "scatter", mode: "lines+markers", name: "accuracy",
      x: body.over_time.map((t) => t.time), y: body.over_time.map((t) => t.accuracy),
      text: body.over_time.map((t) => `${t.correct} of ${t.labelled}`) }] : [],
      { yaxis: { range: [0, 1], tickformat: ".0%" } });
    const centers = body.calibration.map((b) => (b.from + b.to) / 2);
    plot("chart-calibration", body.calibration.length ? [
      { type: "bar", name: "accuracy", x: centers, y: body.calibration.map((b) => b.accuracy),
        width: body.calibration.map((b) => (b.to - b.from) * 0.9), marker: { color: "#2e8b57" } },
      { type: "scatter", mode: "lines", name: "perfectly calibrated", x: [0, 1], y: [0, 1],
        line: { dash: "dot", color: "#5b6878" } }] : [],
      { xaxis: { range: [0, 1], tickformat: ".0%", title: { text: "top confidence" } },
        yaxis: { range: [0, 1], tickformat: ".0%" } });
    const groups = document.getElementById("perf-groups");
    groups.hidden = !body.by;
    if (body.by) {
      document.getElementById("perf-group-name").textContent = body.by.replace(/^meta\./, "");
      fill(document.querySelector("#perf-group-table tbody"), body.by_group.map((g) => el("tr", {},
        cell(g.value), cell(fmtInt(g.labelled), { num: true }), cell(fmtConf(g.accuracy), { num: true }),
        cell(interval(g.accuracy_ci95)))));
    }
  }

  IW.run(async () => {
    const [stored, fields] = await Promise.all([
      get("/ground-truth", new URLSearchParams({ model_id: modelId })),
      get("/metadata/fields", new URLSearchParams({ top: "0" })),
    ]);
    const select = document.getElementById("perf-field");
    for (const field of fields.fields) select.append(el("option", { value: field.name, text: field.name }));
    const chosen = here.get("label_field") || (stored.setting && stored.setting.label_field) || "";
    select.value = chosen;
    document.getElementById("perf-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const q = new URLSearchParams(location.search);
      if (select.value) q.set("label_field", select.value); else q.delete("label_field");
      location.assign(location.pathname + "?" + q.toString());
    });
    // No label field: the server measures the model by its operator feedback (ve.feedback).
    const params = IW.windowed({ fixed: { model_id: modelId } });
    if (here.get("label_field")) params.set("label_field", here.get("label_field"));
    if (groupBy.startsWith("meta.")) params.set("by", groupBy);
    const body = await get("/performance", params);
    if (!body.labelled) document.getElementById("perf-none").hidden = false;
    document.getElementById("perf-body").hidden = !body.labelled;
    document.getElementById("perf-source").hidden = !(body.labelled && body.label_field === "ve.feedback");
    if (body.labelled) show(body);
    section.dataset.loaded = "yes";
  });
})();

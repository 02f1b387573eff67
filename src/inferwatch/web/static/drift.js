// The model page's drift: the page's window (current) against the equal window before it
// (reference), per feature, from GET /drift; histograms of both windows side by side.
"use strict";

(() => {
  const { el, get, plot, esc, cell, fill, fmtInt, fmtTime } = IW;
  const section = document.getElementById("drift");
  if (!section) return;
  const modelId = document.getElementById("model-name").dataset.modelId;
  const LABELS = { confidence: "Confidence", detections: "Detections per image", box_size: "Box size",
    aspect_ratio: "Box aspect ratio", inference_time: "Inference time", class_mix: "Class mix" };

  function tests(feature) {
    return feature.tests.map((t) => `${t.test} ${t.score.toFixed(3)} / ${t.threshold}` +
      (t.p_value !== undefined ? ` (p ${t.p_value.toPrecision(2)})` : "")).join("; ") || "–";
  }

  function sideBySide(id, x, feature, shares) {
    const series = (which, color) => {
      const w = feature[which];
      if (!w.histogram) return null;
      const total = w.histogram.reduce((a, b) => a + b, 0) || 1;
      return { type: "bar", name: which, x, y: shares ? w.shares : w.histogram.map((n) => n / total),
        marker: { color } };
    };
    plot(id, [series("reference", "#9aa7b8"), series("current", "#1f5fbf")].filter(Boolean),
      { barmode: "group", yaxis: { tickformat: ".0%" } });
  }

  IW.run(async () => {
    const r = IW.range();
    const params = IW.filters({ fixed: { model_id: modelId } });
    for (const key of ["class", "min_confidence", "max_confidence"]) params.delete(key);  // per inference, not per prediction
    params.set("current", `${r.from}/${r.to}`);
    const body = await get("/drift", params);
    document.getElementById("drift-windows").textContent =
      `${fmtTime(body.current.from)} – ${fmtTime(body.current.to)} against the period before`;
    document.getElementById("drift-verdict").textContent = body.drifted
      ? "Drift: at least one feature differs from the period before beyond its threshold."
      : `No drift found (${fmtInt(body.current_inferences)} inferences against ${fmtInt(body.reference_inferences)}).`;
    section.classList.toggle("alerting", body.drifted);
    fill(document.querySelector("#drift-table tbody"), body.features.map((f) => {
      const row = el("tr", {}, cell(LABELS[f.feature] || f.feature),
        cell(f.enough_data ? (f.drifted ? "yes" : "no") : "too little data"),
        cell(fmtInt(f.reference.n), { num: true }), cell(fmtInt(f.current.n), { num: true }), cell(tests(f)));
      row.dataset.feature = f.feature;
      row.dataset.drifted = f.drifted ? "yes" : "no";
      return row;
    }));
    const confidence = body.features.find((f) => f.feature === "confidence");
    if (confidence && confidence.edges) {
      const centers = confidence.edges.slice(0, -1).map((lo, i) => (lo + confidence.edges[i + 1]) / 2);
      sideBySide("chart-drift-confidence", centers, confidence, false);
    } else {
      plot("chart-drift-confidence", []);
    }
    const classes = body.features.find((f) => f.feature === "class_mix");
    if (classes && classes.classes) sideBySide("chart-drift-classes", classes.classes.map(esc), classes, true);
    else plot("chart-drift-classes", []);
    section.dataset.loaded = "yes";
  });
})();

// One inference: properties, metadata (each value filters the table), a sortable predictions
// table, the uploaded image with boxes, masks and keypoints drawn on a canvas, and the raw JSON.
"use strict";

(() => {
  const { el, get, cell, fill, fmtConf, fmtSecs, fmtTime } = IW;
  const { colour, draw } = Annotate;
  const root = document.getElementById("inference");
  const inferenceId = root.dataset.inferenceId;
  const imageIndex = root.dataset.imageIndex;
  let sortKey = "confidence";
  let sortDir = -1;

  function shape(p) {
    if (p.points && p.points.length) return `polygon, ${p.points.length} points`;
    if (p.keypoints && p.keypoints.length) return `${p.keypoints.length} keypoints`;
    if (p.width !== undefined) return "box";
    return "label";
  }

  /** A batched request shares one id: a link to each of its images. */
  function imageLinks(inf) {
    const links = [];
    for (let i = 0; i < inf.image_count; i++) {
      const text = String(i);
      links.push(i === inf.image_index ? el("strong", { text }) : el("a", {
        href: IW.idPath("/inferences/", inferenceId) + "?image_index=" + i, text }), " ");
    }
    return el("span", {}, ...links, `of ${inf.image_count}`);
  }

  function properties(inf) {
    const dl = document.getElementById("properties");
    const entries = [
      ["Time", fmtTime(inf.timestamp)], ["Received", fmtTime(inf.received_at)],
      ["Model", el("a", { href: IW.idPath("/models/", inf.model_id), text: inf.model_id })],
      ["Task", inf.task],
      ["Device", inf.device_id === null ? "–" : el("a", { href: IW.tableLink({ device_id: inf.device_id }, { only: true }), text: inf.device_id })],
      ["Tags", inf.tags.length ? el("span", {}, ...inf.tags.map((t) => el("a", { class: "tag", href: IW.tableLink({ tag: t }, { only: true }), text: t }))) : "–"],
      ["Inference time", fmtSecs(inf.inference_time)], ["Predictions", String(inf.n_predictions)],
      ["Top confidence", fmtConf(inf.max_confidence)],
      ["Image size", inf.image.width ? `${inf.image.width} × ${inf.image.height}` : "–"],
      ["Image index", inf.image_count > 1 ? imageLinks(inf) : `${inf.image_index} of ${inf.image_count}`],
      ["Source", inf.source],
    ];
    for (const [key, value] of Object.entries(inf)) {
      if (["inference_id", "image_index", "timestamp", "received_at", "model_id", "task", "device_id", "tags", "source",
        "inference_time", "image", "n_predictions", "max_confidence", "classes", "predictions", "metadata",
        "image_count", "image_url"].includes(key)) continue;
      entries.push([key, typeof value === "object" ? JSON.stringify(value) : String(value)]);
    }
    dl.replaceChildren(...entries.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)]));
  }

  function metadata(inf) {
    const rows = Object.entries(inf.metadata).map(([field, value]) => {
      const [key, text] = IW.metaTerm(field, value);
      return el("tr", {}, cell(field), cell(el("a", { class: "value", href: IW.tableLink({ [key]: text }, { only: true }),
        title: `Inferences with ${field} = ${text}`, text })));
    });
    fill(document.querySelector("#metadata-table tbody"), rows);
    document.getElementById("no-metadata").hidden = rows.length > 0;
    document.getElementById("metadata-table").hidden = rows.length === 0;
  }

  function predictions(inf) {
    const items = inf.predictions.map((p, index) => ({ ...p, index }));
    items.sort((a, b) => {
      const x = a[sortKey] ?? "";
      const y = b[sortKey] ?? "";
      return (x < y ? -1 : x > y ? 1 : a.index - b.index) * sortDir;
    });
    const round = (v) => (v === undefined || v === null ? "–" : Number(v).toFixed(1));
    fill(document.querySelector("#predictions-table tbody"), items.map((p) => el("tr", {},
      cell(String(p.index + 1)), cell(el("span", {}, el("span", { class: "dot", style: `background:${colour(p.class)}` }), p.class ?? "–")),
      cell(fmtConf(p.confidence), { num: true }), cell(round(p.x), { num: true }), cell(round(p.y), { num: true }),
      cell(round(p.width), { num: true }), cell(round(p.height), { num: true }), cell(shape(p)))));
    for (const th of document.querySelectorAll("#predictions-table th[aria-sort]")) {
      const key = th.querySelector("button").dataset.key;
      th.setAttribute("aria-sort", key === sortKey ? (sortDir > 0 ? "ascending" : "descending") : "none");
    }
  }

  function wireSort(inf) {
    for (const button of document.querySelectorAll("#predictions-table button.sort")) {
      button.addEventListener("click", () => {
        const key = button.dataset.key;
        sortDir = key === sortKey ? -sortDir : (key === "confidence" ? -1 : 1);
        sortKey = key;
        predictions(inf);
      });
    }
  }

  function image(inf) {
    const canvas = document.getElementById("canvas");
    const toggle = document.getElementById("show-labels");
    if (!inf.image_url) {
      document.getElementById("no-image").hidden = false;
      canvas.hidden = true;
      toggle.parentElement.hidden = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const img = new Image();
      img.onload = () => {
        draw(canvas, img, inf, toggle.checked);
        toggle.addEventListener("change", () => draw(canvas, img, inf, toggle.checked));
        resolve();
      };
      img.onerror = () => { IW.status("The image could not be loaded."); resolve(); };
      img.src = inf.image_url;
    });
  }

  function wireCopy() {
    document.getElementById("copy-id").addEventListener("click", async () => {
      const ok = await IW.copy(inferenceId);
      document.getElementById("copied").textContent = ok ? "Copied." : "Select the id above and copy it.";
    });
  }

  IW.run(async () => {
    wireCopy();
    const params = imageIndex ? new URLSearchParams({ image_index: imageIndex }) : null;
    let inf;
    try {
      inf = await get("/inferences/" + encodeURIComponent(inferenceId), params);
    } catch (err) {
      const box = document.getElementById("missing");
      box.textContent = "This inference is not in the workspace: " + err.message;
      box.hidden = false;
      document.body.dataset.loaded = "yes";
      return;
    }
    properties(inf);
    metadata(inf);
    predictions(inf);
    wireSort(inf);
    document.getElementById("raw").textContent = JSON.stringify(inf, null, 2);
    await image(inf);
    document.body.dataset.loaded = "yes";
  });
})();

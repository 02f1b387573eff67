// One inference: properties, metadata (each value filters the table), a sortable predictions
// table, the uploaded image with boxes, masks and keypoints drawn on a canvas, and the raw JSON.
"use strict";

(() => {
  const { el, get, cell, fill, fmtConf, fmtSecs, fmtTime } = IW;
  const root = document.getElementById("inference");
  const inferenceId = root.dataset.inferenceId;
  const imageIndex = root.dataset.imageIndex;
  const PALETTE = ["#ff3b30", "#34c759", "#0a84ff", "#ffcc00", "#af52de", "#ff9500", "#00c7be", "#ff2d55", "#5ac8fa", "#a2845e"];
  let sortKey = "confidence";
  let sortDir = -1;

  function colour(cls) {
    let h = 0;
    for (const ch of String(cls)) h = (h * 31 + ch.codePointAt(0)) >>> 0;
    return PALETTE[h % PALETTE.length];
  }

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

  /** Boxes (Roboflow's centre x/y), polygons and keypoints over the image, scaled to its pixels. */
  function draw(canvas, image, inf, labels) {
    // A small image is drawn enlarged (to the frame's width, or 640 px high) so labels stay legible.
    const frame = canvas.parentElement.clientWidth || 640;
    const k = Math.max(1, Math.min(frame / image.naturalWidth, 640 / image.naturalHeight));
    const w = Math.round(image.naturalWidth * k);
    const h = Math.round(image.naturalHeight * k);
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = k < 2;
    ctx.drawImage(image, 0, 0, w, h);
    const sx = inf.image.width ? w / inf.image.width : k;
    const sy = inf.image.height ? h / inf.image.height : k;
    const line = Math.max(2, Math.round(Math.max(w, h) / 300));
    const font = Math.max(12, Math.round(Math.max(w, h) / 45));
    ctx.font = `600 ${font}px system-ui, sans-serif`;
    ctx.textBaseline = "top";
    let drawn = 0;
    for (const p of inf.predictions) {
      const c = colour(p.class);
      ctx.strokeStyle = c;
      ctx.fillStyle = c;
      ctx.lineWidth = line;
      let labelX = null;
      let labelY = null;
      if (p.points && p.points.length > 2) {
        ctx.beginPath();
        p.points.forEach((pt, i) => (i ? ctx.lineTo(pt.x * sx, pt.y * sy) : ctx.moveTo(pt.x * sx, pt.y * sy)));
        ctx.closePath();
        ctx.globalAlpha = 0.3;
        ctx.fill();
        ctx.globalAlpha = 1;
        ctx.stroke();
      }
      if (p.width !== undefined && p.height !== undefined && p.x !== undefined) {
        const x = (p.x - p.width / 2) * sx;
        const y = (p.y - p.height / 2) * sy;
        ctx.strokeRect(x, y, p.width * sx, p.height * sy);
        labelX = x;
        labelY = y;
      }
      for (const k of p.keypoints || []) {
        if (k.confidence !== undefined && k.confidence < 0.3) continue;  // what the model itself doubts
        ctx.beginPath();
        ctx.arc(k.x * sx, k.y * sy, line * 1.8, 0, 2 * Math.PI);
        ctx.fill();
        if (labels && k.class_name) {
          ctx.save();
          ctx.font = `${Math.round(font * 0.7)}px system-ui, sans-serif`;
          ctx.lineWidth = 3;
          ctx.strokeStyle = "#000";
          ctx.strokeText(String(k.class_name), k.x * sx + line * 2.5, k.y * sy - font * 0.35);
          ctx.fillText(String(k.class_name), k.x * sx + line * 2.5, k.y * sy - font * 0.35);
          ctx.restore();
        }
      }
      if (labels && labelX !== null) {
        const text = `${p.class ?? ""} ${p.confidence !== undefined ? (p.confidence * 100).toFixed(0) + "%" : ""}`.trim();
        const tw = ctx.measureText(text).width + 8;
        const ty = labelY - font - 6 >= 0 ? labelY - font - 6 : labelY;
        ctx.fillRect(labelX - line / 2, ty, tw, font + 6);
        ctx.fillStyle = "#fff";
        ctx.fillText(text, labelX + 4 - line / 2, ty + 3);
      }
      drawn += 1;
    }
    canvas.dataset.drawn = String(drawn);
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

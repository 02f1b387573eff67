// Annotations drawn over an image on a canvas: boxes (Roboflow's centre x/y), polygons and
// keypoints, scaled to the image's pixels, each class in its own colour. Shared by the inference
// page and the Vision Events pages; labels are canvas text, never markup.
"use strict";

const Annotate = (() => {
  const PALETTE = ["#ff3b30", "#34c759", "#0a84ff", "#ffcc00", "#af52de", "#ff9500", "#00c7be", "#ff2d55", "#5ac8fa", "#a2845e"];
  function colour(cls) {
    let h = 0;
    for (const ch of String(cls)) h = (h * 31 + ch.codePointAt(0)) >>> 0;
    return PALETTE[h % PALETTE.length];
  }

  /** Boxes (Roboflow's centre x/y), polygons and keypoints over the image, scaled to its pixels. */
  function draw(canvas, image, inf, labels, maxHeight = 640) {
    // A small image is drawn enlarged (to the frame's width, or `maxHeight` px high) so labels stay legible.
    const frame = canvas.parentElement.clientWidth || 640;
    const k = Math.max(1, Math.min(frame / image.naturalWidth, maxHeight / image.naturalHeight));
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


  /** Draws every `canvas.annotated` of the page from its data attributes (the image URL, the
   * annotations as JSON, labels or not, the largest height), then marks the page loaded. */
  function drawAll() {
    const canvases = [...document.querySelectorAll("canvas.annotated")];
    let pending = canvases.length;
    const done = () => {
      pending -= 1;
      if (pending <= 0) document.body.dataset.loaded = "yes";
    };
    if (!pending) document.body.dataset.loaded = "yes";
    for (const canvas of canvases) {
      const inf = JSON.parse(canvas.dataset.annotations);
      const img = new Image();
      img.onload = () => { draw(canvas, img, inf, canvas.dataset.labels === "yes", Number(canvas.dataset.maxHeight || 640)); done(); };
      img.onerror = () => { canvas.dataset.drawn = "0"; done(); };
      img.src = canvas.dataset.src;
    }
  }

  return { colour, draw, drawAll };
})();

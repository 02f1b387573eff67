// The inferences table: filters and metadata columns all live in the URL, pages follow the API's
// cursor, a metadata value is a link that filters by it, and the CSV export takes the same terms.
"use strict";

(() => {
  const { el, get, cell, fill, fmtInt, fmtConf, fmtSecs, fmtTime } = IW;
  const here = new URLSearchParams(location.search);
  const form = document.getElementById("filters");
  const picks = document.getElementById("column-picks");
  const DEFAULT_COLUMNS = 4;

  function go(params) {
    location.assign("/inferences" + (params.toString() ? "?" + params.toString() : ""));
  }

  /** The form as URL terms: empty inputs dropped, the typed metadata term added (its comparison,
   *  if not plain equality, in brackets after the field: `meta.temperature[gt]=150`). */
  function submitted() {
    const out = new URLSearchParams();
    for (const [key, value] of new FormData(form)) {
      if (typeof value === "string" && value.trim() !== "") out.append(key, value.trim());
    }
    const field = document.getElementById("meta-field").value.trim();
    const op = document.getElementById("meta-op").value;
    const value = document.getElementById("meta-value").value;
    if (field && value !== "") out.append("meta." + field + (op ? "[" + op + "]" : ""), value);
    if (!out.has("columns")) out.append("columns", "");  // none picked: say so, or the defaults return
    return out;
  }

  function wireForm() {
    form.addEventListener("submit", (event) => { event.preventDefault(); go(submitted()); });
    for (const button of form.querySelectorAll("#meta-chips .remove")) {
      button.addEventListener("click", () => { button.closest("li").remove(); go(submitted()); });
    }
  }

  function options(id, values) {
    document.getElementById(id).replaceChildren(...values.map((v) => el("option", { value: v })));
  }

  /** Pickers: models, devices, classes of the window; metadata fields and their top values. */
  async function pickers(fields) {
    const windowOnly = IW.windowed();
    for (const key of [...windowOnly.keys()]) if (key !== "from" && key !== "to") windowOnly.delete(key);
    const [models, devices, dist] = await Promise.all([get("/models", windowOnly), get("/devices", windowOnly),
      get("/distributions", new URLSearchParams([...windowOnly, ["bins", "1"]]))]);
    options("models-list", models.models.map((m) => m.model_id));
    options("devices-list", devices.devices.map((d) => d.device_id));
    options("classes-list", dist.classes.map((c) => c.class).filter((c) => c !== null));
    options("fields-list", fields.map((f) => f.name));
    const fieldInput = document.getElementById("meta-field");
    const showValues = () => {
      const f = fields.find((x) => x.name === fieldInput.value.trim());
      options("values-list", f ? f.top_values.map((v) => v.value) : []);
    };
    fieldInput.addEventListener("input", showValues);
    showValues();
  }

  /** The metadata columns shown: the URL's `columns`, else the first few fields. */
  function chosenColumns(fields) {
    if (picks.dataset.explicit === "yes") return picks.dataset.columns.split("\n").filter((c) => c);
    return fields.slice(0, DEFAULT_COLUMNS).map((f) => f.name);
  }

  function columnPicker(fields, chosen) {
    picks.replaceChildren(...fields.map((f) => el("label", {},
      el("input", { type: "checkbox", name: "columns", value: "meta." + f.name, checked: chosen.includes(f.name) }),
      f.name)));
    if (!fields.length) picks.append(el("span", { class: "muted", text: "No metadata fields yet." }));
  }

  function apiTerms() { return IW.windowed(); }

  function metaLink(field, value) {
    const q = new URLSearchParams(location.search);
    q.delete("cursor");
    const [key, text] = IW.metaTerm(field, value);
    if (!q.getAll(key).includes(text)) q.append(key, text);
    return el("a", { class: "value", href: "/inferences?" + q.toString(), title: `Show only ${field} = ${text}`, text });
  }

  function row(r, columns) {
    const link = el("a", { href: IW.idPath("/inferences/", r.inference_id) + (r.image_index ? "?image_index=" + r.image_index : ""),
      text: fmtTime(r.timestamp) });
    const tags = r.tags.length ? el("span", {}, ...r.tags.map((t) => el("span", { class: "tag", text: t }))) : null;
    const device = r.device_id === null ? "–" : el("span", {}, r.device_id, tags ? " " : "", tags || "");
    return el("tr", {}, cell(link), cell(r.model_id), cell(device), cell(r.classes.join(", ") || "–"),
      cell(fmtConf(r.max_confidence), { num: true }), cell(fmtSecs(r.inference_time), { num: true }),
      ...columns.map((c) => cell(r.metadata[c] === undefined ? "" : metaLink(c, r.metadata[c]))));
  }

  function pager(nextCursor) {
    const newest = document.getElementById("newest");
    const older = document.getElementById("older");
    if (here.get("cursor")) {
      const q = new URLSearchParams(location.search);
      q.delete("cursor");
      newest.href = "/inferences?" + q.toString();
      newest.hidden = false;
    }
    if (nextCursor) {
      const q = new URLSearchParams(location.search);
      q.set("cursor", nextCursor);
      older.href = "/inferences?" + q.toString();
      older.hidden = false;
    }
  }

  function exportLink(columns) {
    const p = apiTerms();
    for (const c of columns) p.append("columns", "meta." + c);
    const link = document.getElementById("export");
    link.href = IW.API + "/export.csv?" + p.toString();
  }

  // The same filters, as a COCO or YOLO zip of the images with their predictions.
  function datasetLink() {
    const format = document.getElementById("dataset-format");
    const link = document.getElementById("export-dataset");
    const update = () => {
      const p = apiTerms();
      p.set("format", format.value);
      link.href = IW.API + "/export/dataset?" + p.toString();
    };
    format.addEventListener("change", update);
    update();
  }

  IW.run(async () => {
    wireForm();
    const fieldsReply = await get("/metadata/fields", new URLSearchParams({ top: "50" }));
    const fields = fieldsReply.fields;
    const columns = chosenColumns(fields);
    columnPicker(fields, columns);
    const head = document.getElementById("table-head");
    for (const c of columns) head.append(el("th", { scope: "col", text: c }));
    exportLink(columns);
    datasetLink();

    const list = apiTerms();
    list.set("limit", "50");
    if (here.get("cursor")) list.set("cursor", here.get("cursor"));
    const [page, totals] = await Promise.all([get("/inferences", list), get("/overview", apiTerms())]);
    fill(document.querySelector("#inference-table tbody"), page.inferences.map((r) => row(r, columns)));
    document.getElementById("match-count").textContent = `${fmtInt(totals.totals.inferences)} match`;
    pager(page.next_cursor);
    if (!page.inferences.length) {
      const empty = await IW.emptyWorkspace();
      document.getElementById("table-empty").hidden = empty;
    }
    await pickers(fields);
    document.body.dataset.loaded = "yes";
  });
})();

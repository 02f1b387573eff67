// Audit trail: who changed what, from GET /audit (a session of a key holding `manage`). Every
// value is set as text, never as markup: names and details are what users typed.
"use strict";

(() => {
  const { get, cell, fill, fmtTime } = IW;

  IW.run(async () => {
    const trail = await get("/audit", new URLSearchParams({ limit: "500" }));
    document.getElementById("no-audit").hidden = trail.events.length > 0;
    fill(document.querySelector("#audit-table tbody"), trail.events.map((e) => {
      const row = document.createElement("tr");
      row.append(cell(fmtTime(e.at)), cell(e.actor), cell(e.action), cell(e.target), cell(JSON.stringify(e.detail)));
      row.dataset.action = e.action;
      return row;
    }));
  });
})();

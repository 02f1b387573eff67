// Alerts: every rule with its current state, and the history of firings and recoveries, from
// GET /alerts and GET /alerts/history. Rules are written through the API with the key.
"use strict";

(() => {
  const { el, get, cell, fill, fmtTime, fmtAgo } = IW;

  function scope(rule) {
    const parts = [];
    if (rule.model_id) parts.push(`model ${rule.model_id}`);
    if (rule.device_id) parts.push(`device ${rule.device_id}`);
    if (rule.class) parts.push(`class ${rule.class}`);
    for (const [k, v] of Object.entries(rule.meta || {})) parts.push(`${k} = ${v}`);
    return parts.join(", ") || "all inferences";
  }

  function condition(rule) {
    const levels = [];
    if (rule.warning !== null && rule.warning !== undefined) levels.push(`warning ${rule.warning}`);
    if (rule.critical !== null && rule.critical !== undefined) levels.push(`critical ${rule.critical}`);
    return `${rule.condition} ${levels.join(", ")} over ${Math.round(rule.window_s / 60)} min`;
  }

  /** The metric, with what it reads when it names a field or a drift feature. */
  function metric(rule) {
    if (rule.metric === "metadata_average") return `average of ${rule.field}`;
    if (rule.metric === "drift_score") return `drift of ${rule.drift_feature}`;
    return rule.metric;
  }

  function value(v) {
    return v === null || v === undefined ? "–" : (Number.isInteger(v) ? String(v) : v.toPrecision(3));
  }

  function badge(state) {
    return el("span", { class: "state " + state, text: state });
  }

  /** A delete button: a form posting the session's CSRF token (never a GET that changes state).
   * None for a viewer (a session of a key without `manage`): the table then carries no token. */
  function deleteForm(alert) {
    if (!document.getElementById("rules-table").dataset.csrf) return "";
    const form = el("form", { method: "post", action: `/alerts/${encodeURIComponent(alert.id)}/delete` },
      el("input", { type: "hidden", name: "csrf", value: document.getElementById("rules-table").dataset.csrf }),
      el("button", { type: "submit", class: "secondary small", text: "Delete",
        "aria-label": `Delete rule ${alert.rule.name}` }));
    return form;
  }

  IW.run(async () => {
    const [rules, history] = await Promise.all([get("/alerts"), get("/alerts/history", new URLSearchParams({ limit: "100" }))]);
    const names = new Map(rules.alerts.map((a) => [a.id, a.rule.name]));
    document.getElementById("rule-count").textContent = rules.alerts.length ? `${rules.alerts.length} rules` : "";
    document.getElementById("no-rules").hidden = rules.alerts.length > 0;
    document.getElementById("rules-card").hidden = rules.alerts.length === 0;
    fill(document.querySelector("#rules-table tbody"), rules.alerts.map((a) => {
      const row = el("tr", {}, cell(badge(a.rule.enabled ? a.state : "disabled")), cell(a.rule.name), cell(metric(a.rule)),
        cell(scope(a.rule)), cell(condition(a.rule)), cell(value(a.value), { num: true }),
        cell(a.since ? el("span", { title: fmtTime(a.since), text: fmtAgo(a.since) }) : "–"),
        cell(a.rule.channels.map((c) => c.type).join(", ") || "none"), cell(deleteForm(a)));
      row.dataset.state = a.state;
      return row;
    }));
    document.getElementById("no-history").hidden = history.events.length > 0;
    fill(document.querySelector("#history-table tbody"), history.events.map((e) => el("tr", {},
      cell(fmtTime(e.at)), cell(names.get(e.rule_id) || e.rule_id), cell(`${e.previous} → ${e.state}`),
      cell(value(e.value), { num: true }), cell(e.notified ? "yes" : `no: ${e.suppressed || "not delivered"}`))));
    document.body.dataset.loaded = "yes";
  });
})();

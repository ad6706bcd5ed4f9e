// The dashboard's "Handoff to a person" figures (projections/human_metrics.py).
"use strict";
(() => {
  const { el, getJSON } = Console;
  const pct = (v) => (v === null || v === undefined ? "—" : `${(v * 100).toFixed(1)} %`);
  const secs = (v) => (v === null || v === undefined ? "—" : `${v.toFixed(1)} s`);
  const num = (v) => (v === null || v === undefined ? "—" : String(Math.round(v * 100) / 100));

  document.addEventListener("DOMContentLoaded", async () => {
    const tbody = document.querySelector("#human tbody");
    let m;
    try {
      m = await getJSON("/console/api/metrics/human");
    } catch (e) {
      Console.showError(document.getElementById("dashboard-error"), e);
      return;
    }
    const t = m.time_to_human_seconds;
    const rows = [
      ["Asked for a person", m.requests, "requests"],
      ["Time to human p50", secs(t.p50), "time-to-human-p50"],
      ["Time to human p95", secs(t.p95), "time-to-human-p95"],
      ["Abandoned while queued", `${m.abandoned_while_queued} (${pct(m.abandonment_rate)})`, "abandoned"],
      ["Re-verified after a person took over (goal 0)", `${m.reverified_after_transfer} of ${m.taken_over}`, "reverified"],
    ];
    const names = { ai: "AI", ai_voice: "AI + voice", person: "Person" };
    for (const [who, g] of Object.entries(m.by_resolver)) {
      rows.push([`Resolved by ${names[who]}`, `${g.resolved} of ${g.conversations} (${pct(g.resolution_rate)}) · CSAT ${num(g.csat_mean)} (${g.csat_count})`, `resolver-${who}`]);
    }
    tbody.replaceChildren(...rows.map(([label, value, key]) =>
      el("tr", { "data-metric": key }, el("th", { scope: "row" }, label), el("td", {}, String(value)))));
  });
})();

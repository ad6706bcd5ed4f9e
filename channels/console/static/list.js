// The conversation list: filters in the URL (so a search can be bookmarked or shared),
// counts per channel and per status, and one row per conversation.
"use strict";
(() => {
  const { el, getJSON, maskParam, withQuery, formatTime, channelLabel } = Console;
  const PAGE = 50;
  const FIELDS = ["q", "channel", "date_from", "date_to", "subject", "outcome", "status"];

  function currentParams() {
    return new URLSearchParams(window.location.search);
  }

  function fillForm(form, params) {
    for (const name of FIELDS) form.elements[name].value = params.get(name) || "";
  }

  async function load() {
    const params = currentParams();
    const offset = Number(params.get("offset") || 0);
    const query = new URLSearchParams();
    for (const name of FIELDS) if (params.get(name)) query.set(name, params.get(name));
    query.set("limit", String(PAGE));
    query.set("offset", String(offset));
    const error = document.getElementById("list-error");
    error.hidden = true;
    let page;
    try {
      page = await getJSON(withQuery(`/console/api/conversations?${query}`, [maskParam()]));
    } catch (e) {
      Console.showError(error, e);
      return;
    }
    renderCounts(page);
    renderQuarantine(page.quarantined || []);
    renderRows(page.items, new Set((page.quarantined || []).map((q) => q.conversation_id)));
    document.getElementById("list-summary").textContent =
      page.total === 0 ? "No conversation matches." :
      `${offset + 1}–${offset + page.items.length} of ${page.total} conversations`;
    const prev = document.getElementById("prev");
    const next = document.getElementById("next");
    prev.disabled = offset === 0;
    next.disabled = offset + page.items.length >= page.total;
    prev.onclick = () => go({ offset: Math.max(0, offset - PAGE) });
    next.onclick = () => go({ offset: offset + PAGE });
  }

  function renderCounts(page) {
    const counts = document.getElementById("counts");
    counts.replaceChildren();
    for (const [channel, n] of Object.entries(page.per_channel)) {
      counts.append(el("div", { class: "count", "data-channel": channel },
        el("dt", { text: channelLabel(channel) }), el("dd", { text: String(n) })));
    }
    for (const [status, n] of Object.entries(page.per_status)) {
      counts.append(el("div", { class: "count", "data-status": status },
        el("dt", { text: status }), el("dd", { text: String(n) })));
    }
  }

  function renderQuarantine(reports) {
    const section = document.getElementById("quarantine");
    section.hidden = reports.length === 0;
    document.getElementById("quarantine-list").replaceChildren(...reports.map((r) =>
      el("li", { "data-quarantined": r.conversation_id },
        el("a", { href: `/console/conversations/${encodeURIComponent(r.conversation_id)}`, text: r.conversation_id }),
        el("span", { text: ` — position ${r.first_broken}: ${r.reason}` }))));
  }

  function renderRows(items, quarantined) {
    const body = document.querySelector("#conversations tbody");
    body.replaceChildren(...items.map((c) => el("tr", {
      "data-conversation": c.conversation_id,
      class: quarantined.has(c.conversation_id) ? "quarantined" : null },
      el("th", { scope: "row" },
        el("a", { href: `/console/conversations/${encodeURIComponent(c.conversation_id)}`, text: c.conversation_id })),
      el("td", {}, el("time", { datetime: c.started_at, text: formatTime(c.started_at) })),
      el("td", {}, el("time", { datetime: c.last_at, text: formatTime(c.last_at) })),
      el("td", { text: c.channels.map(channelLabel).join(" → ") }),
      el("td", { text: c.subjects.join(", ") || "—" }),
      el("td", { text: `${c.handoffs_completed}/${c.handoffs_offered}` }),
      el("td", {}, el("span", { class: `status status-${c.status}`, text: c.status }),
        quarantined.has(c.conversation_id) ? el("span", { class: "status status-quarantined", text: " quarantined" }) : null),
      el("td", { text: c.outcome || "—" }),
      el("td", { text: String(c.version) }),
    )));
  }

  function go(changes) {
    const params = currentParams();
    for (const [key, value] of Object.entries(changes)) {
      if (value === "" || value === null || value === undefined) params.delete(key);
      else params.set(key, String(value));
    }
    window.history.pushState(null, "", `${window.location.pathname}?${params}`);
    load();
  }

  document.addEventListener("DOMContentLoaded", async () => {
    const form = document.getElementById("search");
    fillForm(form, currentParams());
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const changes = { offset: "" };
      for (const name of FIELDS) changes[name] = form.elements[name].value.trim();
      go(changes);
    });
    form.addEventListener("reset", () => setTimeout(() => {
      const changes = { offset: "" };
      for (const name of FIELDS) changes[name] = "";
      go(changes);
    }));
    window.addEventListener("popstate", () => { fillForm(form, currentParams()); load(); });
    await Console.initHeader({ onMaskChange: load });
    load();
  });
})();

// The queue of conversations waiting for a person, live (SSE), and the operator's
// availability, re-announced while the box is ticked so that a closed page drops out.
"use strict";
(() => {
  const { el, maskParam, withQuery, channelLabel } = Console;
  const HEARTBEAT_MS = 20000;
  let heartbeat = null;

  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Console.ApiError(response.status, data.detail || `HTTP ${response.status}`);
    return data;
  }

  function minutes(seconds) {
    const m = Math.floor(seconds / 60);
    return m ? `${m} min ${seconds % 60} s` : `${seconds} s`;
  }

  function render(body) {
    const tbody = document.querySelector("#queue tbody");
    tbody.replaceChildren();
    for (const item of body.items) {
      const link = `/console/conversations/${encodeURIComponent(item.conversation_id)}`;
      tbody.append(el("tr", { "data-conversation": item.conversation_id },
        el("td", {}, el("a", { href: link }, item.conversation_id)),
        el("td", { class: "wait", "data-requested": item.requested_at }, minutes(item.wait_seconds)),
        el("td", {}, channelLabel(item.channel)),
        el("td", {}, item.verification_level ? `level ${item.verification_level}` : "not verified"),
        el("td", {}, item.summary),
        el("td", {}, el("a", { href: link, class: "open" }, "Open")),
      ));
    }
    document.getElementById("queue-empty").hidden = body.items.length > 0;
    const online = body.operators_online;
    document.getElementById("operators-online").textContent =
      online.length ? `Available: ${online.join(", ")}` : "No operator is available";
  }

  function tick() {
    for (const cell of document.querySelectorAll("#queue td.wait")) {
      const seconds = Math.max(0, Math.round((Date.now() - Date.parse(cell.dataset.requested)) / 1000));
      cell.textContent = minutes(seconds);
    }
  }

  async function setAvailable(on) {
    const error = document.getElementById("queue-error");
    error.hidden = true;
    try {
      await post("/console/api/presence", { available: on });
    } catch (e) {
      Console.showError(error, e);
    }
    window.clearInterval(heartbeat);
    heartbeat = on ? window.setInterval(() => post("/console/api/presence", { available: true }), HEARTBEAT_MS) : null;
  }

  function listen() {
    const source = new EventSource(withQuery("/console/api/queue/stream", [maskParam()]));
    source.addEventListener("queue", (e) => render(JSON.parse(e.data)));
  }

  document.addEventListener("DOMContentLoaded", () => {
    const box = document.getElementById("available");
    box.addEventListener("change", () => setAvailable(box.checked));
    window.addEventListener("pagehide", () => {
      if (box.checked) navigator.sendBeacon("/console/api/presence",
        new Blob([JSON.stringify({ available: false })], { type: "application/json" }));
    });
    listen();
    window.setInterval(tick, 1000);
  });
})();

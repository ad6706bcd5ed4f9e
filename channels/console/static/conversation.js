// One conversation: a time axis with lanes per leg, the event table, the envelope of the
// selected event, the hash-chain check and the point-in-time replay slider.
"use strict";
(() => {
  const { el, getJSON, maskParam, withQuery, formatTime, formatOffset, channelLabel } = Console;
  const SVG = "http://www.w3.org/2000/svg";
  const conversationId = decodeURIComponent(window.location.pathname.replace(/^\/console\/conversations\//, ""));
  const api = `/console/api/conversations/${encodeURIComponent(conversationId)}`;
  let timeline = null;
  let selected = null;
  let broken = null;

  function svg(tag, attrs = {}) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
    return node;
  }

  async function load() {
    const error = document.getElementById("timeline-error");
    error.hidden = true;
    try {
      timeline = await getJSON(withQuery(`${api}/timeline`, [maskParam()]));
    } catch (e) {
      Console.showError(error, e);
      return;
    }
    renderFacts();
    renderTable();
    renderOverview();
    setUpSlider();
    if (broken !== null) markBroken(broken);
    if (selected !== null) select(selected, false);
  }

  function renderFacts() {
    const t = timeline;
    const channels = t.lanes.filter((l) => l.id !== "conversation").map((l) => channelLabel(l.channel));
    document.getElementById("conversation-facts").textContent =
      `${t.events.length} events · ${t.lanes.length} lanes (${channels.join(" → ") || "no legs"}) · ` +
      `${formatTime(t.started_at)} to ${formatTime(t.ended_at)}` +
      (t.masked ? " · personal data masked" : "");
  }

  function laneHeader(lane) {
    const bits = [lane.id === "conversation" ? "no leg" : lane.id];
    if (lane.transport_ref) bits.push(lane.transport_ref);
    if (lane.opened_at) bits.push(`opened ${formatTime(lane.opened_at)}`);
    if (lane.closed_at) bits.push(`closed ${formatTime(lane.closed_at)}`);
    return el("th", { scope: "col", class: `lane lane-${lane.channel}`, "data-lane": lane.id, "data-channel": lane.channel },
      el("span", { class: "lane-channel", text: channelLabel(lane.channel) }),
      el("span", { class: "lane-meta", text: bits.join(" · ") }));
  }

  function renderTable() {
    const head = document.querySelector("#timeline thead tr");
    head.replaceChildren(
      el("th", { scope: "col", text: "Pos" }),
      el("th", { scope: "col", text: "Time" }),
      ...timeline.lanes.map(laneHeader));
    const rows = timeline.events.map((event) => {
      const lane = timeline.lanes.find((l) => l.id === event.lane);
      const flags = event.flags.map((f) => el("span", { class: `flag flag-${f}`, text: f }));
      const card = el("button", {
        type: "button",
        class: `event kind-${event.kind}`,
        "data-position": event.position,
        "aria-label": `${event.position}: ${event.type} on ${channelLabel(lane ? lane.channel : event.lane)}: ${event.summary}`,
        onclick: () => select(event.position, true),
      }, el("span", { class: "event-type", text: event.type }), ...flags,
         el("span", { class: "event-summary", text: event.summary }));
      const cells = timeline.lanes.map((l) => el("td", { "data-lane": l.id }, l.id === event.lane ? card : null));
      const classes = ["event-row", `row-${event.kind}`];
      if (event.kind === "handoff") classes.push("handoff-marker");
      return el("tr", {
        class: classes.join(" "),
        "data-position": event.position,
        "data-type": event.type,
        "data-lane": event.lane,
      },
        el("th", { scope: "row", text: String(event.position) }),
        el("td", { class: "time" },
          event.occurred_at ? el("time", { datetime: event.occurred_at, text: formatTime(event.occurred_at) }) : "—",
          el("span", { class: "offset", text: formatOffset(event.offset_ms) })),
        ...cells);
    });
    document.querySelector("#timeline tbody").replaceChildren(...rows);
    document.getElementById("export").href = `${api}/audit.jsonl`;
  }

  function renderOverview() {
    const box = document.getElementById("overview");
    const timed = timeline.events.filter((e) => e.occurred_at);
    const lanes = timeline.lanes;
    const width = 1000, laneHeight = 28, left = 150, right = 20, top = 10;
    const height = top + lanes.length * laneHeight + 30;
    const times = timed.map((e) => Date.parse(e.occurred_at));
    const t0 = Math.min(...times), t1 = Math.max(...times);
    const span = Math.max(t1 - t0, 1);
    const x = (iso) => left + ((Date.parse(iso) - t0) / span) * (width - left - right);
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "overview-svg",
      "aria-label": `Time axis from ${formatTime(timeline.started_at)} to ${formatTime(timeline.ended_at)}, one row per leg` });
    lanes.forEach((lane, i) => {
      const y = top + i * laneHeight + laneHeight / 2;
      root.append(svg("line", { x1: left, x2: width - right, y1: y, y2: y, class: `lane-line lane-${lane.channel}` }));
      const label = svg("text", { x: 4, y: y + 4, class: "lane-label" });
      label.textContent = channelLabel(lane.channel);
      root.append(label);
    });
    for (const marker of timeline.handoff_markers) {
      const mx = x(marker.occurred_at);
      const line = svg("line", { x1: mx, x2: mx, y1: top, y2: top + lanes.length * laneHeight, class: "handoff-line", "data-position": marker.position });
      const title = svg("title");
      title.textContent = `handoff ${marker.step} (${marker.handoff_id})`;
      line.append(title);
      root.append(line);
    }
    for (const event of timed) {
      const i = lanes.findIndex((l) => l.id === event.lane);
      const dot = svg("circle", { cx: x(event.occurred_at), cy: top + i * laneHeight + laneHeight / 2, r: 6,
        class: `dot kind-${event.kind}`, "data-position": event.position });
      const title = svg("title");
      title.textContent = `${event.position}: ${event.summary}`;
      dot.append(title);
      dot.addEventListener("click", () => select(event.position, true));
      root.append(dot);
    }
    const axisY = top + lanes.length * laneHeight + 18;
    for (const [pos, anchor, iso] of [[left, "start", timeline.started_at], [width - right, "end", timeline.ended_at]]) {
      const tick = svg("text", { x: pos, y: axisY, "text-anchor": anchor, class: "axis-label" });
      tick.textContent = formatTime(iso);
      root.append(tick);
    }
    box.replaceChildren(root);
  }

  function select(position, focus) {
    selected = position;
    const event = timeline.events.find((e) => e.position === position);
    document.querySelectorAll(".selected").forEach((n) => n.classList.remove("selected"));
    document.querySelectorAll(`[data-position="${position}"]`).forEach((n) => n.classList.add("selected"));
    if (!event) return;
    const env = event.envelope;
    document.getElementById("details-hint").hidden = true;
    document.getElementById("details-hashes").hidden = false;
    document.getElementById("details-position").textContent = String(event.position);
    document.getElementById("details-type").textContent = event.type;
    document.getElementById("details-hash").textContent = env ? env.hash : "(unreadable)";
    document.getElementById("details-prev-hash").textContent = env ? env.prev_hash : "(unreadable)";
    document.getElementById("details-masked").hidden = !timeline.masked;
    const pre = document.getElementById("details-envelope");
    pre.textContent = env ? JSON.stringify(env, null, 2) : event.summary;
    pre.hidden = false;
    if (focus) document.getElementById("details").focus();
  }

  function markBroken(position) {
    document.querySelectorAll(".broken").forEach((n) => n.classList.remove("broken"));
    const row = document.querySelector(`tr[data-position="${position}"]`);
    if (!row) return;
    row.classList.add("broken");
    row.setAttribute("aria-invalid", "true");
    const card = row.querySelector("button.event");
    if (card && !card.querySelector(".flag-broken")) {
      card.append(el("span", { class: "flag flag-broken", text: "chain broken here" }));
    }
    row.scrollIntoView({ block: "center" });
  }

  async function verify() {
    const out = document.getElementById("verify-result");
    const button = document.getElementById("verify");
    out.className = "";
    out.textContent = "Verifying…";
    button.disabled = true;
    try {
      const report = await getJSON(`${api}/verify`);
      if (report.ok) {
        broken = null;
        document.querySelectorAll(".broken").forEach((n) => n.classList.remove("broken"));
        out.className = "ok";
        out.textContent = `Chain intact: ${report.checked} events verify.`;
      } else {
        broken = report.first_broken;
        out.className = "bad";
        out.textContent = `Chain broken at position ${report.first_broken}: ${report.reason}`;
        markBroken(report.first_broken);
        select(report.first_broken, false);
      }
    } catch (e) {
      out.className = "bad";
      out.textContent = `Verification could not run: ${e.message}`;
    } finally {
      button.disabled = false;
    }
  }

  function setUpSlider() {
    const slider = document.getElementById("replay-slider");
    const max = timeline.version;
    const keep = slider.dataset.ready ? Math.min(Number(slider.value), max) : max;
    slider.max = String(max);
    slider.value = String(keep);
    slider.dataset.ready = "1";
    applyReplay(keep, false);
  }

  let replayTimer = null;
  let replaySeq = 0;

  function applyReplay(position, fetchState = true) {
    document.getElementById("replay-position").textContent = `${position} of ${timeline.version}`;
    document.querySelectorAll("#timeline tbody tr").forEach((row) => {
      row.classList.toggle("future", Number(row.dataset.position) > position);
    });
    document.querySelectorAll("#overview circle.dot, #overview line.handoff-line").forEach((node) => {
      node.classList.toggle("future", Number(node.dataset.position) > position);
    });
    clearTimeout(replayTimer);
    replayTimer = setTimeout(() => loadAsOf(position), fetchState ? 150 : 0);
  }

  async function loadAsOf(position) {
    const seq = ++replaySeq;
    const box = document.getElementById("as-of");
    let state;
    try {
      state = await getJSON(withQuery(`${api}/as-of?position=${position}`, [maskParam()]));
    } catch (e) {
      if (seq === replaySeq) box.replaceChildren(el("p", { class: "error", text: `Replay unavailable: ${e.message}` }));
      return;
    }
    if (seq !== replaySeq) return; // a newer slider position won
    box.dataset.position = String(state.position);
    box.replaceChildren(...Object.entries(state.projections).map(([name, value]) =>
      el("details", { open: name === "transcript", "data-projection": name },
        el("summary", { text: `${name} as of position ${state.position}` }),
        renderProjection(name, value))));
  }

  function renderProjection(name, value) {
    const lines = name === "transcript" && value && Array.isArray(value.entries) ? value.entries : null;
    if (lines) {
      return el("ol", { class: "transcript" }, ...lines.map((line) =>
        el("li", { "data-position": line.position },
          el("span", { class: "who", text: `${line.role || line.kind || ""} (${channelLabel(line.channel || "")})` }),
          " ", el("span", { text: line.text || line.summary || JSON.stringify(line) }))));
    }
    return el("pre", { text: JSON.stringify(value, null, 2) });
  }

  document.addEventListener("DOMContentLoaded", async () => {
    document.getElementById("conversation-id").textContent = conversationId;
    document.title = `${conversationId} · Threadline console`;
    document.getElementById("verify").addEventListener("click", verify);
    document.getElementById("replay-slider").addEventListener("input", (e) => applyReplay(Number(e.target.value)));
    await Console.initHeader({ onMaskChange: load });
    await load();
  });
})();

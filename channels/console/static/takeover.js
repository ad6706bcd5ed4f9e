// Taking a conversation over: what the AI knew (the agent-context projection and its
// summary) first, then join, talk to the visitor live, hand back.
"use strict";
(() => {
  const { el, getJSON, maskParam, withQuery } = Console;
  const id = decodeURIComponent(window.location.pathname.split("/").pop());
  const api = (suffix) => `/console/api/conversations/${encodeURIComponent(id)}${suffix}`;
  let me = null;
  let call = null; // the operator's RTCPeerConnection while on the visitor's voice call
  let onVoice = false; // the visitor has a live voice leg
  let voiceLeg = null;
  let calling = false; // this operator offered the visitor a call: join it when it opens

  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Console.ApiError(response.status, data.detail || `HTTP ${response.status}`);
    return data;
  }

  function fact(list, term, value) {
    list.append(el("dt", {}, term), el("dd", {}, value === null || value === undefined || value === "" ? "—" : value));
  }

  function showHolder(holder) {
    document.getElementById("holder").textContent =
      holder ? (holder === me ? "You hold this conversation; the AI is silent." : `${holder} holds this conversation.`)
        : "The AI holds this conversation.";
    document.getElementById("join").hidden = holder === me;
    document.getElementById("leave").hidden = holder !== me;
    document.getElementById("operator-form").hidden = holder !== me;
    showCall(holder === me);
  }

  function showCall(holding) {
    document.getElementById("join-call").hidden = !(holding && onVoice && !call);
    document.getElementById("call-visitor").hidden = !(holding && !onVoice && !call) || calling;
    document.getElementById("leave-call").hidden = !call;
  }

  // Joining the visitor's voice call: the microphone goes to the visitor through the
  // server's bridge (channels/voice/bridge.py); the AI leaves the call meanwhile.
  async function joinCall() {
    const mic = await navigator.mediaDevices.getUserMedia({ audio: true });
    const pc = new RTCPeerConnection();
    mic.getTracks().forEach((t) => pc.addTrack(t, mic));
    pc.ontrack = (e) => { document.getElementById("call-audio").srcObject = e.streams[0] || new MediaStream([e.track]); };
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") return resolve();
      pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
      setTimeout(resolve, 3000);
    });
    try {
      const answer = await post(api("/call"), { sdp: pc.localDescription.sdp, type: "offer" });
      await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    } catch (e) {
      pc.close();
      mic.getTracks().forEach((t) => t.stop());
      throw e;
    }
    call = pc;
    window.operatorCall = pc; // for getStats in the e2e test
    showCall(true);
  }

  async function leaveCall() {
    const pc = call;
    call = null;
    try {
      await fetch(api("/call"), { method: "DELETE", credentials: "same-origin" });
    } finally {
      if (pc) {
        pc.getSenders().forEach((s) => s.track && s.track.stop());
        pc.close();
      }
      showCall(true);
    }
  }

  async function loadContext() {
    const body = await getJSON(withQuery(api("/holder"), [maskParam()]));
    document.getElementById("handoff-summary").textContent = body.summary;
    const list = document.getElementById("agent-context");
    list.replaceChildren();
    const ctx = body.context;
    fact(list, "Topic", ctx.topic && ctx.topic.phrase);
    fact(list, "Facts", (ctx.entities || []).map((e) => `${e.kind}: ${e.text}`).join("; "));
    fact(list, "Open questions", (ctx.open_questions || []).join(" / "));
    const v = ctx.verification || {};
    fact(list, "Verification", v.level ? `level ${v.level} (${v.method || "?"})` : "not verified");
    showHolder(body.holder);
  }

  function line(item) {
    const d = item.data;
    const thread = document.getElementById("live-thread");
    let node = null;
    if (item.type === "MessagePosted" || item.type === "UtteranceTranscribed") {
      const who = d.role === "operator" ? (item.actor || "operator").replace(/^operator:/, "") : d.role;
      node = el("li", { class: `role-${d.role}`, "data-position": item.position }, `${who}: ${d.text}`);
    } else if (item.type === "AgentSpoke") {
      node = el("li", { class: "role-agent", "data-position": item.position }, `agent (voice): ${d.text}`);
    } else if (item.type === "OperatorJoined") {
      node = el("li", { class: "note" }, `${d.display_name || d.operator} joined`);
      showHolder(d.operator);
    } else if (item.type === "OperatorLeft") {
      node = el("li", { class: "note" }, `${d.operator} handed back to the AI`);
      showHolder(null);
    } else if (item.type === "LegOpened" || item.type === "LegClosed") {
      if (item.type === "LegOpened" && d.channel === "webrtc") voiceLeg = item.leg_id;
      else if (item.type === "LegClosed" && item.leg_id === voiceLeg) voiceLeg = null;
      onVoice = voiceLeg !== null;
      const holding = !document.getElementById("operator-form").hidden;
      if (item.type === "LegOpened" && onVoice && calling && holding && !call) {
        calling = false; // the visitor took the call this operator offered: join it now
        act(joinCall);
      }
      showCall(holding);
    } else if (item.type === "OperatorJoinedCall") {
      node = el("li", { class: "note" }, `${d.operator} joined the voice call; the AI left it`);
    } else if (item.type === "OperatorLeftCall") {
      node = el("li", { class: "note" }, `${d.operator} left the voice call`);
    } else if (item.type === "HandoffOffered" && d.reason === "operator_call") {
      node = el("li", { class: "note" }, `${(item.actor || "").replace(/^operator:/, "")} offered the visitor a call`);
    } else if (item.type === "HumanRequested") {
      node = el("li", { class: "note" }, `asked for a person (${d.reason})`);
    }
    if (node) {
      thread.append(node);
      thread.scrollTop = thread.scrollHeight;
    }
  }

  function listen() {
    const source = new EventSource(withQuery(api("/live"), [maskParam()]));
    source.addEventListener("thread", (e) => line(JSON.parse(e.data)));
  }

  async function act(fn) {
    const error = document.getElementById("takeover-error");
    error.hidden = true;
    try {
      await fn();
    } catch (e) {
      Console.showError(error, e);
      await loadContext().catch(() => {});
    }
  }

  document.addEventListener("DOMContentLoaded", async () => {
    me = (await getJSON("/console/api/me")).operator;
    await loadContext().catch((e) => Console.showError(document.getElementById("takeover-error"), e));
    listen();
    document.getElementById("join").addEventListener("click", () => act(() => post(api("/join"))));
    document.getElementById("leave").addEventListener("click", () => act(() => post(api("/leave"))));
    document.getElementById("join-call").addEventListener("click", () => act(joinCall));
    document.getElementById("call-visitor").addEventListener("click", () => act(async () => {
      calling = true;
      showCall(true);
      try {
        await post(api("/call-visitor"));
      } catch (e) {
        calling = false;
        showCall(true);
        throw e;
      }
    }));
    document.getElementById("leave-call").addEventListener("click", () => act(leaveCall));
    document.getElementById("read-summary").addEventListener("click", () => {
      const text = document.getElementById("handoff-summary").textContent;
      if (window.speechSynthesis && text) window.speechSynthesis.speak(new SpeechSynthesisUtterance(text));
    });
    document.getElementById("operator-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const input = document.getElementById("operator-text");
      const text = input.value.trim();
      if (!text) return;
      act(async () => {
        await post(api("/messages"), { text });
        input.value = "";
      });
    });
  });
})();

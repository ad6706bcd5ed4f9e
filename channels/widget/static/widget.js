/* Threadline chat widget. Embed with one tag:
 *   <script src="https://YOUR-THREADLINE/widget.js" defer></script>
 * Optional attributes: data-target="#element-id" (mount inside it instead of a floating
 * panel), data-modules="voice" (extra modules served at /widget/NAME.js).
 *
 * The thread is rendered only from the conversation's event stream (SSE, resumed with
 * Last-Event-ID), so chat and voice turns appear in one ordered thread whatever leg wrote
 * them. Other modules hook in through window.Threadline: on(name, fn), client, ui.
 */
(function () {
  "use strict";
  if (window.Threadline && window.Threadline.loaded) return;

  var script = document.currentScript;
  var base = script ? new URL(script.src, location.href).origin : location.origin;
  var storeKey = "threadline:" + base;
  var listeners = {};

  function on(name, fn) { (listeners[name] = listeners[name] || []).push(fn); }
  function emit(name, detail) {
    (listeners[name] || []).forEach(function (fn) {
      try { fn(detail); } catch (err) { console.error("threadline listener", name, err); }
    });
    document.dispatchEvent(new CustomEvent("threadline:" + name, { detail: detail }));
  }

  /* ---------- client: conversation, authenticated calls, event stream ---------- */
  var client = {
    base: base,
    conversationId: null,
    legId: null,
    token: null,
    lastPosition: 0,

    load: function () {
      try {
        var saved = JSON.parse(sessionStorage.getItem(storeKey) || "null");
        if (saved && saved.conversationId && saved.token) {
          client.conversationId = saved.conversationId;
          client.legId = saved.legId;
          client.token = saved.token;
        }
      } catch (err) { /* storage disabled: start fresh */ }
    },
    save: function () {
      try {
        sessionStorage.setItem(storeKey, JSON.stringify({
          conversationId: client.conversationId, legId: client.legId, token: client.token
        }));
      } catch (err) { /* storage disabled */ }
    },
    forget: function () {
      client.conversationId = client.token = client.legId = null;
      client.lastPosition = 0;
      try { sessionStorage.removeItem(storeKey); } catch (err) { /* ignore */ }
    },
    api: function (path, options) {
      options = options || {};
      var headers = { "Accept": "application/json" };
      if (options.body !== undefined) headers["Content-Type"] = "application/json";
      if (client.token) headers["Authorization"] = "Bearer " + client.token;
      return fetch(base + path, {
        method: options.method || "GET",
        headers: headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body)
      }).then(function (res) {
        return res.text().then(function (text) {
          var data = null;
          try { data = text ? JSON.parse(text) : null; } catch (err) { data = null; }
          if (!res.ok) {
            var error = new Error((data && data.detail) || ("HTTP " + res.status));
            error.status = res.status;
            error.body = data;
            throw error;
          }
          return data;
        });
      });
    },
    start: function () {
      if (client.conversationId) return Promise.resolve();
      return client.api("/v1/conversations", { method: "POST", body: { channel: "chat" } })
        .then(function (data) {
          client.conversationId = data.conversation_id;
          client.legId = data.leg_id;
          client.token = data.visitor_token;
          client.save();
          emit("conversation", { conversationId: client.conversationId });
        });
    },
    path: function (suffix) {
      return "/v1/conversations/" + encodeURIComponent(client.conversationId) + suffix;
    },
    send: function (text) {
      return client.api(client.path("/messages"), {
        method: "POST",
        body: { text: text, message_id: uuid4() }
      });
    },
    catchUp: function () {
      /* Reads what the stream may not have delivered yet (e.g. while reconnecting). */
      return client.api(client.path("/events?after=" + client.lastPosition + "&limit=1000"))
        .then(function (page) { page.events.forEach(deliver); });
    }
  };

  function uuid4() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); });
    return h.slice(0, 4).join("") + "-" + h.slice(4, 6).join("") + "-" + h.slice(6, 8).join("") +
      "-" + h.slice(8, 10).join("") + "-" + h.slice(10).join("");
  }

  function deliver(event) {
    if (event.position <= client.lastPosition) return; /* already shown */
    client.lastPosition = event.position;
    emit("event", event);
  }

  /* SSE over fetch (EventSource cannot send an Authorization header, and a token in the URL
   * would end up in access logs). Reconnects with Last-Event-ID and backoff. */
  var stream = { controller: null, retryMs: 1000, stopped: false, connected: false };

  function connect() {
    if (stream.stopped || !client.conversationId) return;
    var controller = new AbortController();
    stream.controller = controller;
    var headers = { "Accept": "text/event-stream", "Authorization": "Bearer " + client.token };
    if (client.lastPosition > 0) headers["Last-Event-ID"] = String(client.lastPosition);
    fetch(base + client.path("/stream"), { headers: headers, signal: controller.signal })
      .then(function (res) {
        if (res.status === 401 || res.status === 403 || res.status === 404) {
          /* token expired or conversation gone: start over on the next message */
          client.forget();
          setConnected(false);
          stream.stopped = true;
          return;
        }
        if (!res.ok || !res.body) throw new Error("stream HTTP " + res.status);
        setConnected(true);
        stream.retryMs = 1000;
        return readSse(res.body.getReader());
      })
      .catch(function (err) {
        if (controller.signal.aborted) return;
        console.warn("threadline stream", err);
      })
      .then(function () {
        setConnected(false);
        if (stream.stopped || controller.signal.aborted) return;
        var wait = stream.retryMs;
        stream.retryMs = Math.min(stream.retryMs * 2, 15000);
        setTimeout(connect, wait);
      });
  }

  function readSse(reader) {
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) return;
        buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, "\n");
        var cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          handleFrame(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
        }
        return pump();
      });
    }
    return pump();
  }

  function handleFrame(frame) {
    var data = [];
    frame.split("\n").forEach(function (line) {
      if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
      else if (line.indexOf("retry:") === 0) {
        var ms = parseInt(line.slice(6), 10);
        if (ms > 0) stream.retryMs = ms;
      }
    });
    if (!data.length) return;
    try { deliver(JSON.parse(data.join("\n"))); } catch (err) { console.warn("bad frame", err); }
  }

  function setConnected(value) {
    if (stream.connected === value) return;
    stream.connected = value;
    emit("connection", { connected: value });
  }

  /* ---------- UI ---------- */
  var css = [
    ".tl-widget{font:15px/1.4 system-ui,sans-serif;color:#1a1a1a;background:#fff;",
    "border:1px solid #767676;border-radius:8px;display:flex;flex-direction:column;",
    "width:360px;max-width:100%;height:480px;box-sizing:border-box}",
    ".tl-floating{position:fixed;right:16px;bottom:16px;box-shadow:0 4px 16px rgba(0,0,0,.2)}",
    ".tl-head{padding:8px 12px;border-bottom:1px solid #ccc;display:flex;",
    "justify-content:space-between;align-items:center}",
    ".tl-head h2{font-size:16px;margin:0}",
    ".tl-status{font-size:12px;color:#555}",
    ".tl-thread{flex:1;overflow-y:auto;padding:8px 12px;margin:0;list-style:none}",
    ".tl-msg{margin:6px 0;padding:6px 10px;border-radius:8px;max-width:85%;white-space:pre-wrap;",
    "word-wrap:break-word}",
    ".tl-visitor{background:#0b57d0;color:#fff;margin-left:auto}",
    ".tl-agent,.tl-human{background:#eef0f3}",
    ".tl-operator{background:#e6f4ea}",
    ".tl-system{background:none;color:#555;font-size:12px;text-align:center;max-width:100%}",
    ".tl-channel{display:block;font-size:11px;opacity:.8}",
    ".tl-typing{min-height:18px;padding:0 12px;font-size:12px;color:#555}",
    ".tl-voice{margin:0 12px 8px;padding:8px;font:inherit;background:#146c2e;color:#fff;",
    "border:0;border-radius:6px;cursor:pointer}",
    ".tl-form{display:flex;gap:6px;padding:8px;border-top:1px solid #ccc}",
    ".tl-form input{flex:1;font:inherit;padding:6px;border:1px solid #767676;border-radius:4px}",
    ".tl-form button{font:inherit;padding:6px 12px;border:0;border-radius:4px;",
    "background:#0b57d0;color:#fff;cursor:pointer}",
    ".tl-form button:disabled{background:#767676}",
    ".tl-widget :focus-visible{outline:3px solid #f9ab00;outline-offset:2px}",
    ".tl-sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}"
  ].join("");

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  var ui = {};

  function build() {
    var style = el("style");
    style.textContent = css;
    document.head.appendChild(style);
    var targetSel = script && script.getAttribute("data-target");
    var target = targetSel ? document.querySelector(targetSel) : null;
    var root = el("section", { "class": "tl-widget" + (target ? "" : " tl-floating"),
      "aria-label": "Chat with us", "data-threadline": "widget" });
    var head = el("div", { "class": "tl-head" });
    head.appendChild(el("h2", {}, "Chat with us"));
    ui.status = el("span", { "class": "tl-status", "role": "status" }, "Not connected");
    head.appendChild(ui.status);
    ui.thread = el("ol", { "class": "tl-thread", "role": "log", "aria-live": "polite",
      "aria-label": "Conversation", "tabindex": "0" });
    ui.typing = el("div", { "class": "tl-typing", "aria-live": "polite" });
    ui.voice = el("button", { "type": "button", "class": "tl-voice", "hidden": "" },
      "Switch to voice");
    ui.form = el("form", { "class": "tl-form" });
    var label = el("label", { "for": "tl-input", "class": "tl-sr" }, "Your message");
    ui.input = el("input", { "id": "tl-input", "type": "text", "autocomplete": "off",
      "maxlength": "4000", "placeholder": "Type a message…" });
    ui.send = el("button", { "type": "submit" }, "Send");
    ui.form.appendChild(label);
    ui.form.appendChild(ui.input);
    ui.form.appendChild(ui.send);
    [head, ui.thread, ui.typing, ui.voice, ui.form].forEach(function (n) { root.appendChild(n); });
    (target || document.body).appendChild(root);
    ui.root = root;
    ui.form.addEventListener("submit", onSubmit);
    ui.voice.addEventListener("click", onVoice);
  }

  function addLine(kind, text, channel, position, who) {
    var item = el("li", { "class": "tl-msg tl-" + kind, "data-position": String(position) });
    if (channel && kind !== "system") {
      item.appendChild(el("span", { "class": "tl-channel" }, (who ||
        ({ visitor: "You", agent: "Agent", human: "Advisor", operator: "Advisor" }[kind] || kind)) +
        " · " + channel));
    }
    item.appendChild(document.createTextNode(text));
    ui.thread.appendChild(item);
    ui.thread.scrollTop = ui.thread.scrollHeight;
    return item;
  }

  var offer = null; /* the handoff currently offered, if any */
  var legs = {}; /* leg id -> channel, from LegOpened */
  var channelNames = { chat: "chat", webrtc: "voice", pstn: "phone", sms: "SMS",
    whatsapp: "WhatsApp" };

  function channelOf(event, fallback) {
    var channel = (event.leg_id && legs[event.leg_id]) || fallback;
    return channelNames[channel] || channel;
  }

  function render(event) {
    var d = event.data || {};
    switch (event.type) {
      case "LegOpened":
        if (event.leg_id) legs[event.leg_id] = d.channel;
        break;
      case "MessagePosted":
        /* a person's words carry their name (the actor "operator:NAME") */
        addLine(d.role, d.text, channelOf(event, "chat"), event.position,
          d.role === "operator" && event.actor ? event.actor.replace(/^operator:/, "") : null);
        break;
      case "OperatorJoined":
        addLine("system", (d.display_name || d.operator) + " joined the conversation", null,
          event.position);
        break;
      case "OperatorLeft":
        addLine("system", d.operator + " handed you back to the assistant", null, event.position);
        break;
      case "UtteranceTranscribed":
        /* the operator's words on a call are transcribed too, under their name */
        addLine(d.role, d.text, channelOf(event, "webrtc"), event.position,
          d.role === "operator" && event.actor ? event.actor.replace(/^operator:/, "") : null);
        break;
      case "AgentSpoke":
        addLine("agent", d.interrupted && d.spoken_text ? d.spoken_text : d.text,
          channelOf(event, "webrtc"), event.position);
        break;
      case "HandoffOffered":
        offer = d.handoff_id;
        ui.voice.hidden = false;
        ui.voice.disabled = false;
        if (d.reason === "operator_call") {
          /* A person from the team offers a call with them (not with the assistant). */
          var caller = event.actor ? event.actor.replace(/^operator:/, "") : "our team";
          ui.voice.textContent = "Take the call with " + caller;
          addLine("system", caller + " would like to call you", null, event.position);
        } else {
          ui.voice.textContent = "Switch to voice";
        }
        break;
      case "HandoffAccepted":
        ui.voice.disabled = true;
        ui.voice.textContent = "Connecting voice…";
        break;
      case "HandoffCompleted":
        ui.voice.hidden = true;
        addLine("system", "Voice call connected", null, event.position);
        break;
      case "HandoffExpired":
      case "HandoffDeclined":
        if (offer === d.handoff_id) { offer = null; ui.voice.hidden = true; }
        break;
      case "LegClosed":
        if (event.leg_id && event.leg_id !== client.legId) {
          addLine("system", "Voice call ended", null, event.position);
        }
        break;
      default:
        break;
    }
  }

  function setTyping(on) {
    ui.typing.textContent = on ? "Agent is typing…" : "";
    ui.send.disabled = on;
  }

  function onSubmit(e) {
    e.preventDefault();
    var text = ui.input.value.trim();
    if (!text) return;
    ui.input.value = "";
    setTyping(true);
    client.start()
      .then(function () {
        if (!stream.controller) { stream.stopped = false; connect(); }
        return client.send(text);
      })
      .then(function () { return client.catchUp(); })
      .catch(function (err) {
        if (err.status === 401 || err.status === 403 || err.status === 404) client.forget();
        addLine("system", "Message not sent: " + err.message, null, 0);
        ui.input.value = text;
      })
      .then(function () { setTyping(false); ui.input.focus(); });
  }

  function onVoice() {
    if (!offer) return;
    ui.voice.disabled = true;
    var handoffId = offer;
    client.api(client.path("/handoffs"), { method: "POST", body: { handoff_id: handoffId } })
      .then(function (result) {
        emit("handoff-accepted", { handoffId: handoffId, result: result });
      })
      .catch(function (err) {
        ui.voice.disabled = false;
        addLine("system", "Could not switch to voice: " + err.message, null, 0);
      });
  }

  function loadModules() {
    var names = ((script && script.getAttribute("data-modules")) || "").split(/[\s,]+/);
    names.filter(Boolean).forEach(function (name) {
      var tag = document.createElement("script");
      tag.src = base + "/widget/" + encodeURIComponent(name) + ".js";
      tag.defer = true;
      document.head.appendChild(tag);
    });
  }

  /* The status line says what the chat stream is doing; modules that borrow it (a voice
   * call) hand it back through this, so it never claims "Connected" while the stream is down. */
  function showConnection() {
    ui.status.textContent = stream.connected ? "Connected" :
      (client.conversationId ? "Reconnecting…" : "Not connected");
  }

  function init() {
    build();
    on("event", render);
    on("connection", showConnection);
    client.load();
    if (client.conversationId) connect();
    loadModules();
  }

  window.Threadline = {
    loaded: true, on: on, emit: emit, client: client, ui: ui, showConnection: showConnection,
    reconnect: function () {
      if (stream.controller) stream.controller.abort();
      stream.controller = null;
      stream.stopped = false;
      connect();
    }
  };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();

// Shared by every console page: the header (operator, mask toggle, sign out), JSON fetching
// with clear errors, and small DOM helpers. Text always goes in through textContent.
"use strict";

const Console = (() => {
  const MASK_KEY = "threadline.console.mask";

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  async function getJSON(path) {
    const response = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (response.status === 401) {
      window.location.reload(); // the page itself answers with the login form
      throw new ApiError(401, "signed out");
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new ApiError(response.status, typeof body.detail === "string" ? body.detail : `HTTP ${response.status}`);
    }
    return body;
  }

  function masked() {
    const stored = window.localStorage.getItem(MASK_KEY);
    return stored === null ? null : stored === "true";
  }

  function maskParam() {
    const value = masked();
    return value === null ? "" : `mask=${value}`;
  }

  function withQuery(path, params) {
    const parts = params.filter(Boolean);
    return parts.length ? `${path}${path.includes("?") ? "&" : "?"}${parts.join("&")}` : path;
  }

  function formatTime(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  }

  function formatOffset(ms) {
    if (ms === null || ms === undefined) return "";
    const total = Math.round(ms / 1000);
    const m = Math.floor(total / 60);
    const s = String(total % 60).padStart(2, "0");
    return `+${m}:${s}`;
  }

  const CHANNEL_LABELS = {
    chat: "Chat",
    webrtc: "Voice (WebRTC)",
    sms: "SMS",
    whatsapp: "WhatsApp",
    pstn: "Phone (PSTN)",
    conversation: "Conversation",
    unknown: "Unknown channel",
  };

  function channelLabel(channel) {
    return CHANNEL_LABELS[channel] || channel;
  }

  let onMaskChange = () => {};

  async function initHeader(options = {}) {
    onMaskChange = options.onMaskChange || onMaskChange;
    const me = await getJSON("/console/api/me");
    document.getElementById("operator-name").textContent = me.operator;
    const toggle = document.getElementById("mask-toggle");
    toggle.checked = masked() === null ? me.mask_pii_by_default : masked();
    window.localStorage.setItem(MASK_KEY, String(toggle.checked));
    toggle.addEventListener("change", () => {
      window.localStorage.setItem(MASK_KEY, String(toggle.checked));
      onMaskChange(toggle.checked);
    });
    document.getElementById("logout").addEventListener("click", async () => {
      await fetch("/console/api/logout", { method: "POST", credentials: "same-origin" });
      window.location.assign("/console");
    });
    return me;
  }

  function showError(target, error) {
    target.textContent = error instanceof ApiError ? error.message : `Unexpected error: ${error}`;
    target.hidden = false;
  }

  return { el, getJSON, maskParam, withQuery, formatTime, formatOffset, channelLabel, initHeader, showError, ApiError };
})();

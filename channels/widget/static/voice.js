/* Threadline widget module: the WebRTC voice leg (loaded with data-modules="voice").
 *
 * When the visitor accepts the switch to voice, the widget emits "handoff-accepted" with a
 * handoff token; this module opens the microphone, sends the browser's SDP offer with the
 * token to POST /v1/voice/sessions, plays the agent's audio and shows a "Back to chat"
 * button (DELETE /v1/voice/sessions/{leg_id}). The voice turns themselves appear in the
 * thread from the conversation's event stream, like every other turn.
 *
 * ?tl_voice_processing=off on the page turns the browser's echo cancellation, noise
 * suppression and gain control off (tests feed synthetic speech, which they garble).
 */
(function () {
  "use strict";
  var T = window.Threadline;
  if (!T || T.voice) return;
  var client = T.client, ui = T.ui;
  var params = new URLSearchParams(location.search);
  var processing = params.get("tl_voice_processing") !== "off";
  /* *At: performance.now() of each step after the click (read by benchmarks.voice). */
  var state = { pc: null, stream: null, legId: null, clickAt: null, firstAudioAt: null,
                connectedAt: null, acceptedAt: null, micAt: null, offerAt: null,
                answerAt: null, audio: null, poll: null };
  T.voice = state;

  var hangup = document.createElement("button");
  hangup.type = "button";
  hangup.className = "tl-voice tl-hangup";
  hangup.hidden = true;
  hangup.textContent = "Back to chat";
  ui.voice.parentNode.insertBefore(hangup, ui.voice.nextSibling);
  ui.voice.addEventListener("click", function () { state.clickAt = performance.now(); }, true);
  hangup.addEventListener("click", function () { stop(true); });

  function waitForIce(pc) {
    /* The server (aiortc) does not trickle candidates: send the offer once gathered. */
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise(function (resolve) {
      var timer = setTimeout(resolve, 2000);
      pc.addEventListener("icegatheringstatechange", function () {
        if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
      });
    });
  }

  function watchFirstAudio(pc) {
    /* Notes when the agent's audio first carries energy (used by tests and benchmarks). */
    state.poll = setInterval(function () {
      pc.getStats().then(function (stats) {
        stats.forEach(function (s) {
          if (s.type === "inbound-rtp" && s.kind === "audio" && s.totalAudioEnergy > 0 &&
              state.firstAudioAt === null) {
            state.firstAudioAt = performance.now();
            clearInterval(state.poll);
            T.emit("voice-audio", { afterClickMs: state.firstAudioAt - state.clickAt });
          }
        });
      });
    }, 10);
  }

  function start(result) {
    var audioOptions = processing ? true :
      { echoCancellation: false, noiseSuppression: false, autoGainControl: false };
    var pc = new RTCPeerConnection({ iceServers: [] });
    state.pc = pc;
    state.acceptedAt = performance.now();
    pc.addEventListener("connectionstatechange", function () {
      if (pc.connectionState === "connected") state.connectedAt = performance.now();
      if (pc.connectionState === "failed" || pc.connectionState === "closed") stop(false);
    });
    pc.addEventListener("track", function (event) {
      var audio = state.audio || document.createElement("audio");
      audio.autoplay = true;
      audio.srcObject = event.streams[0] || new MediaStream([event.track]);
      state.audio = audio;
      var playing = audio.play();
      if (playing && playing.catch) playing.catch(function () { /* autoplay policy */ });
    });
    return navigator.mediaDevices.getUserMedia({ audio: audioOptions })
      .then(function (stream) {
        state.stream = stream;
        state.micAt = performance.now();
        stream.getTracks().forEach(function (track) { pc.addTrack(track, stream); });
        return pc.createOffer();
      })
      .then(function (offer) { return pc.setLocalDescription(offer); })
      .then(function () { return waitForIce(pc); })
      .then(function () {
        state.offerAt = performance.now();
        return client.api("/v1/voice/sessions", { method: "POST", body: {
          handoff_token: result.handoff_token, sdp: pc.localDescription.sdp, type: "offer" } });
      })
      .then(function (answer) {
        state.legId = answer.leg_id;
        state.answerAt = performance.now();
        watchFirstAudio(pc);
        return pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
      })
      .then(function () {
        ui.voice.hidden = true;
        hangup.hidden = false;
        ui.status.textContent = "On a voice call";
        T.emit("voice-started", { legId: state.legId });
      })
      .catch(function (err) {
        stop(false);
        T.emit("voice-failed", { message: err.message });
        var line = document.createElement("li");
        line.className = "tl-msg tl-system";
        /* 503: the server has no working speech provider; the token was not used. */
        line.textContent = err.status === 503 ?
          "Voice calls are not available right now. Let's carry on here in the chat." :
          "Voice is unavailable: " + err.message;
        ui.thread.appendChild(line);
      });
  }

  function stop(tellServer) {
    var legId = state.legId, pc = state.pc, stream = state.stream;
    if (state.poll) clearInterval(state.poll);
    state.stream = null;
    state.legId = null;
    hangup.hidden = true;
    /* Back to the chat stream's own state: the call may have ended because the server went
     * away, and then the stream is reconnecting, not connected. */
    T.showConnection();
    function release() {
      if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
      if (pc && pc.connectionState !== "closed") pc.close();
    }
    /* Hang up on the server first, so the leg closes as "visitor_hangup" rather than as a
     * dropped peer; the media is released either way. */
    if (tellServer && legId) {
      client.api("/v1/voice/sessions/" + encodeURIComponent(legId), { method: "DELETE" })
        .catch(function () { /* the server closes a silent leg by itself */ })
        .then(release);
    } else {
      release();
    }
    T.emit("voice-stopped", { legId: legId });
  }

  T.on("handoff-accepted", function (detail) { start(detail.result); });
})();

// The room page: gets the room, gets or creates its meeting, joins it and mounts the call UI of
// the meeting's platform (daily-js's prebuilt frame, Whereby's <whereby-embed>, or a local
// placeholder for the mock platform), then asks for recording consent when the meeting records
// to the cloud. No framework and no build step: this file is served as written.
"use strict";
(() => {
  const assets = document.body.dataset.assets;
  const roomName = decodeURIComponent(location.pathname.slice(1));
  const $ = (id) => document.getElementById(id);
  const VIEWS = ["loading", "call", "left", "not-found", "error"];
  let unmount = null;
  let meeting = null;
  let joining = false;

  class HttpError extends Error {
    constructor(status, detail) { super(detail); this.status = status; }
  }

  // The current view and whether a join is under way are also on <body> (data-view,
  // data-joining): for styling and for the browser tests to wait on.
  function show(view) {
    for (const name of VIEWS) $("view-" + name).hidden = name !== view;
    document.body.dataset.view = view;
  }

  // localStorage can be disabled or full; the page then works, it just asks again after a reload.
  const stored = {
    get(key) { try { return localStorage.getItem(key); } catch { return null; } },
    set(key, value) { try { localStorage.setItem(key, value); } catch { /* not remembered */ } },
  };

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    // A Reflector web app on the same origin hands its session over here; anonymous otherwise.
    const token = stored.get("reflector.accessToken");
    if (token) headers.Authorization = "Bearer " + token;
    const init = { method, headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch("/v1" + path, init);
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const detail = data && typeof data.detail === "string" ? data.detail : response.statusText;
      throw new HttpError(response.status, detail || "HTTP " + response.status);
    }
    return data;
  }

  const scripts = new Map();
  function loadScript(path) {
    if (!scripts.has(path)) {
      scripts.set(path, new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = `${assets}/${path}`;
        script.onload = resolve;
        script.onerror = () => { scripts.delete(path); reject(new Error("could not load " + path)); };
        document.head.append(script);
      }));
    }
    return scripts.get(path);
  }

  // Each mount puts the platform's call UI in `container`, reports leaving and recording through
  // `events`, and returns the function that removes it.
  const MOUNTS = {
    async daily(joined, container, events) {
      await loadScript("vendor/daily-js/daily.js");
      const url = new URL(joined.room_url);
      const token = url.searchParams.get("t");
      url.searchParams.delete("t");
      const frame = window.DailyIframe.createFrame(container, {
        showLeaveButton: true,
        iframeStyle: { width: "100%", height: "100%", border: "0" },
      });
      frame.on("left-meeting", events.left);
      frame.on("recording-started", () => events.recording(true));
      frame.on("recording-stopped", () => events.recording(false));
      frame.on("recording-error", () => events.recording(false));
      const options = { url: url.toString() };
      if (token) options.token = token;
      await frame.join(options);
      return () => frame.destroy();
    },
    async whereby(joined, container, events) {
      await loadScript("vendor/whereby-browser-sdk/v3-embed.js");
      const embed = document.createElement("whereby-embed");
      // host_room_url is "" unless the caller owns the room; the owner gets the host controls.
      embed.setAttribute("room", joined.host_room_url || joined.room_url);
      embed.addEventListener("leave", events.left);
      embed.addEventListener("recording_status_change", (event) => {
        const status = event.detail && event.detail.status;
        events.recording(status === "recording" || status === "started");
      });
      container.append(embed);
      return () => embed.remove();
    },
    async mock(joined, container, events) {
      const frame = document.createElement("iframe");
      frame.title = "Call (mock platform)";
      frame.src = `${assets}/mock-call.html#${encodeURIComponent(joined.room_url)}`;
      const onMessage = (event) => {
        if (event.origin !== location.origin || event.source !== frame.contentWindow) return;
        const what = event.data && event.data.reflectorMockCall;
        if (what === "left-meeting") events.left();
        else if (what === "recording-started") events.recording(true);
        else if (what === "recording-stopped") events.recording(false);
      };
      window.addEventListener("message", onMessage);
      container.append(frame);
      return () => { window.removeEventListener("message", onMessage); frame.remove(); };
    },
  };

  function setRecording(on) { $("recording").hidden = !on; }

  function leave() {
    if (unmount) { unmount(); unmount = null; }
    setRecording(false);
    closeConsent();
    show("left");
    $("rejoin").focus();
  }

  function fail(error) {
    if (unmount) { unmount(); unmount = null; }
    $("error-detail").textContent = error.message;
    show("error");
  }

  async function join() {
    if (joining) return;
    joining = true;
    document.body.dataset.joining = "true";
    show("loading");
    setRecording(false);
    try {
      const path = encodeURIComponent(roomName);
      let room;
      try {
        room = await api("GET", `/rooms/name/${path}`);
      } catch (error) {
        if (error instanceof HttpError && error.status === 404) {
          $("missing-name").textContent = roomName;
          document.title = "Room not found";
          show("not-found");
          return;
        }
        throw error;
      }
      $("room-title").textContent = room.name || roomName;
      document.title = `${room.name || roomName} · Reflector`;
      meeting = await api("POST", `/rooms/${path}/meeting`);
      const joined = await api("POST", `/rooms/${path}/meetings/${encodeURIComponent(meeting.id)}/join`);
      const mount = MOUNTS[joined.platform || meeting.platform];
      if (!mount) throw new Error(`unknown video platform "${joined.platform}"`);
      const container = $("view-call");
      container.replaceChildren();
      show("call");
      unmount = await mount(joined, container, { left: leave, recording: setRecording });
      if (needsConsent(room, joined)) askConsent();
    } catch (error) {
      fail(error);
    } finally {
      joining = false;
      document.body.dataset.joining = "false";
    }
  }

  // Consent: asked once per meeting in this browser, when the meeting records to the cloud and
  // the room does not skip it.
  const consentKey = (id) => `reflector.consent.${id}`;

  function needsConsent(room, joined) {
    const recordingType = joined.recording_type || meeting.recording_type;
    return recordingType === "cloud" && !room.skip_consent && stored.get(consentKey(meeting.id)) === null;
  }

  // A modal <dialog> makes the call iframe inert and takes the focus itself, so a keyboard user
  // whose focus was inside the call (which swallows key events) can answer at once.
  function askConsent() {
    const dialog = $("consent");
    $("consent-error").hidden = true;
    setConsentBusy(false);
    if (!dialog.open) dialog.showModal();
    $("consent-accept").focus();
  }

  function closeConsent() {
    if ($("consent").open) $("consent").close();
  }

  function setConsentBusy(busy) {
    $("consent-accept").disabled = busy;
    $("consent-decline").disabled = busy;
  }

  async function answerConsent(given) {
    if ($("consent-accept").disabled || !meeting) return;
    setConsentBusy(true);
    const id = meeting.id;
    try {
      await api("POST", `/meetings/${encodeURIComponent(id)}/consent`, { consent_given: given });
      stored.set(consentKey(id), given ? "given" : "declined");
      closeConsent();
    } catch (error) {
      $("consent-error").textContent = `Your answer was not saved (${error.message}). Please try again.`;
      $("consent-error").hidden = false;
      setConsentBusy(false);
      $("consent-accept").focus();
    }
  }

  $("consent-accept").addEventListener("click", () => answerConsent(true));
  $("consent-decline").addEventListener("click", () => answerConsent(false));
  // Escape would close the dialog without an answer; the question stays until it is answered.
  $("consent").addEventListener("cancel", (event) => event.preventDefault());
  $("rejoin").addEventListener("click", join);
  $("retry").addEventListener("click", join);
  join();
})();

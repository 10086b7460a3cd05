// Placeholder call UI for the mock platform: it tells the room page (its parent, same origin)
// about leaving and recording the way the real SDKs report them, so the whole flow can be tried
// locally without a platform account.
"use strict";
(() => {
  const tell = (event) => window.parent.postMessage({ reflectorMockCall: event }, location.origin);
  document.getElementById("room-url").textContent = decodeURIComponent(location.hash.slice(1));
  const record = document.getElementById("record");
  let recording = false;
  record.addEventListener("click", () => {
    recording = !recording;
    record.textContent = recording ? "Stop recording" : "Start recording";
    tell(recording ? "recording-started" : "recording-stopped");
  });
  document.getElementById("leave").addEventListener("click", () => tell("left-meeting"));
})();

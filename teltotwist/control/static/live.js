// teltotwist's live view: the trackers, a map, one tracker's traffic and
// its commands, from the gateway's HTTP API. The token is asked once and
// kept in sessionStorage; it travels only in the Authorization header, so
// the live streams are read with fetch() rather than EventSource.
"use strict";

(function () {
  const TOKEN_KEY = "teltotwist-api-token";
  const MAX_TRAFFIC_ROWS = 2000;   // rows kept in the traffic table
  const MAX_CAPTURE = 20000;       // events kept for the capture file
  const MAX_TRACK = 500;           // positions of the selected tracker's track
  const RETRY_MS = 2000;

  const $ = (id) => document.getElementById(id);
  const trackers = new Map();      // IMEI -> tracker object of the API
  const markers = new Map();       // IMEI -> Leaflet circle marker
  const tracks = new Map();        // IMEI -> [[lat, lon], ...]
  let token = sessionStorage.getItem(TOKEN_KEY);
  let map = null;
  let trackLine = null;
  let fitted = false;
  let selected = null;
  let trafficAbort = null;
  let paused = false;
  let capture = [];                // traffic events of this session
  let pending = [];                // events that came while paused

  function headers(extra) {
    return Object.assign({ Authorization: "Bearer " + token }, extra || {});
  }

  function setStatus(text, kind) {
    const status = $("status");
    status.textContent = text;
    status.className = "status " + (kind || "");
  }

  async function api(path, options) {
    const response = await fetch(path, Object.assign({}, options, {
      headers: headers(options && options.headers),
    }));
    if (response.status === 401) {
      askToken("The token was refused.");
      throw new Error("token refused");
    }
    return response;
  }

  // Reads a text/event-stream body; calls onEvent(name, data) for each event
  // until the stream ends or signal aborts; reconnects after a pause.
  async function stream(path, onEvent, signal) {
    while (!signal.aborted) {
      try {
        const response = await api(path, { signal, headers: { Accept: "text/event-stream" } });
        if (!response.ok) throw new Error(path + ": HTTP " + response.status);
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let name = "message";
            const data = [];
            for (const line of block.split("\n")) {
              if (line.startsWith("event: ")) name = line.slice(7);
              else if (line.startsWith("data: ")) data.push(line.slice(6));
            }
            if (data.length) onEvent(name, JSON.parse(data.join("\n")));
          }
        }
      } catch (error) {
        if (signal.aborted || error.message === "token refused") return;
        setStatus("reconnecting: " + error.message, "error");
      }
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  }

  // --- Trackers and the map ---------------------------------------------

  function time(iso) {
    return iso ? iso.slice(11, 23) : "";
  }

  function updateTracker(tracker) {
    trackers.set(tracker.imei, tracker);
    const position = tracker.last_record;
    if (!position || !map) return;
    const point = [position.latitude, position.longitude];
    let marker = markers.get(tracker.imei);
    if (!marker) {
      marker = L.circleMarker(point, {
        radius: 7, weight: 2, color: "#1d3557", fillColor: "#e63946", fillOpacity: 0.9,
        className: "tracker-marker",
      }).addTo(map);
      const label = document.createElement("span");
      label.textContent = tracker.imei;
      marker.bindTooltip(label);
      marker.on("click", () => select(tracker.imei));
      markers.set(tracker.imei, marker);
    } else {
      marker.setLatLng(point);
    }
    addToTrack(tracker.imei, point);
    if (!fitted) {
      map.setView(point, 13);
      fitted = true;
    }
  }

  function addToTrack(imei, point) {
    const track = tracks.get(imei) || [];
    const last = track[track.length - 1];
    if (!last || last[0] !== point[0] || last[1] !== point[1]) {
      track.push(point);
      if (track.length > MAX_TRACK) track.shift();
    }
    tracks.set(imei, track);
    if (imei === selected) drawTrack();
  }

  function drawTrack() {
    const track = tracks.get(selected) || [];
    if (!trackLine) trackLine = L.polyline([], { color: "#1d3557", weight: 3 }).addTo(map);
    trackLine.setLatLngs(track);
  }

  function removeTracker(imei) {
    trackers.delete(imei);
    const marker = markers.get(imei);
    if (marker) marker.remove();
    markers.delete(imei);
  }

  function renderTrackers() {
    const filter = $("filter").value.trim();
    const body = document.createElement("tbody");
    const shown = [...trackers.values()]
      .filter((t) => t.imei.includes(filter))
      .sort((a, b) => a.imei.localeCompare(b.imei));
    for (const tracker of shown) {
      const row = body.insertRow();
      row.dataset.imei = tracker.imei;
      if (tracker.imei === selected) row.className = "selected";
      if (tracker.member) row.title = "held by " + tracker.member;
      const position = tracker.last_record;
      const cells = [
        tracker.imei,
        tracker.peer,
        tracker.connected_at.replace("T", " ").slice(0, 19),
        time(tracker.last_seen),
        tracker.records,
        position ? position.latitude.toFixed(5) + ", " + position.longitude.toFixed(5) : "",
        position ? position.speed + " km/h" : "",
      ];
      for (const text of cells) row.insertCell().textContent = text;
      row.addEventListener("click", () => select(tracker.imei));
    }
    $("trackers").replaceChild(body, $("trackers").tBodies[0]);
    $("tracker-count").textContent = trackers.size;
  }

  function onRoster(name, data) {
    if (name === "trackers") {
      for (const imei of [...trackers.keys()]) removeTracker(imei);
      data.trackers.forEach(updateTracker);
    } else if (name === "changes") {
      data.trackers.forEach(updateTracker);
      data.gone.forEach(removeTracker);
    }
    setStatus("live", "live");
    renderTrackers();
  }

  // --- One tracker's traffic --------------------------------------------

  function select(imei) {
    if (selected === imei) return;
    selected = imei;
    if (trafficAbort) trafficAbort.abort();
    trafficAbort = new AbortController();
    capture = [];
    pending = [];
    $("traffic").tBodies[0].replaceChildren();
    $("selected").textContent = imei;
    for (const id of ["pause", "clear", "download", "command", "send"]) $(id).disabled = false;
    $("command-result").hidden = true;
    renderTrackers();
    drawTrack();
    stream("v1/live/trackers/" + encodeURIComponent(imei) + "/traffic", onTraffic, trafficAbort.signal);
  }

  // What the gateway says about the watch itself: which member of a
  // cluster holds the tracker, that it moved, or that events were dropped.
  const NOTICES = {
    holder: (data) => "watched on " + data.member,
    moved: (data) => "left " + data.member + " (" + data.why + "); looking for it",
    dropped: (data) => data.events + " events not forwarded (over the rate)",
  };

  function showNotice(text) {
    const body = $("traffic").tBodies[0];
    const row = body.insertRow(0);
    row.className = "notice";
    const cell = row.insertCell();
    cell.colSpan = 7;
    cell.textContent = text;
  }

  function onTraffic(name, event) {
    if (NOTICES[name]) showNotice(NOTICES[name](event));
    if (name !== "traffic") return;
    capture.push(event);
    if (capture.length > MAX_CAPTURE) capture.shift();
    if (event.kind === "data") {
      for (const record of event.decoded) {
        if (record.latitude !== undefined) addToTrack(event.imei, [record.latitude, record.longitude]);
      }
    }
    if (paused) {
      pending.push(event);
      if (pending.length > MAX_TRAFFIC_ROWS) pending.shift();
    } else {
      showTraffic(event);
    }
  }

  function showTraffic(event) {
    const body = $("traffic").tBodies[0];
    const row = document.createElement("tr");
    row.className = (event.direction || "") + " " + event.kind;
    const latency = event.latency_ms === undefined ? "" : event.latency_ms.toFixed(1) + " ms";
    const cells = [
      time(event.time), event.direction === "in" ? "→ in" : event.direction === "out" ? "← out" : "",
      event.kind, event.size || "",
    ];
    for (const text of cells) row.insertCell().textContent = text;
    const hex = row.insertCell();
    hex.className = "hex";
    hex.appendChild(document.createElement("div")).textContent = event.hex;
    const decoded = row.insertCell();
    decoded.className = "decoded";
    if (event.decoded.length) {
      const pre = document.createElement("pre");
      pre.textContent = JSON.stringify(event.decoded.length === 1 ? event.decoded[0] : event.decoded, null, 1);
      decoded.appendChild(pre);
    } else if (event.note) {
      decoded.textContent = event.note;
    }
    row.insertCell().textContent = latency;
    body.insertBefore(row, body.firstChild);
    while (body.rows.length > MAX_TRAFFIC_ROWS) body.deleteRow(body.rows.length - 1);
  }

  // A capture file: "#" comment lines (time, direction, kind), and the hex
  // of each frame that `teltotwist decode` reads and `teltotwist device
  // --replay` sends; ACKs and login replies stay in the comments.
  function captureText() {
    const lines = ["# teltotwist capture of " + selected + ", saved " + new Date().toISOString()];
    if (!capture.length || capture[0].kind !== "login") {
      lines.push("# (the login, rebuilt: the capture began after it)", "# - in login", loginHex(selected));
    }
    for (const event of capture) {
      const latency = event.latency_ms === undefined ? "" : " latency " + event.latency_ms + " ms";
      const note = event.note ? " (" + event.note + ")" : "";
      const frame = ["login", "data", "command"].includes(event.kind);
      const head = "# " + event.time + " " + (event.direction || "-") + " " + event.kind;
      if (frame) {
        lines.push(head + " " + event.size + " bytes" + latency + note, event.hex);
      } else {
        lines.push(head + (event.hex ? " " + event.hex : "") + latency + note);
      }
    }
    return lines.join("\n") + "\n";
  }

  function loginHex(imei) {
    const length = imei.length.toString(16).padStart(4, "0");
    return length + [...imei].map((c) => c.charCodeAt(0).toString(16).padStart(2, "0")).join("");
  }

  function download() {
    const blob = new Blob([captureText()], { type: "text/plain" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = "capture-" + selected + ".txt";
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }

  // --- Commands -----------------------------------------------------------

  async function sendCommand(submit) {
    submit.preventDefault();
    const text = $("command").value.trim();
    if (!text || !selected) return;
    const result = $("command-result");
    result.hidden = false;
    result.className = "command-result";
    result.textContent = text + ": sending…";
    try {
      const response = await api("v1/trackers/" + encodeURIComponent(selected) + "/commands", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ command: text, wait: 30 }),
      });
      const answer = await response.json();
      if (!response.ok) {
        result.className = "command-result failed";
        result.textContent = text + ": " + (answer.error || "HTTP " + response.status);
        return;
      }
      result.className = "command-result" + (answer.status === "answered" ? "" : " failed");
      result.textContent = text + ": " + answer.status +
        (answer.response !== null ? "\n" + answer.response : "") +
        (answer.error ? "\n" + answer.error : "");
    } catch (error) {
      result.className = "command-result failed";
      result.textContent = text + ": " + error.message;
    }
  }

  // --- Start --------------------------------------------------------------

  function askToken(why) {
    sessionStorage.removeItem(TOKEN_KEY);
    token = null;
    $("view").hidden = true;
    $("forget-token").hidden = true;
    $("token-form").hidden = false;
    setStatus(why || "a token is needed", why ? "error" : "");
    $("token").focus();
  }

  async function start() {
    $("token-form").hidden = true;
    $("view").hidden = false;
    $("forget-token").hidden = false;
    setStatus("connecting");
    if (!map) {
      map = L.map("map", { worldCopyJump: true }).setView([20, 0], 2);
      try {
        const settings = await (await api("v1/live/map")).json();
        if (settings.tiles) {
          L.tileLayer(settings.tiles, { maxZoom: 19, attribution: settings.attribution }).addTo(map);
        }
      } catch (error) {
        if (error.message === "token refused") return;
      }
    }
    stream("v1/live/trackers", onRoster, new AbortController().signal);
  }

  $("token-form").addEventListener("submit", (submit) => {
    submit.preventDefault();
    token = $("token").value.trim();
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token").value = "";
    start();
  });
  $("forget-token").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    location.reload();
  });
  $("filter").addEventListener("input", renderTrackers);
  $("pause").addEventListener("click", () => {
    paused = !paused;
    $("pause").textContent = paused ? "Resume" : "Pause";
    if (!paused) {
      pending.forEach(showTraffic);
      pending = [];
    }
  });
  $("clear").addEventListener("click", () => {
    capture = [];
    pending = [];
    $("traffic").tBodies[0].replaceChildren();
  });
  $("download").addEventListener("click", download);
  $("command-form").addEventListener("submit", sendCommand);

  if (token) start();
  else askToken();
})();

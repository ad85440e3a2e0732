// The live queue: polls /api/queue every second (no CDN, no build step). New alerts get a
// highlight, a spoken announcement (aria-live) and, if the officer turns it on, a beep.
"use strict";
(function () {
  const body = document.getElementById("queue");
  const count = document.getElementById("pending-count");
  const banner = document.getElementById("new-alert");
  const beep = document.getElementById("beep");
  const nextForm = document.getElementById("next-form");
  const seen = new Set(Array.from(body.querySelectorAll("tr[data-event]"), (r) => r.dataset.event));
  let audio = null;

  beep.checked = localStorage.getItem("lfr-beep") === "1";
  beep.addEventListener("change", () => {
    localStorage.setItem("lfr-beep", beep.checked ? "1" : "0");
    if (beep.checked && !audio) audio = new AudioContext(); // needs this user gesture
  });

  function waiting(s) {
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + String(s % 60).padStart(2, "0") + " s";
    return Math.floor(s / 3600) + " h " + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + " min";
  }

  function cell(row, text, cls) {
    const td = row.insertCell();
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function render(alert, fresh) {
    const row = document.createElement("tr");
    row.className = "pending" + (alert.overdue ? " overdue" : "") +
      (alert.claimed_by ? " claimed" : "") + (fresh ? " new" : "");
    row.dataset.event = alert.event_id;
    cell(row, waiting(alert.waiting_s), "waiting");
    cell(row, alert.observed_at.slice(11, 19)).title = alert.observed_at;
    const link = document.createElement("a");
    link.href = "/alerts/" + alert.event_id;
    link.textContent = alert.subject_ref;
    row.insertCell().appendChild(link);
    cell(row, alert.category);
    cell(row, alert.site);
    cell(row, alert.device_id);
    cell(row, alert.score.toFixed(3) + " / " + alert.threshold.toFixed(3), "num");
    const status = row.insertCell();
    status.className = "status";
    if (alert.claimed_by) {
      status.textContent = "being decided by " + alert.claimed_by;
    } else {
      const span = document.createElement("span");
      span.className = "pending"; // the same markup as the server's rows
      span.textContent = "awaiting adjudication";
      status.appendChild(span);
    }
    if (alert.overdue) status.append(" \u00b7 waiting long");
    return row;
  }

  function sound() {
    if (!beep.checked || !audio) return;
    const tone = audio.createOscillator();
    const gain = audio.createGain();
    tone.frequency.value = 880;
    gain.gain.value = 0.2;
    tone.connect(gain).connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.25);
  }

  async function poll() {
    try {
      const response = await fetch("/api/queue", { cache: "no-store", credentials: "same-origin" });
      if (response.status === 401) { location.assign("/login"); return; }
      if (!response.ok) return;
      const doc = await response.json();
      const fresh = doc.alerts.filter((a) => !seen.has(a.event_id));
      body.replaceChildren(...doc.alerts.map((a) => render(a, fresh.includes(a))));
      count.textContent = String(doc.pending);
      document.title = (doc.pending ? "(" + doc.pending + ") " : "") + "LFR alerts";
      if (fresh.length) {
        const first = fresh[0];
        banner.textContent = (fresh.length > 1 ? fresh.length + " new alerts, latest: " : "New alert: ") +
          first.subject_ref + " (" + first.category + ") at " + first.site + ", camera " + first.device_id;
        banner.hidden = false;
        fresh.forEach((a) => seen.add(a.event_id));
        sound();
      }
    } catch (error) {
      // the network or the server is away for a moment: the next poll tries again
    } finally {
      setTimeout(poll, 1000);
    }
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest("input, textarea, select")) return;
    if (event.key === "j" || event.key === "J") { event.preventDefault(); nextForm.requestSubmit(); }
  });

  setTimeout(poll, 1000);
})();

// One alert: decide with a key (C confirm, F false alert, N no action, J next), and keep the
// lock on the alert while the page is open (the server's claim lasts 120 s; renewed each 60 s).
"use strict";
(function () {
  const alert = document.querySelector(".alert[data-event]");
  const decide = document.getElementById("decide");
  const nextForm = document.getElementById("next-form");
  const keys = {};
  document.querySelectorAll("button[data-key]").forEach((b) => { keys[b.dataset.key] = b; });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    if (event.target.closest("input, textarea, select")) return;
    const key = event.key.toLowerCase();
    if (decide && keys[key]) { event.preventDefault(); decide.requestSubmit(keys[key]); }
    else if (key === "j" && nextForm) { event.preventDefault(); nextForm.requestSubmit(); }
  });

  if (alert && alert.dataset.claimUntil && decide) {
    const csrf = decide.querySelector('input[name="csrf"]').value;
    setInterval(() => {
      fetch("/alerts/" + alert.dataset.event + "/claim", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: "csrf=" + encodeURIComponent(csrf),
      }).catch(() => {});
    }, 60000);
  }
})();

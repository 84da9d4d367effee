// exportd dashboard: live progress of running jobs, without reloading.
// Pages work without this script; it only keeps the progress cells fresh.
// One request per interval for every running job (GET /ui/live), never one per job.
(function () {
  "use strict";
  var INTERVAL_MS = 2000;

  function rows() {
    return document.querySelectorAll("[data-live-job]");
  }

  function setText(row, field, text) {
    var cell = row.querySelector('[data-field="' + field + '"]');
    if (cell) { cell.textContent = text; }
  }

  function update(row, p) {
    var bar = row.querySelector("progress");
    if (bar) { bar.value = p.percent; bar.textContent = p.percent + "%"; }
    setText(row, "percent_text", p.percent + "%");
    setText(row, "rows_text", p.rows_text);
    setText(row, "bytes_text", p.bytes_text);
    setText(row, "rate_text", p.rate_text);
    setText(row, "eta_text", p.eta_text);
  }

  function ended(row) {
    if (row.classList.contains("ended")) { return; }
    row.classList.add("ended");
    setText(row, "state", "ended");
    setText(row, "eta_text", "ended: reload to see how");
  }

  function poll() {
    var watched = rows();
    if (watched.length === 0) { return; }
    fetch("/ui/live", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401) { window.location.reload(); return null; }
        return response.ok ? response.json() : null;
      })
      .then(function (doc) {
        if (!doc) { return; }
        var reload = false;
        Array.prototype.forEach.call(watched, function (row) {
          var p = doc.running[row.getAttribute("data-live-job")];
          if (p) { update(row, p); return; }
          // On a job's own page, show how it ended as soon as it has.
          if (row.closest("[data-live-reload]")) { reload = true; } else { ended(row); }
        });
        if (reload) { window.location.reload(); }
      })
      .catch(function () { /* the next poll tries again */ });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (rows().length === 0) { return; }
    document.documentElement.setAttribute("data-live", "on");
    window.setInterval(poll, INTERVAL_MS);
    poll();
  });
})();

// Live notice page (/admin/notices/{id}): follows /admin/notices/{id}/live (Server-Sent
// Events) and updates the recipient table's cells and the figures by row id. The page works
// without this script (it reloads itself while a job runs); the stream never carries names
// or addresses: those are already on the page. No inline script (CSP default-src 'self').
(function () {
  "use strict";
  var root = document.getElementById("notice");
  if (!root || !window.EventSource) { return; }
  var words = JSON.parse(root.getAttribute("data-words") || "{}");
  var jobs = JSON.parse(root.getAttribute("data-jobs") || "{}");
  var lang = root.getAttribute("data-lang") || "ja";
  var notOpened = root.getAttribute("data-not-opened") || "";
  var status = root.getAttribute("data-status");
  var wasRunning = root.getAttribute("data-running") === "true";

  function setText(el, text) {
    if (el && el.textContent !== String(text)) { el.textContent = String(text); return true; }
    return false;
  }

  function statusWord(r) {
    var w = words[r.status] || r.status;
    if (r.smtp_code && (r.status === "bounced" || r.status === "failed")) {
      w += lang === "ja" ? "（" + r.smtp_code + "）" : " (" + r.smtp_code + ")";
    }
    return w;
  }

  function openedCell(td, r) {
    if (!td) { return false; }
    if (r.opened_at) { return setText(td, r.opened_at); }
    if (r.status === "sent") {
      if (td.textContent === notOpened) { return false; }
      td.textContent = "";
      var span = document.createElement("span");
      span.className = "muted";
      span.textContent = notOpened;
      td.appendChild(span);
      return true;
    }
    return setText(td, "");
  }

  function updateRow(r) {
    var tr = document.querySelector('tr[data-id="' + r.id + '"]');
    if (!tr) { return; }
    var changed = setText(tr.querySelector('[data-cell="status"]'), statusWord(r));
    changed = setText(tr.querySelector('[data-cell="sent_at"]'), r.sent_at) || changed;
    changed = openedCell(tr.querySelector('[data-cell="opened_at"]'), r) || changed;
    changed = setText(tr.querySelector('[data-cell="contacts"]'), r.contacts) || changed;
    changed = setText(tr.querySelector('[data-cell="downloads"]'), r.downloads) || changed;
    tr.setAttribute("data-status", r.status);
    tr.classList.toggle("bad", r.status === "bounced");
    if (changed) {
      tr.classList.remove("changed");
      void tr.offsetWidth;  // restart the highlight
      tr.classList.add("changed");
    }
  }

  function updateJob(job) {
    var p = document.getElementById("job");
    if (!p || !job) { return; }
    var text = "";
    if (job.error) { text = job.error[lang] || job.error.en || ""; }
    else if (jobs[job.stage]) {
      text = jobs[job.stage].replace("{done}", job.done).replace("{total}", job.total);
    }
    setText(p, text);
    p.classList.toggle("job--error", !!job.error);
  }

  var source = new EventSource(root.getAttribute("data-live"));
  source.addEventListener("status", function (ev) {
    var data = JSON.parse(ev.data);
    if (data.status !== status) { source.close(); window.location.reload(); return; }
    var figs = data.figures || {};
    Object.keys(figs).forEach(function (k) {
      setText(document.querySelector('[data-figure="' + k + '"]'), figs[k]);
    });
    (data.rows || []).forEach(updateRow);
    updateJob(data.job);
    var running = !!(data.job && data.job.running);
    if (wasRunning === true && !running) {  // a job ended: the steps change, show them
      source.close(); window.location.reload(); return;
    }
    wasRunning = running;
  });
}());

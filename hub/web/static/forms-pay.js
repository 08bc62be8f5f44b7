// The "checking your payment" page of a form's fee (hub/forms/templates/forms/resident_pay.html).
// Instead of a timed refresh (WCAG 2.2.1; it restarts screen readers every time), this asks
// GET …/pay/{token}/state every few seconds and reloads the page once, when the payment's
// state is no longer "checking" (paid: the reference number; failed: pay again). It stops
// after ten minutes; the link on the page always shows the latest state, with or without this.
(function () {
  "use strict";
  const link = document.getElementById("pay-refresh");
  if (!link || !window.fetch) return;
  const url = link.getAttribute("data-state-url");
  if (!url) return;
  const EVERY_MS = 3000;
  const STOP_AFTER_MS = 10 * 60 * 1000;
  const started = Date.now();

  function ask() {
    if (Date.now() - started > STOP_AFTER_MS) return;
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (got) {
        if (got && got.state && got.state !== "checking") {
          window.location.replace(link.href);
          return;
        }
        window.setTimeout(ask, EVERY_MS);
      })
      .catch(function () { window.setTimeout(ask, EVERY_MS); });
  }
  window.setTimeout(ask, EVERY_MS);
})();

// Ticket page: follow /t/<token>/stream and show the ticket's state as it changes.
(function () {
  "use strict";
  var root = document.getElementById("ticket");
  if (!root || !window.EventSource) return;
  var T = JSON.parse(root.getAttribute("data-texts"));
  var lang = root.getAttribute("data-lang");
  var conn = document.querySelector("[data-testid=connection]");
  var connText = document.getElementById("conn-text");
  var box = root.querySelector("[data-testid=ticket]");

  function fmt(s, vars) { return s.replace(/\{(\w+)\}/g, function (_m, k) { return String(vars[k]); }); }
  function name(values) { return values ? (values[lang] || values.ja || Object.values(values)[0] || "") : ""; }
  function est(e) {
    if (!e) return T.est_none;
    var lo = Math.floor(e.low_s / 60);
    return fmt(T.est_range, { lo: lo, hi: Math.max(lo + 1, Math.ceil(e.high_s / 60)) });
  }
  function setText(el, text) { if (el && el.textContent !== text) el.textContent = text; }
  function state(s, text) { conn.setAttribute("data-state", s); setText(connText, text); }

  function apply(v) {
    box.setAttribute("data-state", v.state);
    var st = root.querySelector("[data-k=state]");
    st.className = "state state-" + v.state;
    setText(st, v.state === "called" ? fmt(T.state_called, { counter: name(v.counter_name) })
      : (T["state_" + v.state] || v.state));
    setText(root.querySelector("[data-testid=number]"), v.number === null ? "—" : String(v.number));
    setText(root.querySelector("[data-testid=service-name]"), name(v.service_name));
    root.querySelector("[data-k=figures]").hidden = v.state !== "waiting";
    setText(root.querySelector("[data-k=ahead]"), v.ahead === null ? "—" : String(v.ahead));
    setText(root.querySelector("[data-k=estimate]"), est(v.estimate));
    root.querySelector("[data-k=notice]").hidden = !v.notice;
  }

  var es = new EventSource(location.pathname.replace(/\/$/, "") + "/stream");
  es.addEventListener("open", function () { state("live", T.live); });
  es.addEventListener("error", function () { state("reconnecting", T.reconnecting); });
  es.addEventListener("ticket", function (ev) { state("live", T.live); apply(JSON.parse(ev.data)); });
})();

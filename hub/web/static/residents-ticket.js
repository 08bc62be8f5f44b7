// Ticket page: follow /t/<token>/stream and show the ticket's phase as it changes. The server
// renders the same texts first (the page works without this script); the phases and their
// wording live in hub/web/residents/ticketpage.py and hub/web/i18n/*.json.
(function () {
  "use strict";
  var root = document.getElementById("ticket");
  if (!root || !window.EventSource) return;
  var T = JSON.parse(root.getAttribute("data-texts"));
  var lang = root.getAttribute("data-lang");
  var noticeMode = root.getAttribute("data-notice-mode");
  var conn = document.querySelector("[data-testid=connection]");
  var connText = document.getElementById("conn-text");
  var box = root.querySelector("[data-testid=ticket]");

  function fmt(s, vars) { return s.replace(/\{(\w+)\}/g, function (_m, k) { return String(vars[k]); }); }
  function name(values) { return values ? (values[lang] || values.ja || Object.values(values)[0] || "") : ""; }
  function est(e) {
    if (!e) return "";
    var lo = Math.floor(e.low_s / 60);
    return fmt(lo === 0 ? T.est_upto : T.est_range, { lo: lo, hi: Math.max(lo + 1, Math.ceil(e.high_s / 60)) });
  }
  function setText(el, text) { if (el && el.textContent !== text) el.textContent = text; }
  function show(sel, on) { var el = root.querySelector(sel); if (el) el.hidden = !on; }
  function state(s, text) { conn.setAttribute("data-state", s); setText(connText, text); }

  function message(v) {
    var counter = v.counter_name ? name(v.counter_name) : T.counter_any;
    return fmt(T["msg_" + v.phase] || v.phase, { counter: counter, deadline: v.deadline || "" });
  }
  function rule(v) {
    if (["checkin_over", "absent", "absent_web"].indexOf(v.phase) >= 0) return "";
    if (v.checked_in) return T.rule_after;
    if (v.phase === "checkin_optional") return T.rule_optional;
    return fmt(T.rule_before, { grace: v.grace_min || 0 });
  }

  function apply(v) {
    box.setAttribute("data-state", v.state);
    box.setAttribute("data-phase", v.phase);
    var st = root.querySelector("[data-k=state]");
    st.className = "state phase-" + v.phase;
    setText(st, message(v));
    setText(root.querySelector("[data-testid=number]"), v.number === null ? "—" : String(v.number));
    setText(root.querySelector("[data-testid=service-name]"), name(v.service_name));
    show("[data-k=figures]", v.ahead !== null);
    setText(root.querySelector("[data-k=ahead]"), v.ahead === null ? "—" : String(v.ahead));
    show("[data-k=est-row]", !!v.estimate);
    setText(root.querySelector("[data-k=estimate]"), est(v.estimate));
    var qrOn = v.qr !== null && (!v.checked_in || v.state === "absent");
    show("[data-k=qr-box]", qrOn);
    show("[data-k=qr-hint]", qrOn);
    var ruleText = rule(v);
    setText(root.querySelector("[data-k=rule]"), ruleText);
    show("[data-k=rule]", !!ruleText);
    show("[data-k=checkin]", qrOn || (v.checked_in && v.state === "waiting"));
    show("[data-k=notice]", v.notice && noticeMode === "form");
    show("[data-k=notice-status]", v.notice && noticeMode !== "form");
  }

  var es = new EventSource(location.pathname.replace(/\/$/, "") + "/stream");
  es.addEventListener("open", function () { state("live", T.live); });
  es.addEventListener("error", function () { state("reconnecting", T.reconnecting); });
  es.addEventListener("ticket", function (ev) { state("live", T.live); apply(JSON.parse(ev.data)); });
})();

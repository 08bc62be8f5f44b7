// Status page: follow /api/status/stream and patch the figures in place (no framework).
// The page is complete without this script; it only keeps it current.
(function () {
  "use strict";
  var root = document.getElementById("status");
  if (!root || !window.EventSource) return;
  var T = JSON.parse(root.getAttribute("data-texts"));
  var lang = root.getAttribute("data-lang");
  var conn = document.querySelector("[data-testid=connection]");
  var connText = document.getElementById("conn-text");
  var version = Number(root.getAttribute("data-version"));

  function fmt(s, vars) { return s.replace(/\{(\w+)\}/g, function (_m, k) { return String(vars[k]); }); }
  function name(values) { return values[lang] || values.ja || Object.values(values)[0] || ""; }
  function est(e) {
    if (!e) return T.est_none;
    var lo = Math.floor(e.low_s / 60);
    return fmt(lo === 0 ? T.est_upto : T.est_range, { lo: lo, hi: Math.max(lo + 1, Math.ceil(e.high_s / 60)) });
  }
  function setText(el, text) { if (el && el.textContent !== text) el.textContent = text; }
  function state(s, text) { conn.setAttribute("data-state", s); setText(connText, text); }

  function apply(snap) {
    var sites = {};
    snap.sites.forEach(function (s) { sites[s.site] = s; });
    var shown = document.querySelectorAll("section.site");
    var known = Array.prototype.map.call(shown, function (el) { return el.getAttribute("data-site"); });
    var same = known.length === snap.sites.length && snap.sites.every(function (s) { return known.indexOf(s.site) >= 0; });
    var compareSame = snap.compare.length === document.querySelectorAll(".cmp").length &&
      snap.compare.every(function (c) {
        var ol = document.querySelector("[data-testid=compare-" + c.code + "] ol");
        return ol && ol.children.length === c.sites.length;
      });
    if (!same || !compareSame) { location.reload(); return; }  // structure changed: re-render
    snap.sites.forEach(function (s) {
      var sec = document.querySelector("section.site[data-site='" + s.site + "']");
      var online = sec.querySelector("[data-testid=online-" + s.site + "]");
      setText(online, s.online ? T.online : T.offline);
      online.className = "badge " + (s.online ? "ok" : "warn");
      var open = sec.querySelector("[data-testid=open-" + s.site + "]");
      if (open && s.open_now !== null) {
        setText(open, s.open_now ? T.open_now : T.closed_now);
        open.className = "badge " + (s.open_now ? "ok" : "off");
      }
      var pick = document.querySelector("[data-k=site-waiting][data-site='" + s.site + "']");
      if (pick) setText(pick, fmt(T.people, { n: s.waiting }));
      s.services.forEach(function (v) {
        var li = sec.querySelector("li.svc[data-code='" + v.code + "']");
        if (!li) { location.reload(); return; }
        setText(li.querySelector("[data-k=waiting]"), String(v.waiting));
        setText(li.querySelector("[data-k=second_wait]"), String(v.second_wait));
        setText(li.querySelector("[data-k=open_counters]"), String(v.open_counters));
        setText(li.querySelector("[data-k=estimate]"), v.status === "closed" ? T.status_closed
          : v.status === "full" ? T.status_full : est(v.estimate));
        var q = li.querySelector("[data-k=quieter]");
        var text = v.quieter.length ? fmt(T.quieter, { sites: v.quieter.map(function (o) {
          return fmt(T.quieter_site, { site: name(snap.site_names[o.site]), est: est(o) });
        }).join(", ") }) : "";
        setText(q, text);
        q.hidden = !text;
      });
    });
    snap.compare.forEach(function (c) {
      var items = document.querySelectorAll("[data-testid=compare-" + c.code + "] li");
      c.sites.forEach(function (o, i) {
        var li = items[i];
        li.setAttribute("data-testid", "compare-" + c.code + "-" + o.site);
        li.className = o.crowded ? "crowded" : "";
        setText(li.querySelector(".site"), name(snap.site_names[o.site]));
        setText(li.querySelector(".est"), est(o));
        setText(li.querySelector(".ppl"), "(" + fmt(T.people, { n: o.waiting }) + ")");
      });
    });
    if (snap.at) setText(document.getElementById("updated"), snap.at.slice(11, 19));
    version = snap.version;
    root.setAttribute("data-version", String(version));
  }

  var es = new EventSource("/api/status/stream");
  es.addEventListener("open", function () { state("live", T.live); });
  es.addEventListener("error", function () { state("reconnecting", T.reconnecting); });
  es.addEventListener("status", function (ev) {
    state("live", T.live);
    var snap = JSON.parse(ev.data);
    if (snap.version !== version) apply(snap);
  });
})();

// Backyard monitor (Q16) for the staff room: per service the wait since the next ticket was
// issued (counted on here every second between pushes), waiting and second-wait counts, tickets
// issued today, open counters; every counter open or closed with its number; device health.
// Thresholds are marked by an icon and a word as well as a colour.
//
// Every counter also shows how long it has served its current visitor (since the call), flagged
// past a threshold (a long case may need a hand).
//
// URL: ?lang=ja|en|zh|ko  ?warn=10&alert=20 (minutes; defaults 10 and 20)
//      ?serve=15 (minutes of serving one visitor before a counter is flagged; default 15)
import { live, api, param, siteNow } from "/ui/lib/live.js";
import { loadLang, t, pick, translatePage } from "/ui/lib/i18n.js";

const PAGE = "backyard";
const num = (v, d) => (Number.isFinite(Number(v)) && Number(v) > 0 ? Number(v) : d);
const WARN_S = num(param("warn"), 10) * 60;
const ALERT_S = Math.max(num(param("alert"), 20) * 60, WARN_S);
const SERVE_S = num(param("serve"), 15) * 60;
const LEVEL_ICON = { ok: "●", warn: "▲", alert: "■", none: "－" };
const DEVICE_ICON = { ok: "✓", degraded: "▲", offline: "✕", error: "■" };

let lastState = null;
let receivedAt = 0;        // performance.now() when lastState arrived
let tzOffsetMin = 0;       // the site's UTC offset, from state.at
let lang = "ja";

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

// --- time ----------------------------------------------------------------------------------
function siteTime(ms, withSeconds = false) {
  const d = new Date(ms + tzOffsetMin * 60000);
  const p = (n) => String(n).padStart(2, "0");
  const hm = `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}`;
  return withSeconds ? `${hm}:${p(d.getUTCSeconds())}` : hm;
}

function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return t("backyard.dur_h", { h, m, s: sec });
  if (m > 0) return t("backyard.dur_m", { m, s: sec });
  return t("backyard.dur_s", { s: sec });
}

function ago(seconds) {
  if (seconds < 60) return t("backyard.ago_now");
  if (seconds < 3600) return t("backyard.ago_m", { m: Math.floor(seconds / 60) });
  return t("backyard.ago_h", { h: Math.floor(seconds / 3600), m: Math.floor((seconds % 3600) / 60) });
}

const elapsed = () => (performance.now() - receivedAt) / 1000;

function level(waitS) {
  if (waitS === null) return "none";
  if (waitS >= ALERT_S) return "alert";
  if (waitS >= WARN_S) return "warn";
  return "ok";
}

function levelMark(lv) {
  return el("span", { class: `lv lv-${lv}` },
    el("span", { class: "lv-icon", "aria-hidden": "true", text: LEVEL_ICON[lv] }),
    el("span", { class: "lv-word", text: t(`backyard.level.${lv}`) }));
}

// --- services ------------------------------------------------------------------------------
function renderServices(state) {
  const rows = state.services.map((s) => {
    const waitS = s.next ? s.next.wait_s : null;
    const lv = level(waitS);
    const status = s.status === "open" && s.open_counters === 0 && s.waiting > 0 ? "no_counter" : s.status;
    return el("tr", { "data-testid": `service-${s.code}`, "data-level": lv, "data-code": s.code },
      el("th", { scope: "row" }, el("span", { class: "code", text: s.code }), " ",
         el("span", { class: "sname", text: pick(s.name, lang) })),
      el("td", { class: "num big", text: s.next ? String(s.next.number) : "—" }),
      el("td", { class: "num big wait", "data-testid": `wait-${s.code}`,
                 "data-wait": waitS === null ? "" : String(waitS),
                 text: waitS === null ? "—" : duration(waitS) }),
      el("td", { class: "level" }, levelMark(lv)),
      el("td", { class: "num big", "data-testid": `waiting-${s.code}`, text: String(s.waiting) }),
      el("td", { class: "num big second" },
         el("span", { "aria-hidden": "true", class: "icon", text: "↻ " }),
         el("span", { "data-testid": `second-wait-${s.code}`, text: String(s.second_wait) })),
      el("td", { class: "num", "data-testid": `issued-${s.code}`, text: String(s.issued) }),
      el("td", { class: "num", "data-testid": `open-counters-${s.code}`, text: String(s.open_counters) }),
      el("td", { class: `status st-${status}` },
         el("span", { "aria-hidden": "true", text: status === "open" ? "○ " : "■ " }),
         t(`backyard.status.${status}`)));
  });
  $("services").replaceChildren(...rows);
}

// Between pushes the waits grow by the time passed (the edge computed wait_s at `at`).
function tickWaits() {
  if (!lastState) return;
  const extra = elapsed();
  document.querySelectorAll("#services tr").forEach((tr) => {
    const cell = tr.querySelector(".wait");
    if (!cell || cell.dataset.wait === "") return;
    const waitS = Number(cell.dataset.wait) + extra;
    cell.textContent = duration(waitS);
    const lv = level(waitS);
    if (tr.dataset.level !== lv) {
      tr.dataset.level = lv;
      tr.querySelector(".level").replaceChildren(levelMark(lv));
    }
  });
  document.querySelectorAll(".c-serving").forEach((node) => {
    const seconds = Number(node.dataset.serving) + extra;
    servingMark(node, seconds);
  });
  $("clock").textContent = siteTime(siteNow());
}

// --- counters ------------------------------------------------------------------------------
// Seconds the counter has served its current visitor at the push (the edge's `at` minus the
// call time), or null; the page counts on from there.
function servingAtPush(state, cur) {
  if (!cur || !cur.called_at) return null;
  const now = Date.parse(state.at);
  const called = Date.parse(cur.called_at);
  return Number.isFinite(now) && Number.isFinite(called) ? Math.max(0, (now - called) / 1000) : null;
}

function servingMark(node, seconds) {
  const long = seconds >= SERVE_S;
  node.dataset.long = long ? "true" : "false";
  node.closest(".card").classList.toggle("long", long);
  node.replaceChildren(
    el("span", { class: "s-icon", "aria-hidden": "true", text: long ? "▲" : "◷" }),
    el("span", { class: "s-text", text: t(long ? "backyard.counter.serving_long" : "backyard.counter.serving",
                                         // "18 min 0 s" never splits across the card's lines
                                         { time: duration(seconds).replace(/ /g, "\u00a0") }) }));
}

function renderCounters(state) {
  const cards = state.counters.map((c) => {
    const cur = c.current;
    const open = c.open;
    const serving = open ? servingAtPush(state, cur) : null;
    return el("li", { class: `card ${open ? "open" : "closed"}`, "data-testid": `counter-${c.id}`,
                      "data-open": open ? "true" : "false" },
      el("span", { class: "c-name", text: pick(c.name, lang) }),
      el("span", { class: `c-state ${open ? "ok" : "off"}` },
         el("span", { "aria-hidden": "true", text: open ? "● " : "○ " }),
         t(open ? "backyard.counter.open" : "backyard.counter.closed")),
      el("span", { class: "c-current" },
         el("span", { class: "visually-hidden", text: t("backyard.counter.current") }), " ",
         el("span", { class: "c-num", "data-testid": `counter-number-${c.id}`,
                      text: cur ? String(cur.number) : "—" })),
      serving === null ? null : el("span", { class: "c-serving", "data-testid": `serving-${c.id}`,
                                             "data-serving": String(serving) }),
      c.held.length ? el("span", { class: "c-held",
                                   text: t("backyard.counter.held", { n: c.held.length }) }) : null);
  });
  $("counters").replaceChildren(...cards);
  document.querySelectorAll(".c-serving").forEach((node) => servingMark(node, Number(node.dataset.serving)));
}

// --- devices -------------------------------------------------------------------------------
function reasonText(d) {
  if (!d.reason) return "";
  const key = `backyard.reason.${d.reason}`;
  const mine = t(key);
  if (mine !== key) return mine;
  return (d.message && (d.message[lang] || d.message.ja || d.message.en)) || d.reason;
}

// "1,2,3,4,5,9" -> "1–5, 9" (a display bus serves many counters)
function compactIds(list) {
  const ids = list.split(",").map((s) => s.trim()).filter(Boolean);
  if (!ids.every((x) => /^\d+$/.test(x))) return ids.join(", ");
  const nums = ids.map(Number).sort((a, b) => a - b);
  const out = [];
  let start = nums[0];
  let prev = nums[0];
  for (const n of [...nums.slice(1), null]) {
    if (n !== null && n === prev + 1) { prev = n; continue; }
    out.push(start === prev ? String(start) : prev === start + 1 ? `${start}, ${prev}` : `${start}–${prev}`);
    start = n;
    prev = n;
  }
  return out.join(", ");
}

function boundText(d) {
  if (!d.bound_to) return "";
  if (d.kind === "printer") return t("backyard.bound.kiosk", { id: d.bound_to });
  return t("backyard.bound.counters", { ids: compactIds(d.bound_to) });
}

function renderDevices(state) {
  const devices = state.devices || [];
  const order = { error: 0, offline: 1, degraded: 2, ok: 3 };
  const items = [...devices].sort((a, b) => (order[a.state] ?? 4) - (order[b.state] ?? 4)
    || a.id.localeCompare(b.id)).map((d) => {
    const since = Date.parse(d.since);
    const agoS = Number.isFinite(since) ? Math.max(0, (Date.now() - since) / 1000) : null;
    return el("li", { class: `dev dev-${d.state}`, "data-testid": `device-${d.id}`, "data-state": d.state },
      el("span", { class: "d-state" },
         el("span", { class: "d-icon", "aria-hidden": "true", text: DEVICE_ICON[d.state] || "?" }),
         el("span", { class: "d-word", text: t(`backyard.state.${d.state}`) })),
      el("span", { class: "d-what" },
         el("span", { class: "d-kind", text: t(`backyard.kind.${d.kind}`) }), " ",
         el("span", { class: "d-id", text: d.id }), " ",
         el("span", { class: "d-bound", text: boundText(d) })),
      el("span", { class: "d-reason", text: reasonText(d) }),
      el("span", { class: "d-since", text: agoS === null ? "" :
        t("backyard.since", { time: siteTime(since), ago: ago(agoS) }) }));
  });
  if (!items.length) items.push(el("li", { class: "none", text: t("backyard.no_devices") }));
  $("devices").replaceChildren(...items);
}

// Closed today by the ward's calendar: staff see why no ticket is issued (as the guide monitor).
function renderClosed(state) {
  const today = state.today;
  const closed = !!(today && !today.open && today.reason && today.reason !== "weekly");
  const box = $("closed-today");
  box.hidden = !closed;
  if (!closed) { box.textContent = ""; return; }
  box.dataset.reason = today.reason;
  box.textContent = t(`backyard.closed.${today.reason}`, { name: today.holiday || "" });
}

function render(state) {
  lastState = state;
  receivedAt = performance.now();
  const m = /([+-])(\d\d):(\d\d)$/.exec(state.at || "");
  if (m) tzOffsetMin = (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
  $("site-name").textContent = pick(state.name, lang);
  renderServices(state);
  renderCounters(state);
  renderDevices(state);
  renderClosed(state);
  $("updated").textContent = t("backyard.updated", { time: siteTime(siteNow(), true) });
  tickWaits();
}

function setOffline(offline) {
  const banner = $("offline");
  banner.hidden = !offline;
  banner.textContent = `⚠ ${t("common.offline")}`;
}

async function main() {
  let config = null;
  for (;;) {
    const r = await api("GET", "/api/ui/config");
    if (r.ok) { config = r.data; break; }
    setOffline(true);
    await new Promise((res) => setTimeout(res, 3000));
  }
  const wanted = param("lang") || config.default_lang || "ja";
  lang = await loadLang((config.langs || ["ja"]).includes(wanted) ? wanted : "ja", PAGE);
  translatePage();
  document.title = t("backyard.title");
  $("legend").textContent = t("backyard.legend", {
    ok: LEVEL_ICON.ok, warn: LEVEL_ICON.warn, alert: LEVEL_ICON.alert,
    warn_min: Math.round(WARN_S / 60), alert_min: Math.round(ALERT_S / 60) })
    + t("backyard.legend_serving", { min: Math.round(SERVE_S / 60) });
  live(render, (online) => setOffline(!online));
  setInterval(tickWaits, 1000);
  // the "since" of devices is relative: refresh it now and then without a push
  setInterval(() => { if (lastState) renderDevices(lastState); }, 30000);
}

main();

// Guide monitor (Q12, Q14, Q15): who is called to which counter, recent calls, waiting and
// second-wait counts with estimates, absent numbers, a ticker. Read from ten metres, so numbers
// are huge and every state has a word or a mark as well as a colour. A monitor keeps no state on
// the server: opening the URL is all the setup there is (busy season: just add screens).
//
// URL: ?layout=landscape|portrait  ?lang=ja  ?langs=ja,en,zh,ko (subtitle language rotates)
//      ?counters=1,2,3 (only these counters)  ?voice=1 (two-tone chime in the browser per call)
//      ?rotate=8 (seconds per subtitle language, at least 2)
import { live, api, param } from "/ui/lib/live.js";
import { loadLang, t, pick, translatePage } from "/ui/lib/i18n.js";

const PAGE = "monitor";
const ROTATE_MS = 1000 * Math.max(2, Number(param("rotate")) || 8);  // subtitle turn
const FLASH_MS = 6000;         // a fresh call stands out this long
const RECENT_MAX = { landscape: 10, portrait: 10 };
const TICKER_PX_PER_S = 110;

const layout = param("layout") === "portrait" ? "portrait" : "landscape";
const listParam = (name) => (param(name) || "").split(",").map((s) => s.trim()).filter(Boolean);
const langsParam = listParam("langs");
let primary = param("lang") || langsParam[0] || "ja";
let subs = param("langs") !== null ? langsParam.filter((l) => l !== primary)
  : [primary === "ja" ? "en" : "ja"];
let subIndex = 0;
const counterFilter = param("counters") !== null ? new Set(listParam("counters")) : null;
const voiceOn = param("voice") === "1";
const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");

let config = null;
let lastState = null;
let firstRender = true;
const subTables = {};
const tiles = new Map();       // counter id -> <li>, reused so a flash is not restarted

// --- texts ---------------------------------------------------------------------------------
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

async function fetchJson(path) {
  try {
    const r = await fetch(path);
    return r.ok ? await r.json() : {};
  } catch (e) {
    return {};
  }
}

async function loadSubTable(l) {
  if (subTables[l]) return;
  const [shared, own] = await Promise.all([fetchJson(`/ui/i18n/${l}.json`),
                                           fetchJson(`/ui/i18n/${PAGE}/${l}.json`)]);
  subTables[l] = { ...shared, ...own };
}

const subLang = () => (subs.length ? subs[subIndex % subs.length] : null);

function fill(text, vars) {
  return text.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : `{${k}}`));
}

// The subtitle (secondary language) text of a key; "" when there is none.
function st(key, vars = {}) {
  const l = subLang();
  const text = l && subTables[l] ? subTables[l][key] : undefined;
  return text === undefined ? "" : fill(text, vars);
}

// A label in the main language with its subtitle under it.
function pair(key, vars = {}, cls = "") {
  const frag = el("span", { class: `pair ${cls}`.trim() },
                  el("span", { class: "main", text: t(key, vars) }));
  const sub = st(key, vars);
  if (sub) frag.append(el("span", { class: "sub", lang: subLang(), text: sub }));
  return frag;
}

// A site text ({ja, en, ...}) in the main language with its subtitle.
function pairText(texts, cls = "") {
  const main = pick(texts, primary);
  const frag = el("span", { class: `pair ${cls}`.trim() }, el("span", { class: "main", text: main }));
  const l = subLang();
  const sub = l ? pick(texts, l) : "";
  if (sub && sub !== main) frag.append(el("span", { class: "sub", lang: l, text: sub }));
  return frag;
}

function translateStatic() {
  translatePage();
  document.querySelectorAll("[data-sub]").forEach((node) => {
    const sub = st(node.dataset.sub);
    node.textContent = sub;
    node.hidden = !sub;
    if (subLang()) node.setAttribute("lang", subLang());
  });
}

// --- helpers over the state ----------------------------------------------------------------
const shown = (counterId) => counterFilter === null || counterFilter.has(String(counterId));

function counterName(state, id) {
  const c = state.counters.find((x) => x.id === id);
  return c ? c.name : { ja: `${id}番窓口`, en: `Counter ${id}` };
}

function shownServices(state) {
  if (counterFilter === null) return state.services;
  const codes = new Set();
  state.counters.filter((c) => shown(c.id)).forEach((c) => c.services.forEach((s) => codes.add(s)));
  return state.services.filter((s) => codes.has(s.code));
}

function minutes(seconds, up) {
  return Math.max(0, up ? Math.ceil(seconds / 60) : Math.floor(seconds / 60));
}

// --- rendering -----------------------------------------------------------------------------
function gridShape(n) {
  if (n <= 4) return [1, Math.max(n, 3)];
  if (n <= 8) return [2, 4];
  if (n <= 12) return [3, 4];
  return [layout === "portrait" ? 3 : 4, Math.ceil(n / (layout === "portrait" ? 3 : 4))];
}

// A fresh call or recall stands out for a few seconds (a pulse; a still outline under
// prefers-reduced-motion, see monitor.css).
function flash(li) {
  li.classList.remove("flash");
  void li.offsetWidth;  // restart the animation
  li.classList.add("flash");
  clearTimeout(li.flashTimer);
  li.flashTimer = setTimeout(() => li.classList.remove("flash"), FLASH_MS);
}

function renderCalling(state) {
  const list = $("calling");
  const order = state.counters.map((c) => c.id);
  const calls = state.calling.filter((c) => shown(c.counter))
    .sort((a, b) => order.indexOf(a.counter) - order.indexOf(b.counter));
  const newest = state.recent_calls.find((c) => shown(c.counter)
    && calls.some((x) => x.counter === c.counter && x.number === c.number));
  const [cols, rows] = gridShape(calls.length);
  list.style.setProperty("--cols", cols);
  list.style.setProperty("--rows", rows);
  $("calling-empty").hidden = calls.length > 0;

  const keep = new Set();
  calls.forEach((c, i) => {
    keep.add(c.counter);
    let li = tiles.get(c.counter);
    if (!li) {
      li = el("li", { class: "tile", "data-testid": `call-${c.counter}` });
      tiles.set(c.counter, li);
    }
    const key = `${c.number}:${c.calls}`;
    if (li.dataset.key !== key) {
      li.dataset.key = key;
      if (!firstRender) flash(li);
    }
    const isNewest = Boolean(newest && newest.counter === c.counter);
    li.classList.toggle("newest", isNewest);
    li.classList.toggle("recalled", c.calls > 1);
    // refill (and refit) only when what the tile says changed: most pushes leave tiles alone
    const sig = `${key}|${isNewest}|${subLang()}|${gridShape(calls.length)}`;
    if (li.dataset.sig !== sig) {
      li.dataset.sig = sig;
      const name = counterName(state, c.counter);
      li.setAttribute("aria-label", t("monitor.tile_label", { number: c.number, counter: pick(name) }));
      const marks = el("span", { class: "marks" });
      if (isNewest) marks.append(el("span", { class: "mark newest-mark" }, "▶ ", pair("monitor.newest")));
      if (c.calls > 1) marks.append(el("span", { class: "mark recall-mark" }, "↺ ", pair("monitor.recall")));
      li.replaceChildren(
        el("span", { class: "num", text: String(c.number) }),
        el("span", { class: "arrow", "aria-hidden": "true", text: "→" }),
        el("span", { class: "to" }, pairText(name, "cname"), marks),
      );
      li.dataset.fit = "";
    }
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
  });
  for (const [id, li] of tiles) {
    if (!keep.has(id)) { li.remove(); tiles.delete(id); }
  }
}

function renderServices(state) {
  const body = $("services");
  const rows = shownServices(state).map((s) => {
    let est;
    if (s.status === "closed") est = el("span", { class: "state stop" }, "■ ", pair("monitor.status.closed"));
    else if (s.status === "full") est = el("span", { class: "state stop" }, "■ ", pair("monitor.status.full"));
    else if (s.open_counters === 0) est = el("span", { class: "state warn" }, "▲ ", pair("monitor.status.no_counter"));
    else if (!s.estimate) est = el("span", { class: "state", text: "—" });
    else {
      const low = minutes(s.estimate.low_s, false);
      const high = Math.max(1, minutes(s.estimate.high_s, true));
      est = low === 0 ? pair("monitor.estimate_within", { high }) : pair("monitor.estimate", { low, high });
    }
    return el("tr", { "data-testid": `service-${s.code}` },
      el("th", { scope: "row", class: "c-name" }, pairText(s.name, "sname")),
      el("td", { class: "c-num" },
        el("span", { class: "count", "data-testid": `waiting-${s.code}`, text: String(s.waiting) }),
        el("span", { class: "unit", text: t("monitor.people_unit") })),
      el("td", { class: "c-num c-second" },
        el("span", { class: "second-icon", "aria-hidden": "true", text: "↻" }),
        el("span", { class: "count", "data-testid": `second-wait-${s.code}`, text: String(s.second_wait) }),
        el("span", { class: "unit", text: t("monitor.people_unit") })),
      el("td", { class: "c-est", "data-testid": `estimate-${s.code}` }, est));
  });
  body.replaceChildren(...rows);
}

function renderRecent(state) {
  const seen = new Set();
  const items = [];
  for (const c of state.recent_calls) {
    if (!shown(c.counter) || seen.has(c.number)) continue;
    seen.add(c.number);
    const name = counterName(state, c.counter);
    items.push(el("li", { class: "chip", "aria-label": t("monitor.recent_label", { number: c.number, counter: pick(name) }) },
      el("span", { class: "chip-num", text: String(c.number) }),
      el("span", { class: "chip-to", "aria-hidden": "true", text: `→ ${pick(name, primary)}` })));
    if (items.length >= RECENT_MAX[layout]) break;
  }
  if (!items.length) items.push(el("li", { class: "none" }, pair("monitor.none")));
  $("recent").replaceChildren(...items);
}

function renderAbsent(state) {
  const items = state.absent.filter((a) => a.counter === null || shown(a.counter))
    .map((a) => el("li", { class: "chip absent-chip" }, el("span", { class: "chip-num", text: String(a.number) })));
  if (!items.length) items.push(el("li", { class: "none" }, pair("monitor.none")));
  $("absent").replaceChildren(...items);
}

function renderHeader(state) {
  const h = $("site-name");
  h.replaceChildren(pairText(state.name || (config && config.name) || {}));
}

// Long names shrink to their box instead of being cut (site names vary, "Counter 12" is long).
function fitWidth(node) {
  node.style.fontSize = "";
  if (node.scrollWidth > node.clientWidth + 1) {
    const size = parseFloat(getComputedStyle(node).fontSize);
    node.style.fontSize = `${Math.floor(size * (node.clientWidth / node.scrollWidth) * 0.98)}px`;
  }
}

// A section that does not fit its grid cell gets denser (smaller type, then fewer subtitles)
// rather than spilling over its neighbours: sites have any number of services.
function fitDensity(section, levels = 3) {
  for (let level = 0; level <= levels; level += 1) {
    section.dataset.density = String(level);
    if (section.scrollHeight <= section.clientHeight + 1) return;
  }
}

function render(state) {
  lastState = state;
  renderHeader(state);
  renderCalling(state);
  renderServices(state);
  renderRecent(state);
  renderAbsent(state);
  firstRender = false;
  tickClock();
  fitLayout();
}

function fitLayout(all = false) {
  document.querySelectorAll(all ? ".tile" : '.tile[data-fit=""]').forEach((li) => {
    li.dataset.fit = "1";
    const main = li.querySelector(".cname .main");
    if (main) fitWidth(main);
  });
  fitDensity(document.querySelector(".services-area"));
}

// --- announcements: aria-live and the chime -------------------------------------------------
function announce(state, events) {
  const calls = events.filter((e) => (e.type === "TicketCalled" || e.type === "TicketRecalled")
    && e.data && shown(e.data.counter));
  if (!calls.length) return;
  const last = calls[calls.length - 1];
  const number = last.data.number ?? (state.calling.find((c) => c.counter === last.data.counter) || {}).number;
  const key = last.type === "TicketRecalled" ? "monitor.announce_recall" : "monitor.announce";
  $("announce").textContent = t(key, { number, counter: pick(counterName(state, last.data.counter)) });
  calls.forEach((e) => chime(e.type === "TicketRecalled"));
}

let audio = null;
let audioFree = 0;

function setupSound() {
  if (!voiceOn) return;
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) return;
  audio = new Ctx();
  const btn = $("sound");
  const update = () => {
    const running = audio.state === "running";
    btn.hidden = running;
    btn.dataset.state = running ? "on" : "off";
    document.body.dataset.sound = running ? "on" : "off";
  };
  const resume = () => { audio.resume().then(update, update); };
  btn.replaceChildren(el("span", { "aria-hidden": "true", text: "♪ " }), pair("monitor.sound_enable"));
  btn.addEventListener("click", resume);
  document.addEventListener("keydown", resume);
  document.addEventListener("pointerdown", resume);
  audio.onstatechange = update;
  update();
  document.body.dataset.chimes = "0";
}

// A generated two-tone chime (high then low, "pin-pon"); a recall rings it twice. No file.
function chime(recall) {
  if (!audio || audio.state !== "running") return;
  document.body.dataset.chimes = String(Number(document.body.dataset.chimes || 0) + 1);
  const tones = recall ? [880, 698.46, 880, 698.46] : [880, 698.46];
  let at = Math.max(audio.currentTime + 0.02, audioFree);
  for (const freq of tones) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = "sine";
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, at);
    gain.gain.exponentialRampToValueAtTime(0.35, at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.9);
    osc.connect(gain).connect(audio.destination);
    osc.start(at);
    osc.stop(at + 0.95);
    at += 0.5;
  }
  audioFree = at + 0.5;
}

// --- ticker, clock, subtitles ---------------------------------------------------------------
let tickerTimer = null;

function renderTicker() {
  const box = $("ticker");
  const track = $("ticker-track");
  const notices = (config && config.notices) || [];
  box.hidden = notices.length === 0;
  clearInterval(tickerTimer);
  if (!notices.length) return;
  // every shown language, so the text does not change (and jump) when the subtitles turn
  const text = (n) => {
    const main = pick(n, primary);
    const others = subs.map((l) => pick(n, l)).filter((x) => x && x !== main);
    return others.length ? `${main}（${others.join(" / ")}）` : main;
  };
  if (reducedMotion.matches) {
    // no motion: one notice at a time, replaced in place
    let i = 0;
    const show = () => { track.textContent = text(notices[i % notices.length]); i += 1; };
    track.classList.add("still");
    show();
    tickerTimer = setInterval(show, 10000);
    return;
  }
  track.classList.remove("still");
  track.textContent = notices.map(text).join("　◆　");
  const distance = track.scrollWidth;
  track.style.animationDuration = `${Math.max(12, distance / TICKER_PX_PER_S)}s`;
}

let tzOffsetMin = null;

function tickClock() {
  if (lastState && lastState.at) {
    const m = /([+-])(\d\d):(\d\d)$/.exec(lastState.at);
    tzOffsetMin = m ? (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0;
  }
  if (tzOffsetMin === null) return;
  const d = new Date(Date.now() + tzOffsetMin * 60000);
  const hh = String(d.getUTCHours()).padStart(2, "0");
  const mm = String(d.getUTCMinutes()).padStart(2, "0");
  $("clock").textContent = `${hh}:${mm}`;
}

function rotateSubtitles() {
  if (subs.length < 2) return;
  subIndex = (subIndex + 1) % subs.length;
  document.body.dataset.sublang = subLang();
  translateStatic();
  if (lastState) render(lastState);
}

function setOffline(offline) {
  const banner = $("offline");
  banner.hidden = !offline;
  banner.replaceChildren(el("span", { "aria-hidden": "true", text: "⚠ " }), pair("common.offline"));
  document.body.classList.toggle("is-offline", offline);
}

// --- start -----------------------------------------------------------------------------------
async function loadConfig() {
  for (;;) {
    const r = await api("GET", "/api/ui/config");
    if (r.ok) return r.data;
    setOffline(true);
    await new Promise((res) => setTimeout(res, 3000));
  }
}

async function main() {
  document.body.classList.remove("landscape");
  document.body.classList.add(layout);
  document.documentElement.classList.add(layout);
  config = await loadConfig();
  const known = config.langs || ["ja", "en"];
  if (!known.includes(primary)) primary = config.default_lang || "ja";
  subs = subs.filter((l) => known.includes(l) && l !== primary);
  await Promise.all([loadLang(primary, PAGE), ...subs.map(loadSubTable)]);
  document.body.dataset.sublang = subLang() || "";
  translateStatic();
  setupSound();
  renderTicker();
  reducedMotion.addEventListener("change", renderTicker);
  window.addEventListener("resize", () => { fitLayout(true); renderTicker(); });
  live((state, events) => {
    render(state);
    announce(state, events);
  }, (online) => setOffline(!online));
  setInterval(tickClock, 5000);
  setInterval(rotateSubtitles, ROTATE_MS);
}

main();

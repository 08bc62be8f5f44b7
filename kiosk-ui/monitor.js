// Guide monitor (Q12, Q14, Q15): who is called to which counter, as a fixed number of very large
// "number -> counter" rows (newest first, as hall monitors do), then in a side band the waiting
// and second-wait counts with estimates, absent numbers and earlier calls; a ticker. Read from
// ten metres, so numbers are huge and every state has a word or a mark as well as a colour. A monitor keeps no state on
// the server: opening the URL is all the setup there is (busy season: just add screens).
//
// URL: ?layout=landscape|portrait (default: by the screen's shape)  ?lang=ja  ?langs=ja,en,zh,ko (subtitle language rotates)
//      ?counters=1,2,3 (only these counters)  ?voice=1 (two-tone chime in the browser per call)
//      ?rotate=8 (seconds per subtitle language, at least 2)  ?rows=4..8 (big rows; default 6
//      landscape, 7 portrait: fewer rows, taller type)
import { live, api, param, siteNow } from "/ui/lib/live.js";
import { loadLang, t, pick, translatePage } from "/ui/lib/i18n.js";

const PAGE = "monitor";
const ROTATE_MS = 1000 * Math.max(2, Number(param("rotate")) || 8);  // subtitle turn
const FLASH_MS = 6000;         // a fresh call stands out this long
const RECENT_MAX = { landscape: 8, portrait: 8 };
const ROWS = { landscape: 6, portrait: 7 };  // big rows; ?rows=4..8 overrides
const TICKER_PX_PER_S = 110;

// Without ?layout the screen's shape decides: a monitor mounted upright must not get the
// landscape grid, whose counter column falls off a narrow screen.
const layout = ["portrait", "landscape"].includes(param("layout")) ? param("layout")
  : (innerHeight > innerWidth ? "portrait" : "landscape");
const rows = Math.min(8, Math.max(4, Math.round(Number(param("rows"))) || ROWS[layout]));
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
const tiles = new Map();       // counter id -> its row <li>, reused so a flash is not restarted

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
// The newest calls first. A recall (or a held ticket called again) counts as a new call, so the
// order is the last call's position in recent_calls (its event seq); calls older than that list
// follow by their first call time.
function currentCalls(state) {
  const lastSeq = new Map();
  state.recent_calls.forEach((c) => {
    const k = `${c.counter}:${c.number}`;
    if (!lastSeq.has(k)) lastSeq.set(k, c.seq);
  });
  const seq = (c) => lastSeq.get(`${c.counter}:${c.number}`) ?? -1;
  const at = (c) => (c.called_at ? Date.parse(c.called_at) : 0);
  return state.calling.filter((c) => shown(c.counter))
    .sort((a, b) => (seq(b) - seq(a)) || (at(b) - at(a)));
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

// Closed today by the ward's calendar (a holiday, the year end, a ward closed day): the empty
// calling area says why, with the holiday's name, in the main language and the subtitle.
function renderClosed(state) {
  const today = state.today;
  const closed = !!(today && !today.open && today.reason && today.reason !== "weekly");
  const box = $("closed-today");
  box.hidden = !closed;
  if (!closed) { box.replaceChildren(); return; }
  box.dataset.reason = today.reason;
  $("calling-empty").hidden = true;  // "nobody is called" says less than why
  box.replaceChildren(pair(`monitor.closed.${today.reason}`, { name: today.holiday || "" }));
}

// The rows: a fixed number (ROWS), each "number -> counter" with the counter's name as tall as
// the number; the rows keep their size however many counters call, so a busy hall reads like a
// quiet one. Calls beyond the rows move to the "earlier calls" list of the side band.
function renderCalling(state) {
  const list = $("calling");
  const calls = currentCalls(state).slice(0, rows);
  list.style.setProperty("--rows", rows);
  $("calling-empty").hidden = calls.length > 0;
  renderClosed(state);

  const keep = new Set();
  calls.forEach((c, i) => {
    keep.add(c.counter);
    let li = tiles.get(c.counter);
    if (!li) {
      li = el("li", { class: "row", "data-testid": `call-${c.counter}` });
      tiles.set(c.counter, li);
    }
    const key = `${c.number}:${c.calls}`;
    if (li.dataset.key !== key) {
      li.dataset.key = key;
      if (!firstRender) flash(li);
    }
    const isNewest = i === 0;
    li.classList.toggle("newest", isNewest);
    li.classList.toggle("recalled", c.calls > 1);
    li.dataset.number = String(c.number);
    // refill (and refit) only when what the row says changed: most pushes leave rows alone
    const sig = `${key}|${isNewest}|${subLang()}`;
    if (li.dataset.sig !== sig) {
      li.dataset.sig = sig;
      const name = counterName(state, c.counter);
      const main = pick(name, primary);
      const l = subLang();
      const sub = l ? pick(name, l) : "";
      li.setAttribute("aria-label", t(c.calls > 1 ? "monitor.row_label_recall" : "monitor.row_label",
                                      { number: c.number, counter: main }));
      const marks = el("span", { class: "marks" });
      if (c.calls > 1) marks.append(el("span", { class: "mark recall-mark" }, el("span", { "aria-hidden": "true", text: "↺" }), pair("monitor.recall")));
      // a recalled row says so; the newest mark (the top row is the newest anyway) gives way
      else if (isNewest) marks.append(el("span", { class: "mark newest-mark" }, el("span", { "aria-hidden": "true", text: "▶" }), pair("monitor.newest")));
      li.replaceChildren(
        el("span", { class: "num", "data-testid": "row-number", text: String(c.number) }),
        el("span", { class: "arrow", "aria-hidden": "true", text: "▶" }),
        el("span", { class: "cname", "data-testid": "row-counter", lang: primary, text: main }),
        el("span", { class: "side" },
          sub && sub !== main ? el("span", { class: "csub", lang: l, text: sub }) : null, marks),
      );
      li.dataset.fit = "";
    }
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
  });
  for (const [id, li] of tiles) {
    if (!keep.has(id)) { li.remove(); tiles.delete(id); }
  }
}

// Waiting counts, each visitor counted once (Q15): the edge's `waiting` holds every ticket in
// the queue, second-stage ones included, and `second_wait` those at stage >= 2. The band shows
// first-time waiters (waiting - second_wait) and the second wait side by side, so the two
// columns add up to the people in the queue (a second-reception queue such as T used to show
// "14人 / ↻14人" for 14 people).
function renderServices(state) {
  const body = $("services");
  const rowsOut = shownServices(state).map((s) => {
    const second = Math.max(0, s.second_wait || 0);
    const first = Math.max(0, s.waiting - second);
    let est;
    if (s.status === "closed") est = el("span", { class: "state stop" }, el("span", { "aria-hidden": "true", text: "■" }), pair("monitor.status.closed"));
    else if (s.status === "full") est = el("span", { class: "state stop" }, el("span", { "aria-hidden": "true", text: "■" }), pair("monitor.status.full"));
    else if (s.open_counters === 0) est = el("span", { class: "state warn" }, el("span", { "aria-hidden": "true", text: "▲" }), pair("monitor.status.no_counter"));
    else if (!s.estimate || s.waiting === 0) est = el("span", { class: "state", text: "—" });
    else {
      const low = minutes(s.estimate.low_s, false);
      const high = Math.max(1, minutes(s.estimate.high_s, true));
      est = low === 0 ? pair("monitor.estimate_within", { high }) : pair("monitor.estimate", { low, high });
    }
    return el("tr", { "data-testid": `service-${s.code}` },
      el("th", { scope: "row", class: "c-name" }, pairText(s.name, "sname")),
      el("td", { class: "c-num" },
        el("span", { class: "count", "data-testid": `waiting-${s.code}`, text: String(first) }),
        el("span", { class: "unit", text: t("monitor.people_unit") })),
      el("td", { class: "c-num c-second" },
        el("span", { class: "count", "data-testid": `second-wait-${s.code}`, text: String(second) }),
        el("span", { class: "unit", text: t("monitor.people_unit") })),
      el("td", { class: "c-est", "data-testid": `estimate-${s.code}` }, est));
  });
  body.replaceChildren(...rowsOut);
}

// Earlier calls: first the calls still open beyond the rows (a busy hall has more than fit),
// then finished recent calls, newest first, each number once.
function renderRecent(state) {
  const inRows = new Set(currentCalls(state).slice(0, rows).map((c) => c.number));
  const seen = new Set(inRows);
  const items = [];
  const add = (c, still) => {
    if (!shown(c.counter) || seen.has(c.number)) return;
    seen.add(c.number);
    const name = counterName(state, c.counter);
    items.push(el("li", { class: `chip${still ? " still" : ""}`, "aria-label": t("monitor.recent_label", { number: c.number, counter: pick(name) }) },
      el("span", { class: "chip-num", text: String(c.number) }),
      el("span", { class: "chip-to", "aria-hidden": "true", lang: primary, text: `▶ ${pick(name, primary)}` })));
  };
  currentCalls(state).slice(rows).forEach((c) => add(c, true));
  state.recent_calls.forEach((c) => add(c, false));
  const out = items.slice(0, RECENT_MAX[layout]);
  if (!out.length) out.push(el("li", { class: "none" }, pair("monitor.none")));
  $("recent").replaceChildren(...out);
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
  // a few passes: the grid column a name sits in may itself narrow as the name shrinks
  for (let i = 0; i < 5 && node.scrollWidth > node.clientWidth + 1; i += 1) {
    const size = parseFloat(getComputedStyle(node).fontSize);
    node.style.fontSize = `${Math.floor(size * (node.clientWidth / node.scrollWidth) * 0.98)}px`;
  }
}

// A section that does not fit its grid cell gets denser (smaller type, then fewer subtitles)
// rather than spilling over its neighbours: sites have any number of services.
function fitDensity(section, levels = 5) {
  for (let level = 0; level <= levels; level += 1) {
    section.dataset.density = String(level);
    // each level keeps the previous ones (CSS matches data-dense~="N")
    section.dataset.dense = Array.from({ length: level }, (_, i) => i + 1).join(" ");
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

// A counter name fits its (capped) column: one line at full size if it can; otherwise it wraps
// onto two lines (at a phrase boundary: lang + word-break: auto-phrase) in smaller type, and
// shrinks further only if still too big. Only this name changes; the other rows keep theirs.
function fitName(li, node) {
  node.classList.remove("wrap");
  node.style.fontSize = "";
  if (node.scrollWidth <= node.clientWidth + 1) return;
  node.classList.add("wrap");
  const side = layout === "portrait" ? li.querySelector(".side") : null;
  const room = () => li.clientHeight - (side ? side.offsetHeight : 0);
  const over = () => node.scrollWidth > node.clientWidth + 1 || node.scrollHeight > room() + 1;
  for (let i = 0; i < 6 && over(); i += 1) {
    const size = parseFloat(getComputedStyle(node).fontSize);
    const ratio = Math.min(node.clientWidth / node.scrollWidth, room() / node.scrollHeight);
    node.style.fontSize = `${Math.floor(size * Math.min(0.95, ratio))}px`;
  }
}

// The second-language label beside a name (landscape): one line if it fits; a long one (a long
// counter name's translation) wraps onto up to three lines in smaller type rather than shrinking
// to an unreadable single line. In portrait it has the whole width under the name: one line.
function fitSub(li, node) {
  node.classList.remove("wrap");
  node.style.fontSize = "";
  if (layout === "portrait" || node.scrollWidth <= node.clientWidth + 1) {
    fitWidth(node);
    return;
  }
  node.classList.add("wrap");
  const side = node.parentNode;
  const over = () => node.scrollWidth > node.clientWidth + 1
    || side.scrollHeight > li.clientHeight + 1;
  for (let i = 0; i < 6 && over(); i += 1) {
    const size = parseFloat(getComputedStyle(node).fontSize);
    const ratio = Math.min(node.clientWidth / node.scrollWidth, li.clientHeight / side.scrollHeight);
    node.style.fontSize = `${Math.floor(size * Math.min(0.95, ratio))}px`;
  }
}

// Rows share their column widths (subgrid), so a fit in one row moves the others: whenever any
// row is new or changed, every row is refitted, names first (they set the columns), then the
// labels and marks in what is left.
function fitLayout(all = false) {
  // the band first: its height sets the rows' height, hence the type and the column widths
  const band = document.querySelector(".band");
  const density = band.dataset.density;
  fitDensity(band);
  const rowsNow = [...document.querySelectorAll(".row")];
  if (all || band.dataset.density !== density || rowsNow.some((li) => li.dataset.fit === "")) {
    rowsNow.forEach((li) => {
      const name = li.querySelector(".cname");
      if (name) { name.classList.remove("wrap"); name.style.fontSize = ""; }
    });
    rowsNow.forEach((li) => {
      li.dataset.fit = "1";
      const name = li.querySelector(".cname");
      if (name) fitName(li, name);
    });
    rowsNow.forEach((li) => {
      const sub = li.querySelector(".csub");
      if (sub) fitSub(li, sub);
      // a mark too wide for its column drops its second-language word (the icon and main word stay)
      const marks = li.querySelector(".marks");
      if (marks) {
        marks.classList.remove("tight");
        if (marks.scrollWidth > marks.parentNode.clientWidth + 1) marks.classList.add("tight");
      }
    });
  }
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
  // each language in its own span with its lang, so a wrapped line breaks Japanese at a phrase
  // boundary (word-break: auto-phrase applies to :lang(ja) only), not mid-word
  const nodes = (n) => {
    const main = pick(n, primary);
    const others = subs.map((l) => [l, pick(n, l)]).filter(([, x]) => x && x !== main);
    const out = [el("span", { lang: primary, text: main })];
    others.forEach(([l, x], k) => out.push(k === 0 ? "（" : " / ", el("span", { lang: l, text: x })));
    if (others.length) out.push("）");
    return out;
  };
  if (reducedMotion.matches) {
    // no motion: one notice at a time, replaced in place
    let i = 0;
    const show = () => { track.replaceChildren(...nodes(notices[i % notices.length])); i += 1; };
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
  const d = new Date(siteNow() + tzOffsetMin * 60000);
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
  // web fonts are not fetched, but the system CJK font may load after the first render
  document.fonts.ready.then(() => fitLayout(true));
  live((state, events) => {
    render(state);
    announce(state, events);
  }, (online) => setOffline(!online));
  setInterval(tickClock, 5000);
  setInterval(rotateSubtitles, ROTATE_MS);
}

main();

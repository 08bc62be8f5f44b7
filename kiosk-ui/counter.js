// Counter display (Q13): the number being served at one counter, as large as the screen
// allows, for a small screen above the counter. A new call is highlighted for a few seconds and
// a recall blinks (a still highlight under prefers-reduced-motion); a word always says which.
//
// URL: ?counter=1 (required; without it the page lists the counters)  ?lang=ja
//      ?langs=ja,en (the first is the main language, the second the subtitle)  ?voice=1 (chime)
import { live, api, param } from "/ui/lib/live.js";
import { loadLang, t, pick, translatePage } from "/ui/lib/i18n.js";

const PAGE = "counter";
const MARK_MS = 6000;
const counterId = param("counter");
const voiceOn = param("voice") === "1";
const langsParam = (param("langs") || "").split(",").map((s) => s.trim()).filter(Boolean);
let primary = param("lang") || langsParam[0] || "ja";
let subLang = param("langs") !== null ? (langsParam.find((l) => l !== primary) || null)
  : (primary === "ja" ? "en" : "ja");
let subTable = {};
let prev = null;          // {id, calls} of the ticket shown last
let markTimer = null;
let lastState = null;

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

async function fetchJson(path) {
  try {
    const r = await fetch(path);
    return r.ok ? await r.json() : {};
  } catch (e) {
    return {};
  }
}

function st(key, vars = {}) {
  const text = subLang ? subTable[key] : undefined;
  return text === undefined ? ""
    : text.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : `{${k}}`));
}

function pair(key, vars = {}) {
  const node = el("span", { class: "pair" }, el("span", { class: "main", text: t(key, vars) }));
  const sub = st(key, vars);
  if (sub) node.append(el("span", { class: "sub", lang: subLang, text: sub }));
  return node;
}

function pairText(texts) {
  const main = pick(texts, primary);
  const node = el("span", { class: "pair" }, el("span", { class: "main", text: main }));
  const sub = subLang ? pick(texts, subLang) : "";
  if (sub && sub !== main) node.append(el("span", { class: "sub", lang: subLang, text: sub }));
  return node;
}

function mark(kind) {
  document.body.dataset.mark = "";
  void document.body.offsetWidth;  // restart the blink
  document.body.dataset.mark = kind;
  clearTimeout(markTimer);
  markTimer = setTimeout(() => {
    delete document.body.dataset.mark;
    if (lastState) render(lastState);
  }, MARK_MS);
}

function render(state) {
  lastState = state;
  const c = state.counters.find((x) => x.id === counterId);
  const number = $("number");
  const sub = $("number-sub");
  const label = $("label");
  if (!c) {
    document.body.dataset.state = "unknown";
    $("counter-name").replaceChildren(pair("counter.unknown", { id: counterId }));
    number.textContent = "—";
    sub.replaceChildren();
    label.replaceChildren();
    return;
  }
  $("counter-name").replaceChildren(pairText(c.name));
  document.title = `${pick(c.name, primary)} — ${t("counter.title")}`;
  const cur = c.open ? c.current : null;
  if (cur && prev !== null) {
    if (prev.id !== cur.id) mark("call");
    else if (cur.calls > prev.calls) mark("recall");
  }
  prev = cur ? { id: cur.id, calls: cur.calls } : { id: null, calls: 0 };

  // closed today by the ward's calendar (a holiday, the year end, a ward closed day): say so
  const today = state.today;
  const dayClosed = !!(today && !today.open && today.reason && today.reason !== "weekly");
  if (!c.open) {
    document.body.dataset.state = "closed";
    const key = dayClosed ? "counter.day_closed" : "counter.closed";
    number.textContent = t(key);
    sub.replaceChildren(el("span", { lang: subLang, text: st(key) }));
    label.replaceChildren(el("span", { class: "icon", "aria-hidden": "true", text: "■ " }),
                          pair(dayClosed ? "counter.label_day_closed" : "counter.label_closed"));
  } else if (!cur) {
    document.body.dataset.state = "idle";
    number.textContent = "—";
    sub.replaceChildren(pair("counter.none"));
    label.replaceChildren(pair("counter.label"));
  } else {
    document.body.dataset.state = "called";
    number.textContent = String(cur.number);
    sub.replaceChildren();
    const m = document.body.dataset.mark;
    if (m === "recall") {
      label.replaceChildren(el("span", { class: "icon", "aria-hidden": "true", text: "↺ " }),
                            pair("counter.recall"));
    } else if (m === "call") {
      label.replaceChildren(el("span", { class: "icon", "aria-hidden": "true", text: "▶ " }),
                            pair("counter.calling"));
    } else {
      label.replaceChildren(pair("counter.label"));
    }
  }
  sub.hidden = !sub.textContent;
  fit();
}

// Nothing is cut on a small screen: a long counter name, a four-digit number or a long word
// ("準備中", "Closed") shrinks until it fits its box, in width and in height.
function shrink(node, box = node) {
  node.style.fontSize = "";
  const over = () => node.scrollWidth > box.clientWidth + 1 || node.scrollHeight > box.clientHeight + 1;
  for (let i = 0; i < 12 && over(); i += 1) {
    const size = parseFloat(getComputedStyle(node).fontSize);
    const ratio = Math.min(box.clientWidth / node.scrollWidth, box.clientHeight / node.scrollHeight);
    node.style.fontSize = `${Math.max(8, Math.floor(size * Math.min(0.95, ratio)))}px`;
  }
}

function fit() {
  shrink($("counter-name"));
  shrink($("label"));
  shrink($("number"));
  shrink($("number-sub"));
}

// --- chime (same two tones as the guide monitor; generated, no file) ----------------------
let audio = null;
let audioFree = 0;

function setupSound() {
  if (!voiceOn) return;
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) return;
  audio = new Ctx();
  const btn = $("sound");
  const update = () => {
    btn.hidden = audio.state === "running";
    document.body.dataset.sound = audio.state === "running" ? "on" : "off";
  };
  const resume = () => { audio.resume().then(update, update); };
  btn.replaceChildren(el("span", { "aria-hidden": "true", text: "♪ " }), pair("counter.sound_enable"));
  btn.addEventListener("click", resume);
  document.addEventListener("keydown", resume);
  document.addEventListener("pointerdown", resume);
  audio.onstatechange = update;
  document.body.dataset.chimes = "0";
  update();
}

function chime(recall) {
  if (!audio || audio.state !== "running") return;
  document.body.dataset.chimes = String(Number(document.body.dataset.chimes || 0) + 1);
  let at = Math.max(audio.currentTime + 0.02, audioFree);
  for (const freq of recall ? [880, 698.46, 880, 698.46] : [880, 698.46]) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
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

function setOffline(offline) {
  const banner = $("offline");
  banner.hidden = !offline;
  banner.replaceChildren(el("span", { "aria-hidden": "true", text: "⚠ " }), pair("common.offline"));
}

async function loadConfig() {
  for (;;) {
    const r = await api("GET", "/api/ui/config");
    if (r.ok) return r.data;
    setOffline(true);
    await new Promise((res) => setTimeout(res, 3000));
  }
}

function showPicker(config) {
  $("pick").hidden = false;
  document.querySelector(".cd-head").hidden = true;
  $("main").hidden = true;
  $("pick-list").replaceChildren(...config.counters.map((c) => el("li", {},
    el("a", { href: `/ui/counter.html?counter=${encodeURIComponent(c.id)}&lang=${primary}` },
       pairText(c.name)))));
}

async function main() {
  const config = await loadConfig();
  const known = config.langs || ["ja", "en"];
  if (!known.includes(primary)) primary = config.default_lang || "ja";
  if (subLang && (!known.includes(subLang) || subLang === primary)) subLang = null;
  await loadLang(primary, PAGE);
  if (subLang) {
    const [shared, own] = await Promise.all([fetchJson(`/ui/i18n/${subLang}.json`),
                                             fetchJson(`/ui/i18n/${PAGE}/${subLang}.json`)]);
    subTable = { ...shared, ...own };
  }
  translatePage();
  if (!counterId) {
    showPicker(config);
    return;
  }
  setupSound();
  live((state, events) => {
    render(state);
    events.filter((e) => (e.type === "TicketCalled" || e.type === "TicketRecalled")
      && e.data && String(e.data.counter) === counterId)
      .forEach((e) => chime(e.type === "TicketRecalled"));
  }, (online) => setOffline(!online));
  window.addEventListener("resize", fit);
  document.fonts.ready.then(fit);
}

main();

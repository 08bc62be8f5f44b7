// Operator panel (Q8-Q11): one counter's view. /ui/operator.html?counter=1[&lang=en]
// Live state over the edge's websocket; commands over its HTTP API with the counter's session.

import { live, api, param } from "./lib/live.js";
import { loadLang, t, pick, translatePage } from "./lib/i18n.js";
import { Session } from "./operator/session.js";
import { installKeys } from "./operator/keys.js";
import { counterQueue, heldHere, absentAll, counterRow, devicesHere, parseNumber, parseScan,
         halfWidth } from "./operator/model.js";
import { el, renderNow, renderSince, renderLists, renderDevices, renderButtons }
  from "./operator/render.js";
import { TransferForm } from "./operator/transfer.js";

const $ = (id) => document.getElementById(id);

// the view model: what the page shows, rebuilt on each state push
const v = {
  lang: "ja", cfg: null, counterId: param("counter"), counter: null, state: null,
  receivedAt: 0, row: null, queue: [], held: [], absent: [], devices: [],
  services: new Map(), counters: new Map(), lastCall: new Map(), reasons: {},
  view: "none",
};
let session = null;
const transfer = new TransferForm(v, (body, done) => run("transfer", body, done));
// Commands run one after another. The same command pressed again while it is still on its way
// (a double click, a key held) is dropped, so a double press never skips a visitor.
let chain = Promise.resolve();
const inFlight = new Set();

// --- messages --------------------------------------------------------------------------------

function say(kind, text) {
  const box = $("message");
  box.className = `op-message ${kind}`;
  const icon = kind === "error" ? "⚠" : kind === "ok" ? "✓" : "ℹ";
  const lead = kind === "error" ? `${t("op.msg.refused")} ` : "";
  const parts = [el("span", { class: "op-icon", "aria-hidden": "true", text: icon }), " "];
  if (lead) parts.push(el("strong", { text: lead }));
  box.replaceChildren(...parts, text);
}

// The edge's own sentence: Japanese or English (zh/ko read the English one).
function serverText(error) {
  return v.lang === "ja" ? (error.message_ja || error.message) : (error.message || error.code);
}

function refused(r) {
  if (r.status === 401 || r.error.code === "login_required") {
    session.token = null;
    showView("login");
    say("error", `${t(staffLogin() ? "op.login.requiredStaff" : "op.login.required")} (${serverText(r.error)})`);
    return;
  }
  say("error", serverText(r.error));
}

// --- views -----------------------------------------------------------------------------------

// Sites with access "staff": everyone signs in (login ID, or the counter's PIN as a fallback).
function staffLogin() { return !!(v.cfg && v.cfg.access === "staff"); }
function needsLogin() { return staffLogin() || !!(v.counter && v.counter.pin); }

function showLoginForms() {
  const staff = staffLogin(), pin = !!(v.counter && v.counter.pin);
  $("staff-form").hidden = !staff;
  $("login-form").hidden = !pin;
  $("pin-h").hidden = !(staff && pin);
  $("login-h").dataset.i18n = staff ? "op.login.staffTitle" : "op.login.title";
  $("login-h").textContent = t($("login-h").dataset.i18n);
  $("pin").value = "";
  $("staff-password").value = "";
  (staff ? $("staff-id") : $("pin")).focus();
}

function showView(name) {
  v.view = name;
  $("login-view").hidden = name !== "login";
  $("chooser-view").hidden = name !== "chooser";
  $("panel-view").hidden = name !== "panel";
  $("openstate").hidden = name !== "panel";
  $("btn-logout").hidden = !(name === "panel" && v.counter && needsLogin());
  if (name === "login") showLoginForms();
  if (name !== "panel") transfer.close(false);
  render();
}

function renderHeader() {
  const name = v.row ? pick(v.row.name) : v.counter ? pick(v.counter.name) : t("op.title");
  $("counter-name").textContent = name;
  $("site-name").textContent = v.cfg ? pick(v.cfg.name) : "";
  document.title = `${name} — ${t("op.title")}`;
}

function renderLangs() {
  const langs = (v.cfg && v.cfg.langs) || ["ja", "en", "zh", "ko"];
  $("langs").replaceChildren(...langs.map((l) => el("button", {
    type: "button", class: "op-lang", lang: l, "data-testid": `lang-${l}`,
    "aria-pressed": String(l === v.lang), onclick: () => switchLang(l),
  }, t(`common.lang.${l}`))));
}

function renderChooser() {
  const counters = (v.cfg && v.cfg.counters) || [];
  $("chooser-list").replaceChildren(...counters.map((c) => el("li", {},
    el("a", { href: `operator.html?counter=${encodeURIComponent(c.id)}&lang=${v.lang}`,
              "data-testid": "counter-choice" }, pick(c.name)))));
}

function numberValue() { return parseNumber($("number").value); }

function render() {
  renderHeader();
  if (v.view === "chooser") renderChooser();
  if (v.view !== "panel" || !v.state) return;
  renderNow(v);
  renderLists(v, actions);
  renderDevices(v);
  renderButtons(v, numberValue() !== null);
  if (!v.row || !v.row.current) transfer.close(false);
}

function onState(state, events) {
  v.state = state;
  v.receivedAt = Date.now();
  v.services = new Map((state.services || []).map((s) => [s.code, s]));
  v.counters = new Map((state.counters || []).map((c) => [c.id, c]));
  for (const e of events) {
    if ((e.type === "TicketCalled" || e.type === "TicketRecalled")
        && e.data.counter === v.counterId) v.lastCall.set(e.data.number, e.at);
  }
  v.row = counterRow(state, v.counterId);
  const counter = v.row || (v.counter && { id: v.counterId, services: v.counter.services });
  v.queue = counter ? counterQueue(state, counter) : [];
  v.held = heldHere(state, v.counterId);
  v.absent = absentAll(state);
  v.devices = devicesHere(state, v.counterId);
  // a closed day (staff closed it) only informs: the edge opens the next day by itself on the
  // first command, so nothing is disabled for it and the edge's answer is shown
  v.reasons = { dayClosed: state.day && !state.day_open ? "op.why.dayClosed" : null,
                closed: v.row && v.row.open ? null : "op.why.closed" };
  render();
}

// --- commands --------------------------------------------------------------------------------

function run(command, body, done) {
  const key = `${command} ${JSON.stringify(body ?? null)}`;
  if (inFlight.has(key)) return Promise.resolve(null);
  inFlight.add(key);
  const step = chain.then(async () => {
    try {
      if (v.view !== "panel") return null;  // a 401 before it sent us to the PIN form
      const r = await session.command(command, body);
      if (!r.ok) { refused(r); return r; }
      const ticket = r.data && r.data.ticket;
      say("ok", done(ticket || {}));
      return r;
    } finally {
      inFlight.delete(key);
    }
  });
  chain = step.catch(() => null);
  return step;
}

const called = (tk) => t("op.done.call", { number: tk.number });

function takeNumber() {
  const n = numberValue();
  if (n === null) {
    say("error", t("op.why.noNumber"));
    $("number").focus();
  }
  return n;
}

async function withNumber(command, done) {
  const number = takeNumber();
  if (number === null) return;
  const r = await run(command, { number }, done);
  if (r && r.ok) {  // done: the shortcuts work again (digits typed anywhere come back here)
    $("number").value = "";
    if (document.activeElement === $("number")) $("number").blur();
  }
  render();
}

const actions = {
  open: () => run("open", undefined, () => t("op.done.open")),
  close: () => run("close", undefined, () => t("op.done.close")),
  callNext: () => run("call-next", undefined, called),
  recall: () => run("recall", undefined, (tk) => t("op.done.recall", { number: tk.number })),
  hold: () => run("hold", undefined, (tk) => t("op.done.hold", { number: tk.number })),
  absent: () => run("absent", undefined, (tk) => t("op.done.absent", { number: tk.number })),
  finish: () => run("finish", undefined, (tk) => t("op.done.finish", { number: tk.number })),
  callNumber: (number) => run("call", { number }, called),
  callHeld: (number) => run("call-held", { number }, called),
  clearAbsence: (number) => run("clear-absence", { number },
                                (tk) => t("op.done.clear", { number: tk.number })),
  fieldCall: () => withNumber("call", called),
  fieldCallHeld: () => withNumber("call-held", called),
  fieldClear: () => withNumber("clear-absence", (tk) => t("op.done.clear", { number: tk.number })),
  fieldCancel: () => withNumber("cancel", (tk) => t("op.done.cancel", { number: tk.number })),
  transfer: () => transfer.open(),
};

// A scan (keyboard wedge): clear the absence of that ticket and call it; when it is not absent,
// call it (Q9, Q10). A QR token is looked up for its number first.
async function scan(text) {
  const code = parseScan(text);
  if (!code) { say("error", t("op.scan.unreadable")); return; }
  const r = await run("clear-absence", code, (tk) => t("op.done.clear", { number: tk.number }));
  if (!r || r.ok || r.error.code !== "not_absent") return;
  let number = code.number;
  if (number === undefined) {
    const found = await api("GET", `/api/tickets/${encodeURIComponent(code.token)}`);
    if (!found.ok) { refused(found); return; }
    number = found.data.number;
  }
  await run("call", { number }, called);
}

// --- login, language, wiring -----------------------------------------------------------------

async function login(e) {
  e.preventDefault();
  const pin = halfWidth($("pin").value).trim();
  if (!/^[0-9]{4,12}$/.test(pin)) { say("error", t("op.login.format")); $("pin").focus(); return; }
  const r = await session.login({ pin });
  if (!r.ok) {
    say("error", serverText(r.error));
    $("pin").value = "";
    $("pin").focus();
    return;
  }
  signedIn();
}

async function staffSignIn(e) {
  e.preventDefault();
  const login = $("staff-id").value.trim(), password = $("staff-password").value;
  if (!login || !password) {
    say("error", t("op.login.staffMissing"));
    (login ? $("staff-password") : $("staff-id")).focus();
    return;
  }
  // The password is cleared and the button held while the hub answers, so a reply that
  // arrives late can neither wipe what was typed next nor be sent twice.
  $("staff-password").value = "";
  const button = e.submitter ?? $("staff-form").querySelector("button[type=submit]");
  if (button) button.disabled = true;
  let r;
  try {
    r = await session.login({ login, password });
  } finally {
    if (button) button.disabled = false;
  }
  if (!r.ok) {
    say("error", serverText(r.error));
    $("staff-password").focus();
    return;
  }
  signedIn();
}

function signedIn() {
  say("ok", t("op.done.login"));
  showView("panel");
  document.activeElement?.blur?.();
}

async function logout() {
  await session.logout();
  showView("login");
  say("ok", t("op.done.logout"));
}

async function switchLang(lang) {
  v.lang = await loadLang(lang, "operator");
  const url = new URL(location.href);
  url.searchParams.set("lang", lang);
  history.replaceState(null, "", url);
  translatePage();
  renderLangs();
  $("offline").textContent = t("common.offline");
  transfer.refill();
  render();
}

function wire() {
  document.querySelectorAll("[data-action]").forEach((b) => {
    const name = { "call-next": "callNext", "call-number": "fieldCall",
                   "call-held": "fieldCallHeld", "clear-absence": "fieldClear",
                   cancel: "fieldCancel" }[b.dataset.action] || b.dataset.action;
    b.addEventListener("click", () => actions[name]());
  });
  $("btn-open").addEventListener("click", actions.open);
  $("btn-close").addEventListener("click", actions.close);
  $("btn-logout").addEventListener("click", logout);
  $("login-form").addEventListener("submit", login);
  $("staff-form").addEventListener("submit", staffSignIn);
  transfer.wire();
  const field = $("number");
  field.addEventListener("input", () => renderButtons(v, numberValue() !== null));
  field.addEventListener("keydown", (e) => {
    if (e.isComposing) return;
    if (e.key === "Escape") { field.value = ""; field.blur(); render(); return; }
    if (e.key !== "Enter") return;
    e.preventDefault();
    const text = field.value;
    if (parseNumber(text) !== null) { actions.fieldCall(); return; }
    if (parseScan(text)) { field.value = ""; render(); scan(text); return; }
    if (text.trim()) say("error", t("op.why.noNumber"));
  });
  const when = (fn) => (...args) => { if (v.view === "panel") fn(...args); };
  const press = (testid) => when(() => {
    const b = document.querySelector(`[data-testid="${testid}"]`);
    if (b.disabled) say("error", b.title || t("op.why.closed"));
    else b.click();
  });
  installKeys({
    shortcuts: { n: press("call-next"), space: press("call-next"), r: press("recall"),
                 h: press("hold"), a: press("absent"), f: press("finish"),
                 t: press("transfer") },
    onScan: when(scan),
    onDigit: (d) => {
      if (v.view !== "panel") return;
      field.value = halfWidth(d);
      field.focus();
      field.setSelectionRange(field.value.length, field.value.length);
      renderButtons(v, numberValue() !== null);
    },
    blocked: () => v.view !== "panel" || transfer.isOpen(),
  });
  setInterval(() => { if (v.view === "panel" && v.state) renderSince(v); }, 1000);
}

async function loadConfig() {
  for (;;) {
    const r = await api("GET", "/api/ui/config");
    if (r.ok) return r.data;
    say("error", serverText(r.error));
    await new Promise((ok) => setTimeout(ok, 2000));
  }
}

async function boot() {
  v.lang = await loadLang(param("lang", "ja"), "operator");
  translatePage();
  $("offline").textContent = t("common.offline");
  wire();
  v.cfg = await loadConfig();
  if (!v.cfg.langs.includes(v.lang)) v.lang = await loadLang(v.cfg.default_lang, "operator");
  renderLangs();
  v.counter = v.cfg.counters.find((c) => c.id === v.counterId) || null;
  if (!v.counter) {
    if (v.counterId !== null) say("error", t("op.unknownCounter", { id: v.counterId }));
    showView("chooser");
    return;
  }
  session = new Session(v.cfg.site, v.counterId);
  showView(needsLogin() && !session.token ? "login" : "panel");
  live(onState, (online) => { $("offline").hidden = online; });
}

boot();

// Kiosk page (Q2–Q5): service buttons of the active menu with waiting counts and estimates,
// ja/en/zh/ko (back to Japanese when idle), ticket issue with the print outcome, check-in of
// web tickets by a keyboard-wedge QR scanner, and this kiosk's printer state.
// URL: /ui/kiosk.html?kiosk=k1 (the kiosk id binds the page to its printer; ?lang=en optional).
import { live, api, param } from "./lib/live.js";
import { loadLang, t, lang, translatePage } from "./lib/i18n.js";
import {
  activeServices, printerIssue, renderHeader, renderGuidance, renderBanner, renderServices,
  renderClock, closedByCalendar,
} from "./kiosk/view.js";
import { openDialog, closeDialog, isOpen } from "./kiosk/dialog.js";
import { listenForScans, extractToken } from "./kiosk/scanner.js";
import {
  estimateText, printFailKey, refusalText, icon, esc, siteText,
} from "./kiosk/texts.js";

const RESULT_MS = 10000;        // a printed ticket's panel closes after this
const RESULT_UNPRINTED_MS = 20000;  // longer when the number must be noted from the screen
// Re-read the state now and then: a schedule changes the menu without any commit, and a
// websocket to a vanished edge (cable pulled, edge stopping) can stay "open" for minutes.
const POLL_MS = 10000;
const $ = (id) => document.getElementById(id);

const kiosk = param("kiosk");
const K = {
  config: null, state: null, online: false, reachable: true, busy: false, configVersion: null,
  skewMs: 0, offsetMin: 540, lastTouch: Date.now(),
};

function defaultLang() { return (K.config && K.config.default_lang) || "ja"; }

async function setLang(code) {
  await loadLang(code, "kiosk");
  document.title = `${t("kiosk.title")} — ${K.config ? siteText(K.config.name).text : ""}`;
  translatePage();
  render();
}

function render() {
  if (!K.config) return;
  $("offline").textContent = t("common.offline");
  renderHeader(K.config, lang(), (code) => { touch(); setLang(code); });
  renderClock(K.skewMs, K.offsetMin);
  if (!K.state) return;
  renderGuidance(K.config, K.state, kiosk);
  renderBanner(printerIssue(K.config, K.state, kiosk));
  renderServices(activeServices(K.config, K.state, kiosk), tap);
}

// Before the edge has opened today's business day (a fresh database, or just after midnight)
// its state says "closed", but the next ticket opens the day first: show the services open.
// Only a day that staff closed today is closed for visitors.
function forToday(state) {
  const today = String(state.at || "").slice(0, 10);
  if (closedByCalendar(state)) {  // a holiday or the year-end closure: every service closed
    return { ...state, services: state.services.map((s) => ({ ...s, status: "closed" })) };
  }
  if (!today || state.day === today) return state;
  return {
    ...state, day_open: true,
    services: state.services.map((s) => ({ ...s, status: "open" })),
  };
}

function applyState(raw, fromPoll = false) {
  if (fromPoll && K.state && raw.seq < K.state.seq) return;  // the websocket was newer
  const state = forToday(raw);
  K.state = state;
  const at = Date.parse(state.at);
  if (!Number.isNaN(at)) K.skewMs = at - Date.now();
  const m = /([+-])(\d\d):(\d\d)$/.exec(state.at || "");
  if (m) K.offsetMin = (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
  if (K.configVersion !== null && state.config_version !== K.configVersion) loadConfig();
  K.configVersion = state.config_version;
  render();
}

function showOffline() { $("offline").hidden = K.online && K.reachable; }

function touch() { K.lastTouch = Date.now(); }

function announce(text) { $("announce").textContent = text; }

// {text, lang} of a service's name in the visitor's language (English for a missing zh/ko).
function serviceName(code) {
  const row = K.state && K.state.services.find((s) => s.code === code);
  const cfg = K.config.services.find((s) => s.code === code);
  const name = siteText((row || cfg || {}).name);
  return name.text ? name : { text: code, lang: lang() };
}

// --- issuing a ticket -----------------------------------------------------------------------

async function tap(code, btn) {
  touch();
  if (K.busy || !K.state) return;
  const row = K.state.services.find((s) => s.code === code);
  if (row && (row.status === "closed" || row.status === "full")) {
    const name = serviceName(code).text;
    openDialog({
      testid: "service-unavailable", tone: "warn", title: t("kiosk.why.title"), returnTo: btn,
      html: `<p class="why">${icon(row.status)}<span>${esc(t(`kiosk.why.${row.status}`, { name }))
      }</span></p><p>${esc(t("kiosk.why.hint"))}</p>`,
    });
    announce(t(`kiosk.why.${row.status}`, { name }));
    return;
  }
  K.busy = true;
  btn.classList.add("busy");
  btn.setAttribute("aria-busy", "true");
  render();
  const body = { service: code, lang: lang() };
  if (kiosk) body.kiosk = kiosk;
  const r = await api("POST", "/api/tickets", body);
  K.busy = false;
  btn.classList.remove("busy");
  btn.removeAttribute("aria-busy");
  render();
  if (r.status === 0) {
    K.reachable = false;
    showOffline();
  }
  if (r.ok) showTicket(r.data, btn);
  else showRefusal(r.error, btn, "issue");
}

function ticketFacts(tk) {
  const svc = serviceName(tk.service);
  const ahead = tk.ahead > 0 ? t("kiosk.result.ahead", { n: tk.ahead }) : t("kiosk.result.next");
  return `<div class="ticket-facts">
    <p class="ticket-number" data-testid="ticket-number">${esc(tk.number)}</p>
    <p class="ticket-service"><span class="svc-code" aria-hidden="true">${esc(tk.service)}</span>
      <span lang="${esc(svc.lang)}">${esc(svc.text)}</span></p>
    <p class="ticket-ahead" data-testid="ticket-ahead">${esc(ahead)}</p>
    <p class="ticket-estimate" data-testid="ticket-estimate">${
      esc(t("kiosk.result.estimate", { estimate: estimateText(tk.estimate) }))}</p></div>`;
}

// The edge's own words for the printer problem ("用紙切れです" / "Out of paper"), for staff:
// in the visitor's language where the edge has it, else in Japanese.
function reasonLine(pr) {
  const msg = pr.message || {};
  const l = msg[lang()] ? lang() : "ja";
  if (!msg[l]) return "";
  return `<p class="print-reason">${esc(t("kiosk.print.reason"))} <span lang="${l}">${
    esc(msg[l])}</span></p>`;
}

function nearEnd(pr) {
  const issue = K.state && printerIssue(K.config, K.state, kiosk);
  return pr.reason === "paper_near_end" || (issue && issue.reason === "paper_near_end");
}

function showTicket(data, btn) {
  const tk = data.ticket;
  // no "print" at all: the page has no kiosk id, so nothing can print
  const pr = data.print || { printed: false, reason: "no_printer" };
  let status;
  if (pr.printed) {
    status = `<div class="print-status ok" data-testid="print-status" data-printed="true"
        data-reason="${esc(pr.reason || "")}">${icon("ok")}<div><p class="print-main">${
        esc(t("kiosk.print.ok"))}</p>${nearEnd(pr)
        ? `<p class="print-note">${esc(t("kiosk.print.near_end"))}</p>` : ""}</div></div>`;
  } else {
    status = `<div class="print-status stop" data-testid="print-status" data-printed="false"
        data-reason="${esc(pr.reason || "")}">${icon("warn")}<div><p class="print-main">${
        esc(t(printFailKey(pr.reason)))}</p><p class="print-note">${
        esc(t("kiosk.print.note"))}</p>${reasonLine(pr)}</div></div>`;
  }
  const el = openDialog({
    testid: "ticket-result", tone: pr.printed ? "ok" : "stop", title: t("kiosk.result.title"),
    html: ticketFacts(tk) + status, returnTo: btn, tapAnywhere: pr.printed,
    closeAfterMs: pr.printed ? RESULT_MS : RESULT_UNPRINTED_MS,
  });
  el.dataset.outcome = pr.printed ? "printed" : "not_printed";
  announce(`${t("kiosk.result.title")} ${tk.number}. ${
    pr.printed ? t("kiosk.print.ok") : `${t(printFailKey(pr.reason))} ${t("kiosk.print.note")}`}`);
}

function showRefusal(error, btn, kind) {
  const { text, detail } = refusalText(error, kind);
  const checkin = kind === "checkin";
  const title = checkin ? t("kiosk.checkin.refused.title") : t("kiosk.refused.title");
  const el = openDialog({
    testid: checkin ? "checkin-result" : "ticket-result", tone: "stop", title, returnTo: btn,
    html: `<p class="refusal" data-testid="${checkin ? "checkin-error" : "ticket-error"}"
      data-code="${esc(error && error.code)}">${icon("warn")}<span>${esc(text)}</span></p>${
      detail ? `<p class="refusal-detail">${esc(detail)}</p>` : ""}`,
  });
  el.dataset.outcome = error && error.code === "offline" ? "offline" : "refused";
  announce(`${title}. ${text}`);
}

// --- check-in of web tickets and reservations -------------------------------------------------

async function scanned(text) {
  touch();
  const token = extractToken(text);
  const returnTo = isOpen() ? null : document.activeElement;
  if (!token) {
    showRefusal({ code: "bad_code" }, returnTo, "checkin");
    return;
  }
  openDialog({ testid: "checkin-result", tone: "info", title: t("kiosk.checkin.working"),
               html: "", closeAfterMs: 0, returnTo });
  const body = { token };
  if (kiosk) body.kiosk = kiosk;
  const r = await api("POST", "/api/tickets/check-in", body);
  if (!r.ok) {
    showRefusal(r.error, returnTo, "checkin");
    return;
  }
  const tk = r.data.ticket;
  const el = openDialog({
    testid: "checkin-result", tone: "ok", title: t("kiosk.checkin.title"), returnTo,
    html: ticketFacts(tk).replace('data-testid="ticket-number"', 'data-testid="checkin-number"')
      + `<p class="checkin-text">${icon("ok")}<span>${esc(t("kiosk.checkin.text"))}</span></p>`,
  });
  el.dataset.outcome = "checked_in";
  announce(`${t("kiosk.checkin.title")} ${tk.number}. ${t("kiosk.checkin.text")}`);
}

function showWebTicketHelp() {
  touch();
  openDialog({
    testid: "checkin-help", tone: "info", title: t("kiosk.webticket.title"),
    returnTo: $("webticket"), closeAfterMs: 30000,
    html: `<p class="help-text">${icon("info")}<span>${esc(t("kiosk.webticket.text"))}</span></p>
      <p>${esc(t("kiosk.webticket.text2"))}</p>`,
  });
}

// --- start-up, idle reset, live state ---------------------------------------------------------

async function loadConfig() {
  for (let delay = 500; ; delay = Math.min(delay * 2, 5000)) {
    const r = await api("GET", "/api/ui/config");
    if (r.ok) {
      K.config = r.data;
      render();
      return;
    }
    $("offline").hidden = false;
    await new Promise((res) => setTimeout(res, delay));
  }
}

function idleCheck() {
  const resetMs = ((K.config && K.config.lang_reset_s) || 60) * 1000;
  if (Date.now() - K.lastTouch < resetMs) return;
  if (isOpen()) closeDialog();
  if (lang() !== defaultLang()) setLang(defaultLang());
}

async function main() {
  await loadConfig();
  const first = param("lang");
  const start = first && K.config.langs.includes(first) ? first : defaultLang();
  await setLang(start);
  for (const type of ["pointerdown", "keydown", "touchstart"]) {
    document.addEventListener(type, touch, { capture: true, passive: true });
  }
  $("webticket").addEventListener("click", showWebTicketHelp);
  listenForScans(scanned);
  live(
    (state) => applyState(state),
    (online) => {
      K.online = online;
      if (online) K.reachable = true;
      showOffline();
    },
  );
  setInterval(idleCheck, 1000);
  setInterval(() => renderClock(K.skewMs, K.offsetMin), 1000);
  setInterval(async () => {
    const r = await api("GET", "/api/state");
    K.reachable = r.status !== 0;
    if (r.ok) applyState(r.data, true);
    showOffline();
  }, POLL_MS);
  document.body.dataset.ready = "true";
}

main();

// Rendering of the kiosk menu screen: header, guidance, printer banner, service buttons.
import { t, lang } from "../lib/i18n.js";
import { estimateText, bannerKey, icon, esc, siteText } from "./texts.js";

const $ = (id) => document.getElementById(id);

// The services shown now: the active menu's (state.menu), else every kiosk service.
export function activeServices(config, state, kiosk) {
  const rows = new Map(state.services.map((s) => [s.code, s]));
  const menu = activeMenu(config, state, kiosk);
  const codes = menu ? menu.services : state.services.filter((s) => s.kiosk).map((s) => s.code);
  return codes.map((c) => rows.get(c)).filter((r) => r && r.kiosk);
}

// This kiosk's menu where menus are bound to kiosks (state.menus_by_kiosk), else the site's.
export function activeMenu(config, state, kiosk) {
  const byKiosk = state.menus_by_kiosk || {};
  const id = kiosk && Object.hasOwn(byKiosk, kiosk) ? byKiosk[kiosk] : state.menu;
  return (config.menus || []).find((m) => m.id === id) || null;
}

// What is wrong with this kiosk's printer, if anything: {reason, level: "stop"|"warn"|"note"}.
export function printerIssue(config, state, kiosk) {
  if (!kiosk) return { reason: "no_printer", level: "stop" };
  const printerId = config.kiosks && config.kiosks[kiosk] && config.kiosks[kiosk].printer;
  const dev = (state.devices || []).find(
    (d) => d.kind === "printer" && (d.id === printerId || d.bound_to === kiosk));
  if (!dev) return { reason: "no_printer", level: "stop" };
  if (dev.state === "ok") return null;
  if (dev.reason === "paper_near_end") return { reason: dev.reason, level: "note" };
  if (dev.reason === "starting") return { reason: dev.reason, level: "warn" };
  return { reason: dev.reason || "generic", level: dev.state === "degraded" ? "warn" : "stop" };
}

// A site text into an element, with the lang of the text shown (English standing in for a
// missing zh/ko text is marked lang="en", so screen readers and line breaking treat it so).
function putText(el, texts) {
  const { text, lang: l } = siteText(texts);
  el.textContent = text;
  el.lang = l;
}

export function renderHeader(config, current, onLang) {
  putText($("site-name"), config.name);
  const nav = $("langs");
  if (!nav.childElementCount) {
    for (const code of config.langs) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "lang";
      b.lang = code;
      b.dataset.testid = `lang-${code}`;
      b.dataset.lang = code;
      b.addEventListener("click", () => onLang(code));
      nav.appendChild(b);
    }
  }
  for (const b of nav.querySelectorAll("button")) {
    // each language names itself in its own language (common.lang.*: "English" in every file)
    b.textContent = t(`common.lang.${b.dataset.lang}`);
    b.setAttribute("aria-pressed", String(b.dataset.lang === current));
  }
}

// The menu's guidance (else the site's). The menu's name is for staff and never shown here.
export function renderGuidance(config, state, kiosk) {
  const menu = activeMenu(config, state, kiosk);
  const text = (menu && menu.guidance) || config.guidance;
  // the ward's calendar (a holiday, the year-end closure, …) first, then a day staff closed
  const cal = closedByCalendar(state);
  putText($("guidance"), text);
  $("guidance").hidden = !text || cal;  // "press a button" would contradict "closed today"
  const closed = cal || !state.day_open;
  const why = cal ? t(`kiosk.closed.${state.today.reason}`, { name: state.today.holiday || "" })
    : t("kiosk.day_closed");
  $("day-banner").hidden = !closed;
  $("day-banner").dataset.reason = cal ? state.today.reason : "";
  $("day-banner").innerHTML = closed ? `${icon("closed")}<span>${esc(why)}</span>` : "";
}

// Closed today by the ward's calendar (edge/domain/calendar.py; "weekly" closes web tickets
// only, staff at the office may still hand out numbers).
export function closedByCalendar(state) {
  return !!(state.today && !state.today.open && state.today.reason !== "weekly");
}

export function renderBanner(issue) {
  const el = $("printer-banner");
  if (!issue) {
    el.hidden = true;
    el.removeAttribute("data-reason");
    el.textContent = "";
    return;
  }
  el.hidden = false;
  el.dataset.reason = issue.reason;
  el.dataset.level = issue.level;
  el.innerHTML = `${icon(issue.level === "note" ? "info" : "printer")}`
    + `<span>${esc(t(bannerKey(issue.reason)))}</span>`;
}

let builtKey = "";

// Buttons are rebuilt only when the list or language changes, else updated in place (focus
// and screen-reader position stay put while counts tick).
export function renderServices(rows, onTap) {
  const box = $("services");
  const key = `${lang()}|${rows.map((r) => r.code).join(",")}`;
  if (key !== builtKey) {
    const focused = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.code : null;
    box.textContent = "";
    for (const r of rows) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "svc";
      b.dataset.code = r.code;
      b.dataset.testid = `service-${r.code}`;
      b.addEventListener("click", () => onTap(b.dataset.code, b));
      box.appendChild(b);
    }
    const n = rows.length;
    box.dataset.size = n <= 1 ? "one" : n <= 4 ? "few" : n <= 6 ? "some" : "many";
    builtKey = key;
    if (focused) {
      const again = box.querySelector(`[data-code="${CSS.escape(focused)}"]`);
      if (again) again.focus();
    }
  }
  $("no-services").hidden = rows.length > 0;
  rows.forEach((r, i) => fillButton(box.children[i], r));
}

function fillButton(b, r) {
  const { text: name, lang: nameLang } = siteText(r.name);
  const off = r.status === "closed" || r.status === "full";
  // "目安 約5〜12分", or just "目安なし" when no counter serves it yet
  const range = r.estimate ? estimateText(r.estimate) : "";
  const est = r.estimate ? t("kiosk.estimate_line", { estimate: range })
    : t("kiosk.estimate_none");
  // the range stays on one line ("about 4–11 min"), the label before it may wrap
  const estHtml = r.estimate
    ? esc(t("kiosk.estimate_line", { estimate: "\u0000" }))
      .replace("\u0000", `<span class="est-range">${esc(range)}</span>`)
    : esc(est);
  const status = off ? t(`kiosk.status.${r.status}`) : "";
  b.dataset.status = r.status;
  b.setAttribute("aria-disabled", String(off));
  // the label repeats the visible words in their order (WCAG 2.5.3 "label in name"), with
  // pauses: "A 住民異動届, 3 人待ち, 目安 約5〜12分"
  const wait = `${r.waiting} ${t("kiosk.waiting_unit")}`;
  b.setAttribute("aria-label", (off
    ? [`${r.code} ${name}`, status, wait]
    : [`${r.code} ${name}`, wait, est]).join(", "));
  const busy = b.classList.contains("busy");
  b.innerHTML = `
    <span class="svc-code" aria-hidden="true">${esc(r.code)}</span>
    <span class="svc-main">
      <span class="svc-name" lang="${esc(nameLang)}">${esc(name)}</span>
      <span class="svc-meta">${off ? `
        <span class="svc-state" data-testid="status-${esc(r.code)}">${icon(r.status)}<span>${
          esc(status)}</span></span>` : ""}
        <span class="svc-wait"><b class="svc-count" data-testid="waiting-${esc(r.code)}">${
          r.waiting}</b> <span class="svc-unit">${esc(t("kiosk.waiting_unit"))}</span></span>
        ${off ? "" : `<span class="svc-est" data-testid="estimate-${esc(r.code)}">${
          estHtml}</span>`}
      </span>
    </span>
    ${busy ? `<span class="svc-busy">${esc(t("kiosk.issuing"))}</span>` : ""}`;
}


// "11月21日(土) 10:32" in the edge's time (its offset and clock, corrected for skew).
export function renderClock(skewMs, offsetMin) {
  const shifted = new Date(Date.now() + skewMs + offsetMin * 60000);
  const fmt = new Intl.DateTimeFormat(lang() === "zh" ? "zh-CN" : lang(), {
    timeZone: "UTC", month: "short", day: "numeric", weekday: "short",
    hour: "2-digit", minute: "2-digit", hour12: false,
  });
  $("clock-time").textContent = fmt.format(shifted);
}

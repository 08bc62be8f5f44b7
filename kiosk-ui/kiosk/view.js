// Rendering of the kiosk menu screen: header, guidance, printer banner, service buttons.
import { t, pick, lang } from "../lib/i18n.js";
import { estimateText, bannerKey, icon, esc } from "./texts.js";

const $ = (id) => document.getElementById(id);

// The services shown now: the active menu's (state.menu), else every kiosk service.
export function activeServices(config, state) {
  const rows = new Map(state.services.map((s) => [s.code, s]));
  const menu = activeMenu(config, state);
  const codes = menu ? menu.services : state.services.filter((s) => s.kiosk).map((s) => s.code);
  return codes.map((c) => rows.get(c)).filter((r) => r && r.kiosk);
}

export function activeMenu(config, state) {
  return (config.menus || []).find((m) => m.id === state.menu) || null;
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

export function renderHeader(config, current, onLang) {
  $("site-name").textContent = pick(config.name);
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

export function renderGuidance(config, state) {
  const menu = activeMenu(config, state);
  const text = (menu && menu.guidance) || config.guidance;
  $("guidance").textContent = pick(text);
  $("guidance").hidden = !text;
  $("menu-name").textContent = menu ? t("kiosk.menu", { name: pick(menu.name) }) : "";
  const closed = !state.day_open;
  $("day-banner").hidden = !closed;
  $("day-banner").innerHTML = closed ? `${icon("closed")}<span>${esc(t("kiosk.day_closed"))}</span>`
    : "";
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
  const name = pick(r.name);
  const off = r.status === "closed" || r.status === "full";
  // "目安 約5〜12分", or just "目安なし" when no counter serves it yet
  const est = r.estimate ? `${t("kiosk.estimate_short")} ${estimateText(r.estimate)}`
    : t("kiosk.estimate_none");
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
      <span class="svc-name">${esc(name)}</span>
      <span class="svc-meta">${off ? `
        <span class="svc-state" data-testid="status-${esc(r.code)}">${icon(r.status)}<span>${
          esc(status)}</span></span>` : ""}
        <span class="svc-wait"><b class="svc-count" data-testid="waiting-${esc(r.code)}">${
          r.waiting}</b> <span class="svc-unit">${esc(t("kiosk.waiting_unit"))}</span></span>
        ${off ? "" : `<span class="svc-est" data-testid="estimate-${esc(r.code)}">${
          esc(est)}</span>`}
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

// Kiosk wording helpers: estimates, print/printer reasons and refusals -> i18n keys; icons.
import { t, lang, fallbacks } from "../lib/i18n.js";

// {low_s, high_s} -> "約5〜12分" / "about 5–12 min"; a range starting under a minute (nobody
// waiting, a visitor still at the counter) -> "約12分以内" rather than "約0〜12分";
// null -> "目安なし".
export function estimateText(est) {
  if (!est) return t("kiosk.estimate_none");
  if (est.high_s < 60) return t("kiosk.estimate_soon");
  const low = Math.floor(est.low_s / 60);
  const high = Math.max(low + 1, Math.ceil(est.high_s / 60));
  if (low === 0) return t("kiosk.estimate_upto", { high });
  return t("kiosk.estimate", { low, high });
}

// A site text from the config ({ja, en, zh?, ko?}) for the visitor's language, with the
// language it is actually in (for the element's lang attribute): a zh/ko visitor reads the
// English text where the site has none in their language, never the Japanese one (the same
// order as pick() in lib/i18n.js; the config check insists on ja and en).
export function siteText(texts, l = lang()) {
  if (!texts) return { text: "", lang: l };
  for (const code of fallbacks(l)) {
    if (texts[code]) return { text: texts[code], lang: code };
  }
  const [code, text] = Object.entries(texts)[0] || [l, ""];
  return { text, lang: code };
}

const PRINT_REASONS = new Set(["paper_out", "cover_open", "unplugged", "timeout", "no_printer"]);

// The print outcome's sentence key when the ticket did not print.
export function printFailKey(reason) {
  return `kiosk.print.failed.${PRINT_REASONS.has(reason) ? reason : "generic"}`;
}

const BANNER_REASONS = new Set(["paper_out", "cover_open", "unplugged", "timeout", "no_printer",
                                "starting", "paper_near_end"]);

export function bannerKey(reason) {
  return `kiosk.banner.${BANNER_REASONS.has(reason) ? reason : "generic"}`;
}

const ISSUE_REFUSALS = new Set(["service_full", "day_closed", "not_issuable", "unknown_service",
                                "offline", "office_closed"]);
const CHECKIN_REFUSALS = new Set(["unknown_ticket", "not_remote", "already_checked_in",
                                  "bad_code", "offline"]);

// A refusal as {text, detail}: our own sentence by code in the visitor's language, and the
// edge's own message (ja: message_ja, else message) as a detail where it says more.
export function refusalText(error, kind) {
  const known = kind === "checkin" ? CHECKIN_REFUSALS : ISSUE_REFUSALS;
  const prefix = kind === "checkin" ? "kiosk.checkin." : "kiosk.refused.";
  const code = error && error.code;
  const text = t(prefix + (known.has(code) ? code : "generic"));
  let detail = "";
  if (error && code !== "offline" && code !== "bad_code") {
    if (lang() === "ja") detail = error.message_ja || "";
    else if (lang() === "en" || !known.has(code)) detail = error.message || "";
  }
  return { text, detail: detail && detail !== text ? detail : "" };
}

// Small inline SVG icons (no icon fonts, no emoji font needed); aria-hidden, the words carry
// the meaning and the icon adds a shape so nothing relies on colour alone.
const PATHS = {
  closed: '<circle cx="12" cy="12" r="9" fill="none" stroke="currentColor" stroke-width="2.6"/>'
    + '<path d="M5.6 5.6l12.8 12.8" stroke="currentColor" stroke-width="2.6"/>',
  full: '<circle cx="12" cy="12" r="9" fill="none" stroke="currentColor" stroke-width="2.6"/>'
    + '<path d="M6.5 12h11" stroke="currentColor" stroke-width="3"/>',
  ok: '<circle cx="12" cy="12" r="10" fill="currentColor"/>'
    + '<path d="M6.5 12.5l3.5 3.5 7.5-8" fill="none" stroke="#fff" stroke-width="2.6"/>',
  warn: '<path d="M12 2L1 21h22z" fill="currentColor"/>'
    + '<path d="M12 9v6M12 17.2v1.8" stroke="#fff" stroke-width="2.4"/>',
  info: '<circle cx="12" cy="12" r="10" fill="currentColor"/>'
    + '<path d="M12 10.5v7M12 6.5v2" stroke="#fff" stroke-width="2.4"/>',
  printer: '<path d="M6 3h12v5H6zM3 9h18v8h-3v4H6v-4H3zm5 6v4h8v-4z" fill="currentColor"/>',
};

export function icon(name, cls = "icon") {
  return `<svg class="${cls}" viewBox="0 0 24 24" aria-hidden="true" focusable="false">`
    + `${PATHS[name] || ""}</svg>`;
}

// Text for HTML templates.
export function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (ch) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[ch]);
}

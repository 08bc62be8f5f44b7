// Texts per language: /ui/i18n/<lang>.json (shared) merged with /ui/i18n/<page>/<lang>.json.
// Adding a language = adding those files; GET /api/ui/config lists the languages present.
// Site texts (service names, guidance) come from the edge as {ja, en, ...} objects: pick().

let current = "ja";
let pageName = "";
const tables = {};

async function fetchTable(path) {
  try {
    const resp = await fetch(path);
    return resp.ok ? await resp.json() : {};
  } catch (e) {
    return {};
  }
}

// loadLang("en", "kiosk"): the page name is remembered for later switches.
export async function loadLang(lang, page = pageName) {
  pageName = page;
  const key = `${page}/${lang}`;
  if (!tables[key]) {
    const [shared, own] = await Promise.all([
      fetchTable(`/ui/i18n/${lang}.json`),
      page ? fetchTable(`/ui/i18n/${page}/${lang}.json`) : Promise.resolve({}),
    ]);
    tables[key] = { ...shared, ...own };
  }
  if (!tables[`${page}/ja`] && lang !== "ja") await loadLang("ja", page);
  tables[lang] = tables[key];
  tables.ja = tables[`${page}/ja`] || tables.ja;
  current = lang;
  document.documentElement.lang = lang;
  return lang;
}

export function lang() { return current; }

// t("kiosk.waiting", {n: 3}) -> "3人待ち"; falls back to Japanese, then to the key.
export function t(key, vars = {}) {
  const text = (tables[current] && tables[current][key]) ?? (tables.ja && tables.ja[key]) ?? key;
  return text.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : `{${k}}`));
}

// A site text {ja: "...", en: "..."} in the current language (Japanese as fallback).
export function pick(texts, l = current) {
  if (!texts) return "";
  return texts[l] || texts.ja || Object.values(texts)[0] || "";
}

// Fill every element with data-i18n="key" (text) and data-i18n-label="key" (aria-label).
export function translatePage(root = document) {
  root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  root.querySelectorAll("[data-i18n-label]").forEach((el) => {
    el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  });
}

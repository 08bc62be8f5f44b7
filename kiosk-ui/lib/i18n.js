// Texts per language: /ui/i18n/<lang>.json (shared) merged with /ui/i18n/<page>/<lang>.json.
// Adding a language = adding those files; GET /api/ui/config lists the languages present.
// Site texts (service names, guidance) come from the edge as {ja, en, ...} objects: pick().

let current = "ja";
let pageName = "";
const tables = {};
let active = [];  // the current language's table, then its fallbacks (fallbacks())

async function fetchTable(path) {
  try {
    const resp = await fetch(path);
    return resp.ok ? await resp.json() : {};
  } catch (e) {
    return {};
  }
}

// The table of one page and language, fetched once.
async function table(page, lang) {
  const key = `${page}/${lang}`;
  if (!tables[key]) {
    const [shared, own] = await Promise.all([
      fetchTable(`/ui/i18n/${lang}.json`),
      page ? fetchTable(`/ui/i18n/${page}/${lang}.json`) : Promise.resolve({}),
    ]);
    tables[key] = { ...shared, ...own };
  }
  return tables[key];
}

// Where a text missing in `lang` is looked up next: a zh/ko (or any non-Japanese) reader gets
// English before Japanese; Japanese readers get Japanese, then English.
export function fallbacks(lang) {
  return [...new Set(lang === "ja" ? ["ja", "en"] : [lang, "en", "ja"])];
}

// loadLang("en", "kiosk"): the page name is remembered for later switches. Sets <html lang>
// so the browser breaks lines by the language's rules (word-break: auto-phrase needs "ja").
export async function loadLang(lang, page = pageName) {
  pageName = page;
  const chain = fallbacks(lang);
  const loaded = await Promise.all(chain.map((l) => table(page, l)));
  active = loaded;
  current = lang;
  document.documentElement.lang = lang;
  return lang;
}

export function lang() { return current; }

// t("kiosk.waiting", {n: 3}) -> "3人待ち"; falls back along fallbacks(), then to the key.
export function t(key, vars = {}) {
  let text = key;
  for (const tab of active) {
    if (tab[key] != null) { text = tab[key]; break; }
  }
  return text.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : `{${k}}`));
}

// A site text {ja: "...", en: "..."} in the current language, else along fallbacks().
export function pick(texts, l = current) {
  if (!texts) return "";
  for (const code of fallbacks(l)) {
    if (texts[code]) return texts[code];
  }
  return Object.values(texts)[0] || "";
}

// Fill every element with data-i18n="key" (text) and data-i18n-label="key" (aria-label).
export function translatePage(root = document) {
  root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  root.querySelectorAll("[data-i18n-label]").forEach((el) => {
    el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  });
}

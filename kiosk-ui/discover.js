// Discovery page: the edges found on the LAN (GET /api/discovery, zeroconf _madoguchi._tcp),
// each with links to its screens, re-read every few seconds. URL: ?lang=ja|en|zh|ko
import { api, param } from "/ui/lib/live.js";
import { loadLang, t, pick, translatePage } from "/ui/lib/i18n.js";

const REFRESH_MS = 5000;
const LANGS = ["ja", "en", "zh", "ko"];
const $ = (id) => document.getElementById(id);
let lang = "ja";

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

// The screens worth opening on another edge; the landing page there lists every parameter.
function screenLinks(base) {
  const q = `lang=${lang}`;
  const links = [
    ["discover.link.index", `/?${q}`],
    ["discover.link.monitor", `/ui/monitor.html?layout=landscape&${q}`],
    ["discover.link.monitor_portrait", `/ui/monitor.html?layout=portrait&${q}`],
    ["discover.link.backyard", `/ui/backyard.html?${q}`],
    ["discover.link.counter", `/ui/counter.html?${q}`],
  ];
  return el("ul", { class: "links" }, ...links.map(([key, path]) =>
    el("li", {}, el("a", { href: new URL(path, base).href, text: t(key) }))));
}

function edgeCard(e, testid) {
  const title = el("h3", {}, el("span", { text: e.name ? pick(e.name, lang) : e.site || "?" }));
  if (e.self) title.append(el("span", { class: "badge ok" }, "✓ ", t("discover.self")));
  const where = e.url ? e.url : t("discover.no_address");
  const meta = el("p", { class: "meta" },
    t("discover.meta", { site: e.site || "?", url: where,
                         addresses: (e.addresses || []).join(", ") || "—", port: e.port ?? "—" }));
  return el(testid === "edge" ? "li" : "div", { class: "edge", "data-testid": testid },
            title, meta, e.url ? screenLinks(e.url) : null);
}

function renderThis(config) {
  const box = $("this-edge");
  box.replaceChildren(...edgeCard({ site: config ? config.site : location.host,
                                    name: config ? config.name : null, url: `${location.origin}/`,
                                    addresses: [location.hostname], port: location.port || 80 },
                                  "this-edge-card").childNodes);
}

async function refresh() {
  const r = await api("GET", "/api/discovery");
  const list = $("edges");
  const now = new Date().toLocaleTimeString(lang, { hour12: false });
  if (!r.ok) {
    $("checked").textContent = t("discover.error", { time: now });
    return;
  }
  const edges = r.data.edges || [];
  $("checked").textContent = t("discover.checked", { time: now, n: edges.length,
                                                     service: r.data.service });
  if (!edges.length) {
    list.replaceChildren(el("li", { class: "empty", "data-testid": "no-edges" },
      el("p", { text: t("discover.none") }), el("p", { text: t("discover.none_hint") })));
    return;
  }
  list.replaceChildren(...edges.map((e) => edgeCard(e, "edge")));
}

async function main() {
  const wanted = param("lang", "ja");
  lang = await loadLang(LANGS.includes(wanted) ? wanted : "ja", "discover");
  translatePage();
  document.title = t("discover.title");
  $("langs").replaceChildren(...LANGS.map((l) => el("li", {},
    el("a", { href: `?lang=${l}`, lang: l, "aria-current": l === lang ? "page" : null,
              text: t(`common.lang.${l}`) }))));
  const cfg = await api("GET", "/api/ui/config");
  renderThis(cfg.ok ? cfg.data : null);
  $("refresh").addEventListener("click", refresh);
  await refresh();
  setInterval(refresh, REFRESH_MS);
}

main();

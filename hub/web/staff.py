"""The staff overview page: every site, online or not, lag, device health, config version.

Plain server-rendered HTML (Jinja2) that refreshes itself: it works without JavaScript on any
office PC. Japanese by default, English with ``?lang=en`` or an English browser.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from edge.devices.health import REASONS
from hub.store.store import now_utc
from hub.web.api import CONFIGS, STORE, Route, lang_param
from hub.web.views import all_sites

TEMPLATES = Path(__file__).resolve().parent / "templates"
REFRESH_S = 15
LANGS = (("ja", "日本語"), ("en", "English"))

TEXTS: dict[str, dict[str, Any]] = {
    "ja": {
        "title": "拠点一覧", "as_of": "時点:", "refresh": f"{REFRESH_S}秒ごとに更新",
        "none": "まだ拠点がありません。拠点がハブに接続すると表示されます。",
        "site": "拠点", "state": "状態", "last_seq": "受信済み番号", "lag": "最終イベントから",
        "outbox": "未送信", "devices": "機器", "config": "設定版",
        "online": "オンライン", "offline": "オフライン", "gap": "欠番あり、受信最大",
        "ok": "正常", "desired": "配信", "applied": "適用", "pending": "拠点へ未適用",
        "states": {"ok": "正常", "degraded": "注意", "offline": "未接続", "error": "異常"},
        "projection": {"no_config": "設定未配信のため待ち状況なし",
                       "error": "待ち状況の集計を一時停止中"},
        "units": ("秒", "分", "時間", "日"),
    },
    "en": {
        "title": "Sites", "as_of": "As of", "refresh": f"refreshes every {REFRESH_S} s",
        "none": "No sites yet. Sites appear here once they connect to the hub.",
        "site": "Site", "state": "State", "last_seq": "Last seq stored",
        "lag": "Since last event", "outbox": "Outbox", "devices": "Devices", "config": "Config",
        "online": "online", "offline": "offline", "gap": "gap, highest received",
        "ok": "ok", "desired": "desired", "applied": "applied", "pending": "not yet applied",
        "states": {"ok": "ok", "degraded": "degraded", "offline": "offline", "error": "error"},
        "projection": {"no_config": "no config pushed: no queue figures",
                       "error": "queue figures paused"},
        "units": (" s", " min", " h", " d"),
    },
}


def duration(seconds: int | None, lang: str) -> str:
    """12 s, 3 min, 2 h, 4 d: a lag at a glance."""
    if seconds is None:
        return "—"
    s, m, h, d = TEXTS[lang]["units"]
    if seconds < 120:
        return f"{seconds}{s}"
    if seconds < 7200:
        return f"{seconds // 60}{m}"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}{h}"
    return f"{seconds // 86400}{d}"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             autoescape=jinja2.select_autoescape(["html"]),
                             undefined=jinja2.StrictUndefined)
    env.filters["duration"] = duration
    return env


def pick_lang(request: web.Request) -> str:
    asked = request.query.get("lang")
    if asked in TEXTS:
        return asked
    accept = request.headers.get("Accept-Language", "").lower()
    first = accept.split(",")[0].strip()
    return "en" if first.startswith("en") else "ja"


_ENV = environment()


async def staff_sites(request: web.Request) -> web.Response:
    lang = pick_lang(request)
    sites = await all_sites(request.app[STORE], request.app[CONFIGS])
    html = _ENV.get_template("staff_sites.html").render(
        lang=lang, t=TEXTS[lang], sites=sites, langs=LANGS, refresh_s=REFRESH_S,
        now=now_utc().astimezone().isoformat(timespec="seconds"),
        reasons={code: getattr(r, lang) for code, r in REASONS.items()},
    )
    return web.Response(text=html, content_type="text/html", charset="utf-8",
                        headers={"Content-Language": lang})


PAGES: tuple[Route, ...] = (
    Route("GET", "/staff/sites", "Staff overview of all sites (HTML, ?lang=ja|en)", staff_sites,
          access="staff", content_type="text/html", query=(lang_param(("ja", "en")),)),
)

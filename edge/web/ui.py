"""What the screens need besides the live state: menus, texts, languages, kiosks, counters.

Served once per page load (``GET /api/ui/config``); the state itself comes over the websocket.
Languages are the files present in ``kiosk-ui/i18n/``: adding a language is adding a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from edge.domain.model import SiteConfig
from edge.web.api import WRITER, json_response

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def ui_config(config: SiteConfig, ui_dir: Path | None) -> dict[str, Any]:
    langs = sorted(p.stem for p in (ui_dir / "i18n").glob("*.json")) if ui_dir else ["ja"]
    order = ["ja", "en", "zh", "ko"]
    langs.sort(key=lambda x: (order.index(x) if x in order else len(order), x))
    return {
        "site": config.site, "name": config.name.values, "langs": langs, "default_lang": "ja",
        "lang_reset_s": config.lang_reset_s,
        "access": config.access,  # "staff": every counter needs a sign-in (edge/web/access.py)
        "guidance": None if config.guidance is None else config.guidance.values,
        "notices": [n.values for n in config.notices],
        "menus": [{
            "id": m.id, "name": m.name.values, "services": list(m.services),
            "guidance": None if m.guidance is None else m.guidance.values,
            "schedule": [{"days": [_DAY_NAMES[d] for d in w.days], "from": w.start, "to": w.end}
                         for w in m.schedule],
        } for m in config.menus.values()],
        "services": [{"code": s.code, "name": s.name.values, "kiosk": s.kiosk,
                      "ticket": s.ticket, "range": [s.first, s.last]}
                     for s in config.services.values()],
        "counters": [{"id": k.id, "name": k.name.values, "services": list(k.services),
                      "pin": k.pin_hash is not None} for k in config.counters.values()],
        "kiosks": {d.kiosk: {"printer": d.id} for d in config.devices
                   if d.kind == "printer" and d.kiosk},
    }


def add_ui_routes(app: web.Application, ui_dir: Path | None) -> None:
    async def get_ui_config(request: web.Request) -> web.Response:
        return json_response(ui_config(request.app[WRITER].config, ui_dir))

    app.router.add_get("/api/ui/config", get_ui_config)

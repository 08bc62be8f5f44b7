"""The hub kit: one Jinja environment, one catalogue loader, one live-state interface, one
registration shape and security headers on every response (issue 12 item 1)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from hub.app import Hub, start_hub
from hub.kit.i18n import load_catalogue, missing_keys
from hub.kit.runtime import RUNTIME
from hub.settings import HubSettings
from hub.web.app import modules

ROOT = Path(__file__).resolve().parents[2]
HUB = ROOT / "hub"


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    settings = HubSettings(keys={"t": bytes(32)}, key_id="t")
    h = await start_hub(f"sqlite:///{tmp_path}/k.db", None, port=0, settings=settings)
    yield h
    await h.stop()


def _write(folder: Path, lang: str, texts: dict[str, object]) -> None:
    (folder / f"{lang}.json").write_text(json.dumps(texts), "utf-8")


def test_a_missing_translation_fails_the_load_and_names_the_key(tmp_path: Path) -> None:
    _write(tmp_path, "ja", {"a": "あ", "errors": {"x": "エックス", "y": "ワイ"}})
    _write(tmp_path, "en", {"a": "A", "errors": {"x": "X"}})
    with pytest.raises(ValueError, match=r"en\.json lacks \['errors\.y'\]"):
        load_catalogue(tmp_path, ("ja", "en"))


def test_optional_keys_fall_back_to_japanese_then_english(tmp_path: Path) -> None:
    _write(tmp_path, "ja", {"a": "あ"})
    _write(tmp_path, "en", {"a": "A", "b": "B"})
    _write(tmp_path, "zh", {})
    texts = load_catalogue(tmp_path, ("ja", "en", "zh"), required=False)
    assert texts["zh"] == {"a": "あ", "b": "B"}
    assert texts["ja"] == {"a": "あ", "b": "B"}
    assert missing_keys({"a": 1}, {"a": 1, "n": {"m": 2}}) == ["n"]


def test_every_module_is_registered_in_one_shape() -> None:
    names = [m.name for m in modules()]
    assert names == ["api", "staff", "notify", "webticket", "residents", "auth", "audit",
                     "siteconfig", "fleet", "reservations", "stats", "notices", "forms"]
    assert all(m.routes for m in modules())


def test_no_module_builds_its_own_jinja_environment_or_reads_the_folds() -> None:
    """The kit is the only place: counted over the hub's sources, ingest itself excepted."""
    own_env, folds = [], []
    for path in sorted(HUB.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text("utf-8")
        if "jinja2.Environment(" in text and not rel.startswith("hub/kit/"):
            own_env.append(rel)
        if re.search(r"\bingest\.folds\b", text) and not rel.startswith(("hub/kit/",
                                                                          "hub/ingest/")):
            folds.append(rel)
    assert own_env == []
    assert folds == []


async def test_one_environment_renders_every_module_page(hub: Hub) -> None:
    app = hub.runner.app
    env = app[RUNTIME].jinja
    for name in ("base.html", "residents_status.html", "residents_error.html",
                 "residents_ticket.html", "webticket.html", "staff_sites.html",
                 "auth/login.html", "audit/audit.html"):
        env.get_template(name)
    assert env.autoescape is not False
    assert "duration" in env.filters


async def test_security_headers_on_pages_json_static_and_errors(hub: Hub) -> None:
    async with aiohttp.ClientSession() as http:
        for path in ("/", "/api/openapi.json", "/static/residents.css", "/auth/login",
                     "/w/nowhere/A", "/staff/sites", "/api/no-such-route"):
            async with http.get(hub.url + path, allow_redirects=False) as r:
                csp = r.headers.get("Content-Security-Policy", "")
                assert "default-src 'self'" in csp, path
                assert "frame-ancestors 'none'" in csp, path
                assert r.headers.get("X-Content-Type-Options") == "nosniff", path
                assert r.headers.get("X-Frame-Options") == "DENY", path
        async with http.get(hub.url + "/t/" + "x" * 22) as r:  # a handler's own value wins
            assert r.headers.get("Referrer-Policy") == "no-referrer"

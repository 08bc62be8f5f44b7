"""Signing in with OpenID Connect (a local provider standing in for a マイナンバーカード one): the
start page offers it only when configured, the callback creates a draft with name, address and
birth date prefilled, and a forged or replayed callback gets no draft."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from clamd_support import Clamd, start_clamd
from forms_support import Resident, add_form, count, resident_app, rows, simple
from oidc_support import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, LocalProvider

from hub.forms.records import open_json
from hub.forms.tables import form_drafts


@pytest.fixture(scope="module")
def clamd() -> Iterator[Clamd]:
    daemon = start_clamd()
    yield daemon
    daemon.stop()


@pytest.fixture
async def provider(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LocalProvider]:
    p = LocalProvider()
    await p.start()
    monkeypatch.setenv("MADOGUCHI_FORMS_OIDC_ISSUER", p.issuer)
    monkeypatch.setenv("MADOGUCHI_FORMS_OIDC_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("MADOGUCHI_FORMS_OIDC_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("MADOGUCHI_FORMS_OIDC_REDIRECT_URI", REDIRECT_URI)
    yield p
    await p.stop()


def oidc_form() -> dict[str, Any]:
    body = simple("x", identity="oidc")
    fields = body["pages"][0]["fields"]
    fields[0]["prefill"] = "name"
    fields.append({"type": "address", "id": "addr", "prefill": "address",
                   "label": {"ja": "住所", "en": "Address"}})
    fields.append({"type": "date", "id": "born", "prefill": "birth_date",
                   "label": {"ja": "生年月日", "en": "Date of birth"}})
    return body


async def _to_callback(r: Resident, form_id: str) -> str:
    """Start at the hub, let the provider answer; the callback's path and query. The
    provider signs with the real time, so the hub's clock is set to it."""
    r.clock.now = datetime.now(UTC)
    status, _, headers = await r.get(f"/f/{form_id}/oidc")
    assert status == 303
    async with aiohttp.ClientSession() as http, http.get(
            headers["Location"], allow_redirects=False) as answer:
        assert answer.status == 302
        back = urlsplit(answer.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == REDIRECT_URI
    return f"{back.path}?{back.query}"


async def test_oidc_sign_in_prefills_the_profile(tmp_path: Path, clamd: Clamd,
                                                 provider: LocalProvider) -> None:
    async with resident_app(tmp_path, clamd.client()) as r:
        form_id = await add_form(r.ctx, oidc_form())
        status, html, _ = await r.get(f"/f/{form_id}")
        assert status == 200
        assert 'id="oidc"' in html
        callback = await _to_callback(r, form_id)
        status, _, headers = await r.get(callback)
        assert status == 303
        assert headers["Location"].startswith(f"/f/{form_id}/page/1")
        status, html, _ = await r.get(headers["Location"])
        assert 'value="練馬"' in html
        assert 'value="ネリマ"' in html
        assert 'value="1768501"' in html
        assert '<option value="東京都" selected>' in html
        assert 'value="1980"' in html
        [draft] = await rows(r.ctx.store, form_drafts, form_id=form_id)
        identity = open_json(r.ctx, draft.id, "identity", draft.identity)
        assert identity["method"] == "oidc"
        assert len(identity["key"]) == 64
        assert "jpki-0001" not in str(identity)
        # the same answer again (a replay) creates nothing
        status, _, _ = await r.get(callback)
        assert status == 400
        assert await count(r.ctx.store, form_drafts) == 1


async def test_a_callback_without_the_pending_cookie_is_refused(
        tmp_path: Path, clamd: Clamd, provider: LocalProvider) -> None:
    async with resident_app(tmp_path, clamd.client()) as r:
        form_id = await add_form(r.ctx, oidc_form())
        callback = await _to_callback(r, form_id)
        r.client.session.cookie_jar.clear()
        status, html, _ = await r.get(callback)
        assert status == 400
        assert 'data-code="oidc_failed"' in html
        assert await count(r.ctx.store, form_drafts) == 0


async def test_without_a_provider_the_form_says_sign_in_is_unavailable(
        tmp_path: Path, clamd: Clamd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MADOGUCHI_FORMS_OIDC_ISSUER", raising=False)
    async with resident_app(tmp_path, clamd.client()) as r:
        form_id = await add_form(r.ctx, oidc_form())
        status, html, _ = await r.get(f"/f/{form_id}")
        assert 'id="oidc-unavailable"' in html
        assert 'id="oidc"' not in html
        status, _, _ = await r.get(f"/f/{form_id}/oidc")
        assert status == 503

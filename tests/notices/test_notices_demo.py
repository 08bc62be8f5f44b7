"""Online notices in ``madoguchi demo`` (``edge.demo_notices``): the demo's hub starts with the
test PKI's key and TSA in the environment, the demo account is notice staff, a sent notice's
mails are in the demo's mail sink (their link opens the portal), its PDFs verify against the
PKI's root, a draft waits to be signed, the sample list and PDF match each other, the banner
says where everything is, and stopping the hub stops the PKI and restores the environment.

In process (the embedded broker, the hub on SQLite in a temp folder), as ``edge.demo._main``
wires it; the subprocess run of the whole demo is ``tests/demo/test_demo_try_it.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
from pathlib import Path

import aiohttp
import pytest
from conftest import free_port
from sqlalchemy import select

from edge.demo import DEMO_LOGIN, _demo_staff, start_broker_and_hub
from edge.demo_banner import notice_lines
from edge.demo_notices import SAMPLE_CSV, SAMPLE_PDF, SENT_KEYS, notice_env
from edge.domain.clock import SystemClock
from hub.audit.tables import audit_log
from hub.auth import service as auth
from hub.auth.guard import COOKIE
from hub.notices import pdfsplit, recipients, service
from hub.notices.context import NOTICES
from hub.notices.tables import notice_files, notice_recipients
from hub.notices.verify import verify
from hub.store.store import use_clock

NOTICE_VARS = ("MADOGUCHI_NOTICE_SIGN_P12", "MADOGUCHI_NOTICE_SIGN_P12_PASS",
               "MADOGUCHI_NOTICE_TSA_URL", "MADOGUCHI_NOTICE_TRUST_ROOTS",
               "MADOGUCHI_NOTICE_FILES")


def _samples_match(folder: Path) -> None:
    """The sample list is cp932 (as Excel writes it) and its keys are the PDF's, in order."""
    csv_data = (folder / SAMPLE_CSV).read_bytes()
    csv_data.decode("cp932")
    with pytest.raises(UnicodeDecodeError):
        csv_data.decode("utf-8")
    parsed = recipients.parse_recipients(csv_data)
    parts = pdfsplit.split_by_key((folder / SAMPLE_PDF).read_bytes())
    assert not parts.problems
    assert len(parts.parts) == len(parsed.rows) == 5
    assert [p.key for p in parts.parts] == [r.key for r in parsed.rows]
    assert all(p.page_count == 2 for p in parts.parts)


async def _resident_downloads(hub_url: str, link: str, token: str) -> bytes:
    """What a newcomer does from ``/demo/mail``: open the link, ask for a code, find it in the
    sink, enter it, download the PDF; returns the downloaded bytes."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(link) as r:
            assert r.status == 200
            csrf = re.search(r'name="csrf" value="([^"]+)"', await r.text())
        assert csrf is not None
        async with http.post(f"{hub_url}/n/{token}/code", data={"csrf": csrf.group(1)},
                             allow_redirects=False) as r:
            assert r.status == 303, await r.text()
        async with http.get(f"{hub_url}/demo/mail.json") as r:
            box = (await r.json())["messages"]
        code = re.search(r"\b(\d{6})\b", box[-1]["body"])
        assert box[-1]["to"] == "resident1@example.jp"
        assert code is not None
        async with http.post(f"{hub_url}/n/{token}/verify", allow_redirects=False,
                             data={"csrf": csrf.group(1), "code": code.group(1)}) as r:
            assert r.status == 303, await r.text()
            assert r.headers["Location"].startswith("/n/view")
        async with http.get(f"{hub_url}/n/view") as r:
            assert r.status == 200
            file_url = re.search(r'href="(/n/file/[^"]+)"', await r.text())
        assert file_url is not None
        async with http.get(f"{hub_url}{file_url.group(1)}") as r:
            assert r.status == 200
            return await r.read()


async def test_demo_seeds_a_sent_and_a_draft_notice(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from edge.demo_notices import seed, staff_id

    for name in NOTICE_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MADOGUCHI_NOTICE_TSA_URL", "http://tsa.invalid/kept")  # restored after
    monkeypatch.delenv("MADOGUCHI_SMTP_URL", raising=False)  # the demo's sink, not SMTP
    args = argparse.Namespace(broker_port=0, host="127.0.0.1", hub_port=free_port())
    broker, hub, settings = await start_broker_and_hub(args, tmp_path, SystemClock())
    stopped = False
    try:
        ctx = hub.runner.app[NOTICES]
        pki_dir = Path(os.environ["MADOGUCHI_NOTICE_SIGN_P12"]).parent
        assert pki_dir.is_dir()
        assert os.environ["MADOGUCHI_NOTICE_TSA_URL"].startswith("http://127.0.0.1:")
        assert ctx.settings.files_dir == tmp_path / "notice-files"

        (login, password), _poll = await _demo_staff(hub, settings)
        seeded = await seed(hub, tmp_path, DEMO_LOGIN)

        sent, draft = await service.get(ctx, seeded.sent), await service.get(ctx, seeded.draft)
        assert (sent.status, draft.status) == ("sent", "draft")
        async with ctx.store.read() as tx:  # audited under the demo account's staff id
            actors = {str(a.actor) for a in (await tx.conn.execute(select(audit_log).where(
                audit_log.c.action.like("notice_%")))).all()}
        assert actors == {await staff_id(hub, DEMO_LOGIN)}
        figures = await service.figures(ctx, seeded.sent)
        assert (figures.recipients, figures.sent, figures.signatures) == (5, 5, 5)
        draft_figures = await service.figures(ctx, seeded.draft)
        assert (draft_figures.recipients, draft_figures.matched, draft_figures.signatures) == (
            3, 3, 0)

        async with ctx.store.read() as tx:  # every sent recipient has its own signed PDF
            files = (await tx.conn.execute(select(notice_files).where(
                notice_files.c.notice_id == seeded.sent))).all()
            linked = {str(r.file_id) for r in (await tx.conn.execute(select(
                notice_recipients.c.file_id).where(
                notice_recipients.c.notice_id == seeded.sent))).all()}
        assert len(files) == 5
        assert all(f.signed for f in files)
        assert linked == {str(f.id) for f in files}
        root = await asyncio.to_thread(Path(os.environ["MADOGUCHI_NOTICE_TRUST_ROOTS"]).read_bytes)
        checked = await asyncio.to_thread(verify, await ctx.files.get(str(files[0].id)), [root])
        assert checked.ok, checked.reason
        assert any((tmp_path / "notice-files").rglob("*"))  # the store is in the work dir

        async with aiohttp.ClientSession() as http:
            async with http.get(f"{hub.url}/demo/mail.json") as r:
                box = (await r.json())["messages"]
            assert sorted(m["to"] for m in box) == [
                f"resident{i}@example.jp" for i in range(1, len(SENT_KEYS) + 1)]
            assert all(m["subject"] == sent.title for m in box)
        first = next(m for m in box if m["to"] == "resident1@example.jp")
        link = re.search(r"(http://\S+/n/(\S+))", first["body"])
        assert link is not None
        signed = await _resident_downloads(hub.url, link.group(1), link.group(2))
        assert signed in [await ctx.files.get(str(f.id)) for f in files]
        assert (await service.figures(ctx, seeded.sent)).opened == 1

        result = await auth.login(hub.store, settings, login, password, "127.0.0.1")
        assert result.outcome == "ok"
        assert result.sid is not None
        async with aiohttp.ClientSession(cookies={COOKIE: result.sid}) as http, \
                http.get(f"{hub.url}/admin/notices", headers={"Accept": "text/html"}) as r:
            assert r.status == 200
            html = await r.text()
        assert f'data-notice="{seeded.sent}"' in html
        assert f'data-notice="{seeded.draft}"' in html

        await asyncio.to_thread(_samples_match, seeded.samples)

        await hub.stop()
        await broker.stop()
        stopped = True
        assert not pki_dir.exists()
        assert os.environ["MADOGUCHI_NOTICE_TSA_URL"] == "http://tsa.invalid/kept"
        assert "MADOGUCHI_NOTICE_SIGN_P12" not in os.environ
    finally:
        if not stopped:
            await hub.stop()
            await broker.stop()
        use_clock(None)


def test_banner_says_where_the_notices_are() -> None:
    text = "\n".join(notice_lines("http://127.0.0.1:8090", "/tmp/demo/notice-samples"))
    assert "http://127.0.0.1:8090/admin/notices" in text
    assert "/tmp/demo/notice-samples" in text
    assert "http://127.0.0.1:8090/demo/mail" in text
    assert "オンライン通知" in text  # both languages
    assert "notices" in text
    assert "ポータル" in text
    assert "portal" in text


def test_notice_env_points_at_the_pki_and_the_work_dir(tmp_path: Path) -> None:
    from hub.notices.context import NoticeSettings
    from hub.notices.signing import parse_signer_spec
    from hub.notices.testpki import TestPki

    with TestPki(key_size=1024) as pki:
        env = notice_env(pki, tmp_path)
        spec = parse_signer_spec(env)
        assert spec is not None
        assert spec.tsa_url == pki.tsa_url
        assert spec.trust_roots == (pki.root_pem,)
        assert spec.pkcs12_path == pki.pkcs12_path
        assert spec.pkcs12_passphrase == pki.passphrase
        assert NoticeSettings.from_env(env).files_dir == tmp_path / "notice-files"

"""Online notices (issue 16) in ``madoguchi demo``: a signing key, one sent and one draft notice.

Why: the notice module needs a signing key and a timestamp authority before anything can be
sent, which a newcomer does not have. The demo starts the module's throw-away test PKI
(``hub.notices.testpki.TestPki``: a local CA and TSA on 127.0.0.1, NEVER for production) and
points the module's settings at it before the hub starts (the module reads them once, at
setup), with the encrypted PDF store in the demo's work dir. The PKI stops with the hub's app
(an ``on_cleanup`` hook), so ``--ward``, which shares ``start_broker_and_hub``, needs no code.

The seed goes through the module's own steps (create, import, split and match, sign, ready,
send), as staff would on ``/admin/notices``: one notice already sent to five made-up residents
(their mails land in the demo's mail sink, ``/demo/mail``, where the link opens the portal) and
one draft with its list and PDF attached, to sign and send by hand. A sample list (cp932, as
Excel writes it) and a matching multi-page PDF are written to the work dir for a notice of
one's own. Everything is made up (``hub.notices.samples``) and gone when the demo stops.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hub.notices.pdfsplit import DEFAULT_PATTERN

if TYPE_CHECKING:
    from aiohttp import web

    from hub.app import Hub
    from hub.notices.testpki import TestPki

DEPARTMENT = "zeimu"  # the made-up department of the demo's notices
SAMPLES = "notice-samples"  # folder in the demo's work dir
SAMPLE_CSV = "recipients-cp932.csv"
SAMPLE_PDF = "notices-multipage.pdf"
SENT_KEYS = tuple(f"A{i:04d}" for i in range(1, 6))  # the sent notice's five residents
DRAFT_KEYS = tuple(f"B{i:04d}" for i in range(1, 4))
SAMPLE_KEYS = tuple(f"C{i:04d}" for i in range(1, 6))


@dataclass
class DemoNoticePki:
    """The running test PKI and the environment values it replaced (restored by ``stop``)."""

    pki: TestPki
    workdir: Path
    saved: dict[str, str | None] = field(default_factory=dict)

    def stop(self) -> None:
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self.saved = {}
        self.pki.stop()


def notice_env(pki: TestPki, workdir: Path) -> dict[str, str]:
    """The ``MADOGUCHI_NOTICE_*`` settings for ``pki`` (``signing.parse_signer_spec``) and the
    PDF store in ``workdir`` (``context.NoticeSettings.from_env``)."""
    assert pki.dir is not None, "start the PKI first"
    return {
        "MADOGUCHI_NOTICE_SIGN_P12": str(pki.pkcs12_path),
        "MADOGUCHI_NOTICE_SIGN_P12_PASS": pki.passphrase.decode(),
        "MADOGUCHI_NOTICE_TSA_URL": pki.tsa_url,
        "MADOGUCHI_NOTICE_TRUST_ROOTS": str(pki.dir / "root.cert.pem"),
        "MADOGUCHI_NOTICE_FILES": str(workdir / "notice-files"),
    }


async def start_pki(workdir: Path) -> DemoNoticePki:
    """Start the test PKI (key generation off the event loop) and set the environment; a
    signing key or TSA set in the environment is replaced for this demo only."""
    from hub.notices.testpki import TestPki

    pki = TestPki()
    await asyncio.to_thread(pki.start)
    env = notice_env(pki, workdir)
    running = DemoNoticePki(pki, workdir, {k: os.environ.get(k) for k in env})
    os.environ.update(env)
    return running


def stop_with(app: web.Application, running: DemoNoticePki) -> None:
    """Stop the PKI and restore the environment when the hub's app is cleaned up."""

    async def cleanup(_app: web.Application) -> None:
        running.stop()

    app.on_cleanup.append(cleanup)


@dataclass(frozen=True)
class Seeded:
    sent: str  # notice ids
    draft: str
    samples: Path  # the folder with the sample list and PDF


def _form(title: str, message_ja: str, message_en: str) -> Mapping[str, str]:
    return {"department": DEPARTMENT, "title": title, "auth": "code", "retention_days": "30",
            "description": "デモ用の架空の通知です / a made-up notice of the demo",
            "message_ja": message_ja, "message_en": message_en,
            "remind_after_days": "7", "remind_max": "1"}


async def staff_id(hub: Hub, login: str) -> str:
    """The id of the staff account ``login``: notice actions are audited under the staff id,
    as the staff pages do."""
    from sqlalchemy import select

    from hub.auth.tables import staff

    async with hub.store.read() as tx:
        return str((await tx.conn.execute(select(staff.c.id).where(
            staff.c.login == login))).scalar_one())


async def seed(hub: Hub, workdir: Path, login: str) -> Seeded:
    """One sent notice (five residents, signed, mailed to the demo's sink), one draft (list and
    PDF matched, not signed), and the sample files; done as the demo staff account ``login``."""
    from hub.notices import prepare, sending, service
    from hub.notices.context import NOTICES
    from hub.notices.samples import make_notice_pdf, make_recipients_csv

    ctx = hub.runner.app[NOTICES]
    actor = await staff_id(hub, login)
    sent = await service.create(ctx, service.read_fields(_form(
        "住民税の決定通知（デモ）",
        "令和8年度の住民税額を決定しました。詳しくは添付の通知書をご確認ください。\n\n"
        "[練馬区のページ](https://www.city.nerima.tokyo.jp/)",
        "Your residence tax for this year has been set; see the attached notice.")),
        actor, None)
    await prepare.import_recipients(ctx, sent, make_recipients_csv(len(SENT_KEYS),
                                    keys=SENT_KEYS), None, actor, None)
    await prepare.attach_pdf(ctx, sent, make_notice_pdf(SENT_KEYS), "key", DEFAULT_PATTERN, 0,
                             actor, None)
    await prepare.sign_all(ctx, sent, actor, None)
    await prepare.mark_ready(ctx, sent, actor, None)
    await sending.send_all(ctx, sent, actor, None)

    draft = await service.create(ctx, service.read_fields(_form(
        "国民健康保険料の通知（デモ・下書き）",
        "保険料の決定通知です。署名して送信してみてください。",
        "A draft: sign it and send it to try the steps.")), actor, None)
    await prepare.import_recipients(ctx, draft, make_recipients_csv(len(DRAFT_KEYS),
                                    keys=DRAFT_KEYS), None, actor, None)
    await prepare.attach_pdf(ctx, draft, make_notice_pdf(DRAFT_KEYS), "key", DEFAULT_PATTERN,
                             0, actor, None)

    samples = workdir / SAMPLES
    samples.mkdir(parents=True, exist_ok=True)
    (samples / SAMPLE_CSV).write_bytes(make_recipients_csv(len(SAMPLE_KEYS), "cp932",
                                                           keys=SAMPLE_KEYS))
    (samples / SAMPLE_PDF).write_bytes(make_notice_pdf(SAMPLE_KEYS, pages_each=2))
    return Seeded(sent, draft, samples)

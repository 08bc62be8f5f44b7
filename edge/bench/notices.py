"""``madoguchi bench notices``: online notices at a ward's scale (issue 16 "Must show").

Everything runs through the module's own code (``hub.notices.prepare``, ``sending``, the portal
routes), on made-up data from ``hub.notices.samples`` (Japanese PDFs, a cp932 list):

- **split**: one 1,000-page PDF (500 residents, two pages each, the key printed on each first
  page) attached with ``attach_pdf`` in key mode: split, each part encrypted and stored, matched
  with the 500-row list. ``split_1000_pages_s``.
- **sign**: ``sign_all`` on those 500 parts: PAdES B-LT with the PKCS#12 key of a local test PKI
  (``TestPki``: CA, CRL and an RFC 3161 TSA on 127.0.0.1). ``sign_500_pdfs_s``.
- **send**: a second notice of 5,000 recipients (one common signed PDF) sent by ``send_all``
  through ``SmtpMailer`` to an aiosmtpd server in this process. ``send_5000_mails_s``; every
  mail must reach the server and every recipient be ``sent``.
- **portal**: the first notice is sent too; 100 of its residents sign in with the link from
  their mail (magic link) on a hub process of its own and download their PDF at once, several
  times each (``edge.bench.notices_portal``). ``portal_download_p99_ms``.

The store is SQLite in a temporary folder, or PostgreSQL with ``--pg`` (a schema made and
dropped). ``--quick`` runs the same steps on small sizes (the figures keep their names; the
``*_count`` fields say what was measured). One JSON object; ``targets`` and ``meets_targets``
as the other benches.
"""

from __future__ import annotations

import asyncio
import email
import email.message
import email.policy
import os
import platform
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from edge.bench.judge import judge
from edge.bench.load import BenchError
from edge.bench.notices_portal import PortalProcess, download_figures
from edge.bench.sync_rig import free_port

TARGETS: dict[str, float] = {"split_1000_pages_s": 30.0, "sign_500_pdfs_s": 120.0,
                             "send_5000_mails_s": 300.0, "portal_download_p99_ms": 300.0}
ACTOR = "bench"
KEY_ID = "bench"
_LINK = re.compile(r"/n/([A-Za-z0-9_-]{16,})")


@dataclass(frozen=True)
class Sizes:
    residents: int  # the split/sign notice: two pages each
    mails: int  # the send notice
    portal_residents: int  # residents downloading at once
    downloads_each: int


FULL = Sizes(residents=500, mails=5000, portal_residents=100, downloads_each=6)
QUICK = Sizes(residents=12, mails=150, portal_residents=10, downloads_each=3)


class MailSink:
    """A minimal aiosmtpd handler: counts accepted mails and, while ``keep_links``, keeps the
    portal link of each recipient's newest mail (the residents' "inbox"). Why here: ``edge/``
    may not import ``tests/``, and the demo's sink is a memory box, not an SMTP server."""

    def __init__(self) -> None:
        self.accepted = 0
        self.keep_links = False
        self.links: dict[str, str] = {}  # address -> link token, in memory only
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.controller.port}"

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.accepted += len(envelope.rcpt_tos)
        if self.keep_links:
            msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
            body = msg.get_body(("plain",)) if isinstance(msg, email.message.EmailMessage) \
                else None
            found = _LINK.search(str(body.get_content())) if body is not None else None
            if found is not None:
                for rcpt in envelope.rcpt_tos:
                    self.links[str(rcpt)] = found.group(1)
        return "250 OK"


def _signer_env(pki: Any) -> dict[str, str]:
    """The ``MADOGUCHI_NOTICE_*`` settings a hub would have for this PKI's key and TSA."""
    assert pki.dir is not None
    return {"MADOGUCHI_NOTICE_SIGN_P12": str(pki.pkcs12_path),
            "MADOGUCHI_NOTICE_SIGN_P12_PASS": pki.passphrase.decode("ascii"),
            "MADOGUCHI_NOTICE_TSA_URL": pki.tsa_url,
            "MADOGUCHI_NOTICE_TRUST_ROOTS": str(pki.dir / "root.cert.pem")}


async def _new_notice(ctx: Any, title: str) -> str:
    from hub.notices.service import NoticeFields, create

    fields = NoticeFields(department="tax", title=title, description="",
                          message_ja="**内容をご確認ください。**", message_en="Please read.",
                          auth="link", remind_after_days=None, remind_max=0, retention_days=365,
                          test_mode=False, test_addresses=())
    return await create(ctx, fields, ACTOR, None)


async def _statuses(ctx: Any, notice_id: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from hub.notices.tables import notice_recipients as r

    async with ctx.store.read() as tx:
        rows = (await tx.conn.execute(select(r.c.status, func.count()).where(
            r.c.notice_id == notice_id).group_by(r.c.status))).all()
    return {str(s): int(n) for s, n in rows}


async def _split_sign_send(ctx: Any, sink: MailSink, n: int) -> tuple[dict[str, Any], str]:
    """The first notice: split (key mode), sign every part, send; returns the figures and the
    notice id."""
    from hub.notices import prepare, sending
    from hub.notices.pdfsplit import DEFAULT_PATTERN
    from hub.notices.samples import make_notice_pdf, make_recipients_csv

    keys = [f"A{i:04d}" for i in range(1, n + 1)]
    pdf = make_notice_pdf(keys, pages_each=2)
    nid = await _new_notice(ctx, "住民税 決定通知書（ベンチマーク）")
    await prepare.import_recipients(ctx, nid, make_recipients_csv(n), None, ACTOR, None)
    t0 = time.perf_counter()
    report = await prepare.attach_pdf(ctx, nid, pdf, "key", DEFAULT_PATTERN, 0, ACTOR, None)
    split_s = time.perf_counter() - t0
    if report.parts != n or report.matched != n:
        raise BenchError(f"split: {report.parts} parts, {report.matched} matched of {n}")
    t0 = time.perf_counter()
    signed = await prepare.sign_all(ctx, nid, ACTOR, None)
    sign_s = time.perf_counter() - t0
    if signed != n:
        raise BenchError(f"signed {signed} of {n}")
    await prepare.mark_ready(ctx, nid, ACTOR, None)
    sink.keep_links = True
    try:
        await sending.send_all(ctx, nid, ACTOR, None)
    finally:
        sink.keep_links = False
    if (await _statuses(ctx, nid)).get("sent") != n:
        raise BenchError("the first notice did not reach every resident")
    return {"split_1000_pages_s": round(split_s, 2), "split_pages_count": 2 * n,
            "split_parts_count": report.parts, "split_pdf_bytes": len(pdf),
            "sign_500_pdfs_s": round(sign_s, 2), "signed_count": signed,
            "sign_per_pdf_ms": round(sign_s * 1000 / signed, 1)}, nid


async def _send_bulk(ctx: Any, sink: MailSink, n: int) -> dict[str, Any]:
    """The second notice: ``n`` recipients, one common signed PDF; times ``send_all``."""
    from hub.notices import prepare, sending
    from hub.notices.pdfsplit import DEFAULT_PATTERN
    from hub.notices.samples import make_notice_pdf, make_recipients_csv

    nid = await _new_notice(ctx, "各種手続きのお知らせ（ベンチマーク）")
    await prepare.import_recipients(ctx, nid, make_recipients_csv(n), None, ACTOR, None)
    await prepare.attach_pdf(ctx, nid, make_notice_pdf(["COMMON"], pages_each=2), "single",
                             DEFAULT_PATTERN, 0, ACTOR, None)
    await prepare.sign_all(ctx, nid, ACTOR, None)
    await prepare.mark_ready(ctx, nid, ACTOR, None)
    before = sink.accepted
    t0 = time.perf_counter()
    await sending.send_all(ctx, nid, ACTOR, None)
    send_s = time.perf_counter() - t0
    statuses = await _statuses(ctx, nid)
    accepted = sink.accepted - before
    if statuses.get("sent") != n or accepted != n:
        raise BenchError(f"sent {statuses}, the SMTP server accepted {accepted} of {n}")
    return {"send_5000_mails_s": round(send_s, 2), "mails_sent_count": accepted,
            "mails_per_s": round(accepted / send_s, 1)}


async def _run(sizes: Sizes, db_url: str, schema: str | None, workdir: Path) -> dict[str, Any]:
    from hub.kit.mail import SmtpMailer
    from hub.notices.context import Notices, NoticeSettings
    from hub.notices.testpki import TestPki
    from hub.settings import HubSettings
    from hub.store import HubStore

    key = os.urandom(32)
    portal_port = free_port()
    sink = MailSink()
    sink.controller.start()
    pki = await asyncio.to_thread(TestPki)
    await asyncio.to_thread(pki.start)
    try:
        settings = HubSettings(keys={KEY_ID: key}, key_id=KEY_ID, smtp_url=sink.url,
                               public_url=f"http://127.0.0.1:{portal_port}", cookie_secure=False)
        files_dir = workdir / "notice-files"
        store = await HubStore.open(db_url, schema=schema)
        try:
            ctx = Notices.build(store, settings,
                                NoticeSettings(files_dir=files_dir, signer_env=_signer_env(pki)),
                                SmtpMailer(sink.url, settings.smtp_from))
            out, _nid = await _split_sign_send(ctx, sink, sizes.residents)
            out.update(await _send_bulk(ctx, sink, sizes.mails))
        finally:
            await store.close()
    finally:
        await asyncio.to_thread(pki.stop)
        sink.controller.stop()
    tokens = [sink.links[f"resident{i}@example.jp"]
              for i in range(1, sizes.portal_residents + 1)]
    portal = PortalProcess(db_url, schema, portal_port, KEY_ID, key, files_dir,
                           workdir / "portal.log")
    try:
        await portal.start()
        out.update(await download_figures(portal.url, tokens, sizes.downloads_each))
    finally:
        portal.stop()
    return out


async def _drop_schema(pg_url: str, schema: str) -> None:
    from sqlalchemy import text

    from hub.store import HubStore

    store = await HubStore.open(pg_url, upgrade=False)
    try:
        async with store.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await store.close()


def measure(quick: bool, pg_url: str | None = None) -> dict[str, Any]:
    """The bench's JSON object; SQLite unless ``pg_url``."""
    from edge.bench import _cpu_model

    sizes = QUICK if quick else FULL
    workdir = Path(tempfile.mkdtemp(prefix="madoguchi-bench-notices-"))
    schema = f"bench_notices_{uuid.uuid4().hex[:10]}" if pg_url else None
    db_url = pg_url or f"sqlite:///{workdir / 'hub.db'}"
    result: dict[str, Any] = {"bench": "notices", "quick": quick,
                              "store": "postgresql" if pg_url else "sqlite",
                              "loadavg_1m_before": round(os.getloadavg()[0], 2)}
    try:
        result.update(asyncio.run(_run(sizes, db_url, schema, workdir)))
    finally:
        if pg_url and schema:
            asyncio.run(_drop_schema(pg_url, schema))
        shutil.rmtree(workdir, ignore_errors=True)
    result["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    judge(result, TARGETS)
    result.update({"python": platform.python_version(), "cpu_count": os.cpu_count(),
                   "machine": f"{platform.machine()} {_cpu_model()}".strip()})
    return result

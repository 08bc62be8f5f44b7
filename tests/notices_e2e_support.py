"""The notices end to end (issue 16, "Must show"): a hub served on a known port (so the links
in the e-mails work as they are), the notice module with the real SMTP mailer and a signing key
given the way the hub reads it (``MADOGUCHI_NOTICE_*`` settings), on SQLite or on PostgreSQL in
a schema of its own; plus the helpers to read the sink's mails, dump that schema and search
bytes for personal data in every form it could take at rest.

Why a hub of its own and not ``notices_staff_support.staff_hub``: that one has a memory mailer,
no signing key and SQLite only, and its links point at a public URL nobody serves.
"""

from __future__ import annotations

import email.message
import io
import re
import subprocess
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from aiohttp.test_utils import TestClient, TestServer
from conftest import free_port
from mail_support import SmtpSink
from sqlalchemy import text

from hub.kit.mail import SmtpMailer
from hub.notices.context import NOTICES, Notices, NoticeSettings
from hub.notices.signing import PREFIX, SignerSpec
from hub.settings import HubSettings
from hub.store import HubStore
from hub.web.app import create_app

LINK = re.compile(r"(https?://[^\s/]+/n/[A-Za-z0-9_-]+)")
CODE = re.compile(r"\b(\d{6})\b")


def signer_env(spec: SignerSpec, folder: Path) -> dict[str, str]:
    """The ``MADOGUCHI_NOTICE_*`` settings that ``signing.parse_signer_spec`` turns back into
    ``spec`` (the trust roots written to a PEM file in ``folder``): what an operator sets."""
    roots = folder / "trust-roots.pem"
    roots.write_bytes(b"".join(spec.trust_roots))
    env = {f"{PREFIX}TSA_URL": spec.tsa_url, f"{PREFIX}TRUST_ROOTS": str(roots)}
    if spec.location:
        env[f"{PREFIX}SIGN_LOCATION"] = spec.location
    if spec.pkcs12_path is not None:
        env[f"{PREFIX}SIGN_P12"] = str(spec.pkcs12_path)
        env[f"{PREFIX}SIGN_P12_PASS"] = (spec.pkcs12_passphrase or b"").decode()
    else:
        assert spec.pkcs11_module
        assert spec.pkcs11_token_label
        assert spec.pkcs11_key_label
        env.update({f"{PREFIX}SIGN_PKCS11_MODULE": spec.pkcs11_module,
                    f"{PREFIX}SIGN_PKCS11_TOKEN": spec.pkcs11_token_label,
                    f"{PREFIX}SIGN_PKCS11_KEY": spec.pkcs11_key_label,
                    f"{PREFIX}SIGN_PKCS11_PIN": spec.pkcs11_pin or ""})
        if spec.pkcs11_cert_path is not None:
            env[f"{PREFIX}SIGN_PKCS11_CERT_FILE"] = str(spec.pkcs11_cert_path)
    return env


@dataclass
class E2eHub:
    client: TestClient  # type: ignore[type-arg]
    ctx: Notices
    settings: HubSettings
    url: str  # http://127.0.0.1:port, also the hub's public URL (the links in the mails)
    files_dir: Path


@asynccontextmanager
async def e2e_hub(tmp_path: Path, sink: SmtpSink, env: dict[str, str],
                  store_url: str | None = None, schema: str | None = None,
                  ) -> AsyncIterator[E2eHub]:
    """The hub app with the notice module mailing through ``SmtpMailer`` to ``sink`` and
    signing with ``env``; on PostgreSQL (``store_url``, ``schema``: dropped afterwards) or
    on a SQLite file under ``tmp_path``."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = HubSettings(keys={"t1": bytes(range(32))}, key_id="t1", public_url=url,
                           cookie_secure=False)
    store = await HubStore.open(store_url or f"sqlite:///{tmp_path}/hub.db", schema=schema)
    files_dir = tmp_path / "notice-files"
    try:
        app = create_app(store, None, settings)
        ctx = Notices.build(store, settings, NoticeSettings(files_dir=files_dir, signer_env=env),
                            SmtpMailer(sink.url, "notices@city.example.jp"))
        app[NOTICES] = ctx
        client: TestClient = TestClient(  # type: ignore[type-arg]
            TestServer(app, host="127.0.0.1", port=port))
        await client.start_server()
        try:
            yield E2eHub(client, ctx, settings, url, files_dir)
        finally:
            await client.close()
    finally:
        if schema is not None:
            async with store.engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await store.close()


def mails_to(sink: SmtpSink, address: str, since: int = 0) -> list[email.message.EmailMessage]:
    """The messages the sink accepted for ``address`` (from message number ``since`` on)."""
    return [m for rcpts, m in sink.messages[since:] if address in rcpts]


def body_of(msg: email.message.EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None, "no text/plain part"
    return str(part.get_content())


def link_in(msg: email.message.EmailMessage) -> str:
    match = LINK.search(body_of(msg))
    assert match is not None, "no portal link in the mail"
    return match.group(1)


def code_in(msg: email.message.EmailMessage) -> str:
    match = CODE.search(body_of(msg))
    assert match is not None, "no code in the mail"
    return match.group(1)


def pg_dump(store_url: str, schema: str) -> bytes:
    """A plain-text ``pg_dump`` of ``schema`` (data included), as an operator's backup is."""
    parts = urlsplit(store_url)
    plain = urlunsplit((parts.scheme.split("+")[0], parts.netloc, parts.path, "", ""))
    done = subprocess.run(["pg_dump", f"--schema={schema}", "--no-owner", f"--dbname={plain}"],
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def forms(*texts: str) -> list[bytes]:
    """Every way ``texts`` can sit in a file or a dump: UTF-8, UTF-16BE (PDF strings, CID
    fonts), a PDF literal string with octal escapes (reportlab's CID text) and hex."""
    out: list[bytes] = []
    for t in texts:
        wide = t.encode("utf-16-be")
        out += [t.encode(), wide, wide.hex().encode(), wide.hex().upper().encode(),
                b"".join(b"\\%03o" % c if c < 32 or c > 126 or c in b"()\\" else bytes([c])
                         for c in wide)]
    return out


def readable(data: bytes) -> bytes:
    """``data`` plus, if it is a PDF, its decoded page contents and extracted text: a plain
    PDF's text is compressed (ASCII85 + Flate), so a search of the raw bytes alone proves
    nothing; an encrypted file does not parse and stays as it is."""
    from pypdf import PdfReader

    extra = b""
    try:
        reader = PdfReader(io.BytesIO(data))
        for page in reader.pages:
            contents = page.get_contents()
            if contents is not None:
                extra += b"\n" + contents.get_data()
            extra += b"\n" + page.extract_text().encode()
    except Exception:  # not a PDF (an encrypted blob, a dump): nothing to add
        pass
    return data + extra


def found(haystack: bytes, needles: Iterable[bytes]) -> list[bytes]:
    return [n for n in needles if n in haystack]


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


__all__ = ["E2eHub", "body_of", "code_in", "e2e_hub", "files_under", "forms", "found",
           "link_in", "mails_to", "pg_dump", "readable", "signer_env"]

"""How a resident gets into the notice portal (N5): a magic link or a one-time code, then a
short signed session, then the downloads. No aiohttp here: the pages (``portal.py``) call these.

Why the link is consumed only by a POST: mail scanners and link previews open every link in a
message (sometimes several times); if a GET consumed it, the resident would find it "already
used". The GET only shows a button; pressing it (a POST the scanners do not send) signs in.

Why counters are changed by one UPDATE each in the database, not read-modify-write in Python:
parallel wrong guesses must each count (``code_tries = code_tries + 1``), and the fifth locks
the portal for ``LOCK`` in the same statement. Codes sent and new links share one hourly budget
(``CODES_PER_HOUR``), so nobody can flood a resident's mailbox through the portal.

Codes are stored as HMAC-SHA256 (key derived from the hub's key, message = recipient id and
code), so the database alone cannot test the 10^6 codes. Nothing here logs a name, an address
or a code; audit rows name the recipient id (``resident:<id>``) and file ids only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import and_, case, literal, null, or_, select, update

from edge.domain.model import LANGS
from hub.auth.service import audit_in
from hub.kit.i18n import load_catalogue
from hub.notices import records
from hub.notices.context import CODE_MAX_TRIES, CODES_PER_HOUR, LOCK, SESSION, Notices
from hub.notices.downloads import Download
from hub.notices.files import FileStoreError
from hub.notices.tables import notice_files, notice_recipients, notices
from hub.notify.senders import Notice
from hub.store.schema import UtcDateTime
from hub.webticket.pow import derive_key

_LOGGER = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
TEXTS = load_catalogue(HERE / "i18n", LANGS, prefix="portal_")  # pages and reasons
MAIL = load_catalogue(HERE / "i18n", ("ja", "en"), prefix="portal_mail_")  # e-mails: ja, en
HOUR = timedelta(hours=1)
R = notice_recipients


@dataclass(frozen=True)
class Found:
    """A link's recipient and notice rows; ``status``: ok, expired, used (a consumed magic
    link) or locked (too many wrong codes, until ``recipient.locked_until``)."""

    recipient: Any
    notice: Any
    status: str


@dataclass(frozen=True)
class Result:
    """``code``: ok, unknown, wrong_auth, expired, used, locked, not_needed, too_many,
    mail_failed, no_code, code_expired, bad_format, wrong_code (``reason`` gives the text)."""

    ok: bool
    code: str
    recipient_id: str | None = None
    tries_left: int | None = None


def reason(code: str, lang: str) -> str:
    """The resident-facing text of a result code (ja/en/zh/ko; ja when unknown)."""
    texts = TEXTS.get(lang, TEXTS["ja"])["reasons"]
    return str(texts.get(code, texts["unknown"]))


def link_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_link_token() -> str:
    return secrets.token_urlsafe(32)


def link_url(ctx: Notices, token: str) -> str:
    return f"{ctx.hub.public_url.rstrip('/')}/n/{token}"


def _code_hmac(ctx: Notices, recipient_id: str, code: str) -> str:
    key = derive_key(ctx.hub.key, "notice-code")
    return hmac.new(key, f"{recipient_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _gone(notice: Any) -> bool:
    return notice.purged_at is not None or notice.status == "closed"


def _status(recipient: Any, notice: Any, now: datetime) -> str:
    if recipient.locked_until is not None and recipient.locked_until > now:
        return "locked"
    if notice.auth == "link" and recipient.link_used_at is not None:
        return "used"
    if recipient.link_expires_at is not None and recipient.link_expires_at < now:
        return "expired"
    return "ok"


async def find(ctx: Notices, token: str, now: datetime) -> Found | None:
    """None for a token nobody has (or whose notice is closed or purged): the page then says
    nothing about whether it ever existed."""
    if not token or len(token) > 128:
        return None
    async with ctx.store.read() as tx:
        rec = (await tx.conn.execute(select(R).where(R.c.link_hash == link_hash(token)))).first()
        if rec is None:
            return None
        notice = (await tx.conn.execute(
            select(notices).where(notices.c.id == rec.notice_id))).first()
    if notice is None or _gone(notice):
        return None
    return Found(rec, notice, _status(rec, notice, now))


def _not_locked(now: datetime) -> Any:
    return or_(R.c.locked_until.is_(None), R.c.locked_until <= now)


# --- magic link -----------------------------------------------------------------------------

async def consume_link(ctx: Notices, token: str, now: datetime,
                       ip: str | None = None) -> Result:
    """Sign in with a magic link (only from a POST): marks it used, once."""
    found = await find(ctx, token, now)
    if found is None:
        return Result(False, "unknown")
    if found.notice.auth != "link":
        return Result(False, "wrong_auth")
    if found.status != "ok":
        return Result(False, found.status)
    rid = str(found.recipient.id)
    async with ctx.store.begin() as tx:
        done = await tx.conn.execute(update(R).where(
            R.c.id == rid, R.c.link_hash == link_hash(token), R.c.link_used_at.is_(None),
            or_(R.c.link_expires_at.is_(None), R.c.link_expires_at >= now), _not_locked(now),
        ).values(link_used_at=now, updated_at=now))
        if done.rowcount != 1:  # used by a parallel request meanwhile
            return Result(False, "used")
        await audit_in(tx, ctx.hub, actor=f"resident:{rid}", action="notice_portal_login",
                       target=str(found.notice.id), ip=ip, detail={"method": "link"})
    return Result(True, "ok", rid)


async def _spend_budget(ctx: Notices, tx: Any, rec: Any, now: datetime,
                        values: dict[str, Any]) -> bool:
    """One more mail from the hourly budget, with ``values`` in the same UPDATE; False when
    the budget is spent (or the row changed meanwhile: the caller answers "try again")."""
    fresh = rec.codes_window_at is None or now - rec.codes_window_at >= HOUR
    sent = 0 if fresh else int(rec.codes_sent)
    if sent >= CODES_PER_HOUR:
        return False
    window = now if fresh else rec.codes_window_at
    same_window = (R.c.codes_window_at.is_(None) if rec.codes_window_at is None
                   else R.c.codes_window_at == rec.codes_window_at)
    done = await tx.conn.execute(update(R).where(
        R.c.id == rec.id, R.c.codes_sent == rec.codes_sent, same_window, _not_locked(now),
    ).values(codes_sent=sent + 1, codes_window_at=window, updated_at=now, **values))
    return bool(done.rowcount == 1)


async def _mail(ctx: Notices, notice: Any, rec: Any, kind: str, **values: str) -> bool:
    """The code or new-link mail to ``records.addresses`` (test mode: the staff's only)."""
    lang = "en" if rec.lang == "en" else "ja"
    texts = MAIL[lang][kind]
    subject = str(texts["subject"])
    body = str(texts["body"]).format(title=notice.title, **values)
    mails = [Notice(str(rec.id), to, lang, subject, body)
             for to in records.addresses(ctx, notice, rec)]
    if not mails:
        return False
    outcomes = await ctx.mailer.send_batch(mails)
    return any(o.status == "sent" for o in outcomes)


async def send_new_link(ctx: Notices, token: str, now: datetime) -> Result:
    """Replace a used or expired link: a fresh one is mailed to the same address(es) and the
    old one stops working. Does not count as a contact (``contacts``: staff mails only)."""
    found = await find(ctx, token, now)
    if found is None:
        return Result(False, "unknown")
    if found.status == "locked":
        return Result(False, "locked")
    if found.status == "ok":
        return Result(False, "not_needed")
    rec, notice = found.recipient, found.notice
    fresh = new_link_token()
    async with ctx.store.begin() as tx:
        ok = await _spend_budget(ctx, tx, rec, now, {
            "link_hash": link_hash(fresh), "link_used_at": None,
            "link_expires_at": now + timedelta(days=ctx.settings.link_days)})
    if not ok:
        return Result(False, "too_many")
    if not await _mail(ctx, notice, rec, "link", url=link_url(ctx, fresh),
                       days=str(ctx.settings.link_days)):
        return Result(False, "mail_failed")
    return Result(True, "ok", str(rec.id))


# --- one-time code --------------------------------------------------------------------------

async def send_code(ctx: Notices, token: str, now: datetime) -> Result:
    """Mail a new 6-digit code (the previous one stops working). Wrong tries are not reset by
    a new code: only a right code, or a lock that has run out, starts them again."""
    found = await find(ctx, token, now)
    if found is None:
        return Result(False, "unknown")
    if found.notice.auth != "code":
        return Result(False, "wrong_auth")
    if found.status != "ok":
        return Result(False, found.status)
    rec, notice = found.recipient, found.notice
    code = f"{secrets.randbelow(10**6):06d}"
    values: dict[str, Any] = {
        "code_hmac": _code_hmac(ctx, str(rec.id), code),
        "code_expires_at": now + timedelta(minutes=ctx.settings.code_minutes)}
    if rec.locked_until is not None:  # a lock that has run out: five new tries
        values.update(locked_until=None, code_tries=0)
    async with ctx.store.begin() as tx:
        ok = await _spend_budget(ctx, tx, rec, now, values)
    if not ok:
        return Result(False, "too_many")
    if not await _mail(ctx, notice, rec, "code", code=code,
                       minutes=str(ctx.settings.code_minutes)):
        return Result(False, "mail_failed")
    return Result(True, "ok", str(rec.id))


def normalise_code(raw: str) -> str | None:
    """Six digits, full-width ones too (NFKC); spaces and hyphens between them ignored."""
    text = unicodedata.normalize("NFKC", raw)
    digits = "".join(c for c in text if c not in " -\t")
    return digits if len(digits) == 6 and digits.isascii() and digits.isdigit() else None


async def check_code(ctx: Notices, token: str, code: str, now: datetime,
                     ip: str | None = None) -> Result:
    found = await find(ctx, token, now)
    if found is None:
        return Result(False, "unknown")
    if found.notice.auth != "code":
        return Result(False, "wrong_auth")
    if found.status in ("locked", "expired"):
        return Result(False, found.status)
    rec = found.recipient
    rid = str(rec.id)
    digits = normalise_code(code)
    if digits is None:
        return Result(False, "bad_format")
    if rec.code_hmac is None:
        return Result(False, "no_code")
    if rec.code_expires_at is None or rec.code_expires_at < now:
        return Result(False, "code_expired")
    right = hmac.compare_digest(_code_hmac(ctx, rid, digits).encode(), rec.code_hmac.encode())
    same_code = and_(R.c.id == rid, R.c.code_hmac == rec.code_hmac, _not_locked(now))
    async with ctx.store.begin() as tx:
        if right:
            done = await tx.conn.execute(update(R).where(same_code).values(
                code_hmac=None, code_expires_at=None, code_tries=0, updated_at=now))
            if done.rowcount != 1:  # locked or replaced meanwhile
                return Result(False, "locked" if await _locked(tx, rid, now) else "no_code")
            await audit_in(tx, ctx.hub, actor=f"resident:{rid}", action="notice_portal_login",
                           target=str(found.notice.id), ip=ip, detail={"method": "code"})
            return Result(True, "ok", rid)
        # one statement: every parallel guess counts, and the fifth locks (SET sees old values)
        full = R.c.code_tries + 1 >= CODE_MAX_TRIES
        tries = (await tx.conn.execute(update(R).where(same_code).values(
            code_tries=R.c.code_tries + 1,
            locked_until=case((full, literal(now + LOCK, UtcDateTime())), else_=R.c.locked_until),
            code_hmac=case((full, null()), else_=R.c.code_hmac),
            code_expires_at=case((full, null()), else_=R.c.code_expires_at),
            updated_at=now).returning(R.c.code_tries))).scalar()
        if tries is None:  # the code was cleared by a parallel guess (locked) or a new code
            return Result(False, "locked" if await _locked(tx, rid, now) else "wrong_code", rid)
        if int(tries) >= CODE_MAX_TRIES:
            if int(tries) == CODE_MAX_TRIES:
                await audit_in(tx, ctx.hub, actor=f"resident:{rid}", action="notice_code_locked",
                               target=rid, ip=ip, detail={"tries": int(tries)})
            return Result(False, "locked", rid, 0)
        return Result(False, "wrong_code", rid, CODE_MAX_TRIES - int(tries))


async def _locked(tx: Any, rid: str, now: datetime) -> bool:
    until = (await tx.conn.execute(select(R.c.locked_until).where(R.c.id == rid))).scalar()
    return until is not None and until > now


# --- session --------------------------------------------------------------------------------
# like hub.reservations.tokens: base64url(json) . base64url(hmac), under a key of its own

def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _session_mac(ctx: Notices, body: str) -> bytes:
    key = derive_key(ctx.hub.key, "notice-session")
    return hmac.new(key, body.encode(), hashlib.sha256).digest()[:18]


def sign_session(ctx: Notices, recipient_id: str, now: datetime) -> str:
    body = _b64(json.dumps({"r": recipient_id,
                            "e": int((now + SESSION).timestamp())}).encode())
    return f"{body}.{_b64(_session_mac(ctx, body))}"


def read_session(ctx: Notices, cookie: str | None, now: datetime) -> str | None:
    """The recipient id, or None when missing, forged or expired."""
    if not cookie or len(cookie) > 512:
        return None
    body, _, mac = cookie.partition(".")
    try:
        if not hmac.compare_digest(_unb64(mac), _session_mac(ctx, body)):
            return None
        data: Any = json.loads(_unb64(body))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("r"), str):
        return None
    if not isinstance(data.get("e"), int) or data["e"] < now.timestamp():
        return None
    return str(data["r"])


# --- the signed-in view and downloads -------------------------------------------------------

@dataclass(frozen=True)
class FileView:
    id: str
    name: str
    pages: int
    size: int
    own: bool  # the recipient's own notice (not the common one)



async def _view_rows(ctx: Notices, recipient_id: str) -> tuple[Any, Any, list[Any]] | None:
    """Recipient, notice and its signed files in one statement (every download asks: one
    round trip). Rows come back as plain records with each table's column names."""
    f = notice_files.c
    stmt = (select(*R.c, *notices.c, *f)
            .select_from(R.join(notices, notices.c.id == R.c.notice_id).outerjoin(
                notice_files, and_(f.notice_id == notices.c.id, f.signed.is_(True),
                                   or_(f.kind == "common", f.id == R.c.file_id))))
            .where(R.c.id == recipient_id)
            .order_by(f.kind.desc(), f.created_at))
    async with ctx.store.read() as tx:
        found = (await tx.conn.execute(stmt)).all()
    if not found:
        return None
    cut = (len(R.c), len(R.c) + len(notices.c))
    rec = _record(R, found[0][:cut[0]])
    notice = _record(notices, found[0][cut[0]:cut[1]])
    if _gone(notice):
        return None
    files = [_record(notice_files, row[cut[1]:]) for row in found if row[cut[1]] is not None]
    return rec, notice, files


def _record(table: Any, values: Sequence[Any]) -> SimpleNamespace:
    return SimpleNamespace(**dict(zip(table.c.keys(), values, strict=True)))


async def view(ctx: Notices, recipient_id: str) -> tuple[Any, Any, list[FileView]] | None:
    """The signed-in recipient's notice and the signed files it may download."""
    got = await _view_rows(ctx, recipient_id)
    if got is None:
        return None
    rec, notice, rows = got
    both = len(rows) > 1
    files = [FileView(str(f.id), _filename(notice, f, rec, both), int(f.pages), int(f.size),
                      f.id == rec.file_id) for f in rows]
    return rec, notice, files


def _filename(notice: Any, file: Any, rec: Any, both: bool) -> str:
    """The title (never personal) as a file name; the common file marked when there are two."""
    title = "".join("_" if c in '\\/:*?"<>|' or ord(c) < 32 else c for c in notice.title)
    title = title.strip()[:80] or "notice"
    if both and file.id != rec.file_id:
        return f"{title}_common.pdf"
    return f"{title}.pdf"


async def download(ctx: Notices, recipient_id: str, file_id: str, now: datetime,
                   ip: str | None = None) -> tuple[bytes, str] | None:
    """The exact signed bytes of a file this recipient may have, or None (not theirs, not
    signed, missing, or not what was signed: the SHA-256 must match the stored one). The
    download is recorded (opened, count, audit) before the bytes are returned."""
    got = await _view_rows(ctx, recipient_id)
    if got is None:
        return None
    rec, notice, rows = got
    row = next((f for f in rows if f.id == file_id), None)
    if row is None:
        return None
    try:
        data = await ctx.files.get(file_id)
    except FileStoreError:
        _LOGGER.warning("notice file %s cannot be read", file_id)
        return None
    if not hmac.compare_digest(hashlib.sha256(data).hexdigest(), str(row.sha256)):
        _LOGGER.error("notice file %s does not match its signed SHA-256: refused", file_id)
        return None
    await ctx.downloads.record(Download(str(rec.id), str(notice.id), file_id, now, ip))
    return data, _filename(notice, row, rec, len(rows) > 1)

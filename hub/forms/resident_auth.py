"""E-mail sign-in codes for residents (identity ``email_code``; also the sign-in again before
correcting a returned submission). No aiohttp here.

Why these limits: a 6-digit code has a million values; 5 wrong tries spend it and at most 5 codes
go to one address per form and hour, so guessing is hopeless and nobody can flood an inbox.
Only an HMAC of the code (bound to its row) and a keyed hash of the address are comparable; the
address itself is sealed (the draft needs it for the receipt).
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from sqlalchemy import func, insert, select, update

from hub.auth.service import audit_in, same_secret
from hub.forms.context import CODE_MAX_TRIES, CODES_PER_HOUR, Forms
from hub.forms.records import code_hmac, email_hmac, new_id, open_field, seal_field
from hub.forms.service import FormError
from hub.forms.tables import form_codes
from hub.notify.senders import Notice

_LOGGER = logging.getLogger(__name__)

TOO_MANY = ("too_many_codes", "コードの送信回数が上限に達しました。1時間ほどたってから、もう一度"
            "お試しください", "Too many codes were sent to this address. Please try again in an "
            "hour")
SPENT = ("code_spent", "このコードは使えなくなりました。新しいコードを送信してください",
         "This code can no longer be used. Please send a new code")


class BadCode(FormError):
    """A wrong code with tries left."""

    def __init__(self, tries_left: int) -> None:
        FormError.__init__(
            self, "bad_code",
            f"確認コードが正しくありません（あと{tries_left}回入力できます）",
            f"The code is not correct ({tries_left} tries left)", "code")
        self.tries_left = tries_left


def normalise_email(text: str) -> str | None:
    """The address as typed, trimmed; None when it cannot be one."""
    text = text.strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or "." not in domain or len(text) > 254 or not text.isascii() \
            or any(c.isspace() for c in text):
        return None
    return f"{local}@{domain.lower()}"


async def send_code(ctx: Forms, form_id: str, form_title: str, email: str, lang: str,
                    *, mail: bool = True) -> str:
    """Create a code for (form, address) and mail it; returns the code's row id.
    ``mail=False`` creates nothing visible to the address (a returned submission's sign-in
    with an address that is not the submission's: the page looks the same)."""
    now = ctx.clock()
    tag = email_hmac(ctx, email)
    async with ctx.store.begin() as tx:
        recent = (await tx.conn.execute(select(func.count()).select_from(form_codes).where(
            form_codes.c.form_id == form_id, form_codes.c.email_hmac == tag,
            form_codes.c.created_at > now - timedelta(hours=1)))).scalar_one()
        if recent >= CODES_PER_HOUR:
            raise FormError(*TOO_MANY, "email")
        cid, code = new_id(), f"{secrets.randbelow(1_000_000):06d}"
        await tx.conn.execute(insert(form_codes).values(
            id=cid, form_id=form_id, email_hmac=tag, email=seal_field(ctx, cid, "email", email),
            code_hmac=code_hmac(ctx, cid, code if mail else secrets.token_hex(16)), tries=0,
            created_at=now, expires_at=now + timedelta(minutes=ctx.settings.code_minutes),
            used_at=None))
    if mail:
        ja = lang != "en"
        minutes = ctx.settings.code_minutes
        subject = f"確認コード：{code}" if ja else f"Your code: {code}"
        body = (f"「{form_title}」の確認コードは {code} です。\n"
                f"{minutes}分以内に入力してください。\n"
                "心当たりがない場合は、このメールを破棄してください。\n" if ja else
                f"Your code for “{form_title}” is {code}.\nEnter it within {minutes} minutes.\n"
                "If you did not ask for it, you can ignore this mail.\n")
        outcomes = await ctx.mailer.send_batch(
            [Notice(f"form-code:{cid}", email, "ja" if ja else "en", subject, body)])
        if any(o.status != "sent" for o in outcomes):
            _LOGGER.warning("a sign-in code for form %s could not be mailed", form_id)
    return cid


async def verify_code(ctx: Forms, form_id: str, code_id: str, code: str,
                      ip: str | None) -> str:
    """The address the code was sent to, when ``code`` is right (the code is then used).
    Raises ``BadCode`` (tries left) or ``FormError(code_spent)`` (used, expired, locked)."""
    now = ctx.clock()
    code = "".join(ch for ch in code if ch.isdigit())[:6]
    async with ctx.store.begin() as tx:
        row = (await tx.conn.execute(select(form_codes).where(
            form_codes.c.id == code_id[:40], form_codes.c.form_id == form_id))).first()
        if row is None or row.used_at is not None or row.expires_at <= now \
                or row.tries >= CODE_MAX_TRIES:
            raise FormError(*SPENT, "code")
        if same_secret(code_hmac(ctx, str(row.id), code), str(row.code_hmac)):
            await tx.conn.execute(update(form_codes).where(form_codes.c.id == row.id).values(
                used_at=now))
            await audit_in(tx, ctx.hub, actor="resident", action="form_resident_login",
                           target=form_id, ip=ip, detail={"method": "email_code"})
            return open_field(ctx, str(row.id), "email", row.email)
        tries = int(row.tries) + 1
        await tx.conn.execute(update(form_codes).where(form_codes.c.id == row.id).values(
            tries=tries))
        if tries >= CODE_MAX_TRIES:
            await audit_in(tx, ctx.hub, actor="resident", action="form_code_locked",
                           target=form_id, ip=ip, detail={"tries": tries})
    if tries >= CODE_MAX_TRIES:
        raise FormError(*SPENT, "code")
    raise BadCode(CODE_MAX_TRIES - tries)

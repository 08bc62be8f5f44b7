"""Two-step verification: TOTP (pyotp) enrolment, the second sign-in step and one-time
recovery codes. The TOTP secret is sealed at rest with the hub's keys (``hub.notify.crypto``);
recovery codes are stored as argon2id hashes and shown once."""

from __future__ import annotations

import logging
import secrets
from typing import Any

import pyotp
from sqlalchemy import delete, insert, select, update

from hub.auth import passwords
from hub.auth.service import (
    Session,
    _failed,
    _promote,
    _totp_row,
    audit,
    writing,
)
from hub.auth.tables import staff, staff_recovery
from hub.notify.crypto import CryptoError, open_sealed, seal
from hub.settings import HubSettings
from hub.store import HubStore
from hub.store.store import now_utc

_LOGGER = logging.getLogger(__name__)

ISSUER = "madoguchi"
RECOVERY_CODES = 8


async def verify_mfa(store: HubStore, settings: HubSettings, current: Session, code: str,
                     ip: str) -> bool:
    """Second step: a TOTP code (±1 step) or an unused recovery code."""
    async with store.read() as tx:
        sealed = (await tx.conn.execute(select(staff.c.totp_sealed).where(
            staff.c.id == current.staff_id))).scalar()
    code = code.strip().replace(" ", "")
    ok = False
    if sealed:
        try:
            secret = open_sealed(settings.keys, _totp_row(current.staff_id), sealed)
            ok = pyotp.TOTP(secret).verify(code, for_time=now_utc(), valid_window=1)
        except CryptoError:
            _LOGGER.error("TOTP secret of a staff account cannot be opened (key removed?)")
    if not ok:
        ok = await _use_recovery(store, current.staff_id, code)
    if ok:
        await _promote(store, settings, current, ip)
    else:
        await _failed(store, settings, {**await _account(store, current.staff_id)},
                      current.login, ip, now_utc())
    return ok


async def _account(store: HubStore, staff_id: str) -> dict[str, Any]:
    async with store.read() as tx:
        row = (await tx.conn.execute(select(staff).where(staff.c.id == staff_id))).one()
    return row._asdict()


async def _use_recovery(store: HubStore, staff_id: str, code: str) -> bool:
    if len(code) != 10:
        return False
    async with store.read() as tx:
        rows = (await tx.conn.execute(select(staff_recovery.c.code_hash).where(
            staff_recovery.c.staff_id == staff_id, staff_recovery.c.used_at.is_(None)))).all()
    for (encoded,) in rows:
        if await passwords.check_async(encoded, code.lower()):
            async with writing(store) as tx:
                done = await tx.conn.execute(update(staff_recovery).where(
                    staff_recovery.c.code_hash == encoded,
                    staff_recovery.c.used_at.is_(None)).values(used_at=now_utc()))
            return bool(done.rowcount)
    return False


async def start_enrolment(store: HubStore, settings: HubSettings, current: Session) -> str:
    """A new TOTP secret (kept sealed as pending until confirmed); returns its otpauth URI."""
    secret = pyotp.random_base32()
    async with writing(store) as tx:
        await tx.conn.execute(update(staff).where(staff.c.id == current.staff_id).values(
            totp_pending=seal(settings.keys, settings.key_id, _totp_row(current.staff_id),
                              secret)))
    return pyotp.TOTP(secret).provisioning_uri(name=current.login, issuer_name=ISSUER)


async def _pending_secret(store: HubStore, settings: HubSettings,
                          current: Session) -> tuple[str, str] | None:
    """(sealed, secret) of the TOTP secret shown at enrolment and not yet confirmed (None:
    none, or unreadable)."""
    async with store.read() as tx:
        sealed = (await tx.conn.execute(select(staff.c.totp_pending).where(
            staff.c.id == current.staff_id))).scalar()
    if not sealed:
        return None
    try:
        return str(sealed), open_sealed(settings.keys, _totp_row(current.staff_id), sealed)
    except CryptoError:
        return None


async def pending_uri(store: HubStore, settings: HubSettings, current: Session) -> str | None:
    pending = await _pending_secret(store, settings, current)
    if pending is None:
        return None
    secret = pending[1]
    return pyotp.TOTP(secret).provisioning_uri(name=current.login, issuer_name=ISSUER)


async def confirm_enrolment(store: HubStore, settings: HubSettings, current: Session, code: str,
                            ip: str) -> list[str] | None:
    """Check a code against the pending secret; on success make it the account's TOTP, issue
    fresh recovery codes (returned once, stored hashed) and finish the login."""
    pending = await _pending_secret(store, settings, current)
    if pending is None:
        return None
    sealed, secret = pending
    if not pyotp.TOTP(secret).verify(code.strip().replace(" ", ""), for_time=now_utc(),
                                      valid_window=1):
        return None
    codes = [secrets.token_hex(5) for _ in range(RECOVERY_CODES)]
    hashes = [await passwords.hash_async(c) for c in codes]
    async with writing(store) as tx:
        await tx.conn.execute(update(staff).where(staff.c.id == current.staff_id).values(
            totp_sealed=sealed, totp_pending=None))
        await tx.conn.execute(delete(staff_recovery).where(
            staff_recovery.c.staff_id == current.staff_id))
        for h in hashes:
            await tx.conn.execute(insert(staff_recovery).values(staff_id=current.staff_id,
                                                                code_hash=h))
    await audit(store, settings, actor=current.staff_id, action="mfa_enrolled",
                target=current.staff_id, ip=ip)
    if current.stage != "ok":
        await _promote(store, settings, current, ip)
    return codes
